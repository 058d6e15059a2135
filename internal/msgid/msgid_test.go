package msgid

import (
	"sync"
	"testing"
)

func TestNewUniqueUnderConcurrency(t *testing.T) {
	const goroutines, per = 8, 5000
	var mu sync.Mutex
	seen := make(map[string]bool, goroutines*per)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, per)
			for i := range local {
				local[i] = New()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	for id := range seen {
		if len(id) != 32 || !Valid(id) {
			t.Fatalf("bad id %q", id)
		}
		break
	}
}

func TestValid(t *testing.T) {
	for id, want := range map[string]bool{"": false, "abc": true, "a b": false, string(make([]byte, 129)): false} {
		if Valid(id) != want {
			t.Errorf("Valid(%q) = %v", id, !want)
		}
	}
}
