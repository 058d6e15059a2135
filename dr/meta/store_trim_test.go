package meta

import (
	"errors"
	"fmt"
	"testing"

	"github.com/duomq/duomq/internal/etcdtest"
)

func TestTrimKeepsTheNewest(t *testing.T) {
	c := etcdtest.NewCluster(t, 1)
	s := newStore(t, c.Client(t))
	ctx := testCtx(t)
	for i := range 7 {
		if _, err := s.PutJSON(ctx, fmt.Sprintf("%s%03d", KeyDrills, i), map[string]int{"version": 1}, AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Trim(ctx, KeyDrills, 3)
	if err != nil || n != 4 {
		t.Fatalf("trimmed %d, %v; want 4", n, err)
	}
	left, _, err := s.ListJSON(ctx, KeyDrills)
	if err != nil || len(left) != 3 {
		t.Fatalf("left %v, %v", left, err)
	}
	for _, i := range []int{4, 5, 6} {
		if _, ok := left[fmt.Sprintf("%s%03d", KeyDrills, i)]; !ok {
			t.Fatalf("newest record %d was trimmed: %v", i, left)
		}
	}
	if n, err := s.Trim(ctx, KeyDrills, 3); err != nil || n != 0 {
		t.Fatalf("second trim: %d, %v", n, err)
	}
	if _, err := s.Trim(ctx, "topics/", 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("trim of topics/: %v, want ErrInvalid", err)
	}
}
