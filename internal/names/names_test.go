package names

import (
	"errors"
	"strings"
	"testing"
)

func TestTopic(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"Orders_2-x", true},
		{strings.Repeat("a", 127), true},
		{strings.Repeat("a", 128), false},
		{"", false},
		{"bad name!", false},
		{"a.b", false},
		{"%DLQ%payments", true},
		{"%RETRY%payments", true},
		{"%DLQ%", false},
		{"%DLQ%bad name", false},
		{"%OTHER%x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Topic(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("Topic(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestGroupRejectsSystemPrefix(t *testing.T) {
	if err := Group("%DLQ%g"); err == nil {
		t.Fatal("group name with % accepted")
	}
	if got := DLQTopic("g"); Topic(got) != nil {
		t.Fatalf("DLQTopic(%q) is not a valid topic", got)
	}
}
