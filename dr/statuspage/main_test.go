package statuspage_test

import (
	"testing"

	"github.com/duomq/duomq/internal/leakcheck"
)

// TestMain checks for leaked goroutines (internal/leakcheck says which
// HTTP keep-alive goroutines it ignores).
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
