package mmapfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateMapRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data, err := Create(path, 8192, []byte("head"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data[:4]) != "head" || data[8191] != 0 || len(data) != 8192 {
		t.Fatalf("created mapping wrong: len %d", len(data))
	}
	data[100] = 7
	if err := Unmap(data); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + TmpSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file left behind: %v", err)
	}
	again, err := Map(path, func(n int64) error { return nil })
	if err != nil || again[100] != 7 {
		t.Fatalf("write through the mapping lost: %v", err)
	}
	Unmap(again)
	bad := errors.New("bad size")
	if _, err := Map(path, func(int64) error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("check not applied: %v", err)
	}
}
