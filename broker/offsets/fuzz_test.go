package offsets

import (
	"errors"
	"maps"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary bytes to the file decoder: it either fails
// with ErrCorrupt or returns a table that survives an encode/decode round
// trip unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version": 1, "offsets": [{"group": "g", "topic": "t", "queue": 3, "offset": 42}]}`))
	f.Add([]byte(`{"version": 1}`))
	f.Add([]byte(`{"version": 2}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		s := &Store{offsets: table}
		entries := s.Snapshot()
		for _, e := range entries {
			if !utf8.ValidString(e.Group) || !utf8.ValidString(e.Topic) {
				return // JSON replaces invalid UTF-8; names are validated upstream
			}
		}
		out, err := encode(entries)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if !maps.Equal(table, again) {
			t.Fatalf("round trip changed the table")
		}
	})
}
