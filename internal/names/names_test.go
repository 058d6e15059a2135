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

func TestMirrorTopic(t *testing.T) {
	name := MirrorTopic("idc-a", "clicks")
	if err := Topic(name); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if dc, topic, ok := ParseMirror(name); !ok || dc != "idc-a" || topic != "clicks" {
		t.Fatalf("ParseMirror(%s) = %s %s %v", name, dc, topic, ok)
	}
	for _, g := range []string{RetryTopic("stats"), DLQTopic("stats")} {
		name := MirrorTopic("idc-a", g)
		if dc, topic, ok := ParseMirror(name); !ok || dc != "idc-a" || topic != g || Topic(name) != nil {
			t.Fatalf("ParseMirror(%s) = %s %s %v; Topic: %v", name, dc, topic, ok, Topic(name))
		}
		if group, ok := GroupQueue(g); !ok || group != "stats" {
			t.Fatalf("GroupQueue(%s) = %s %v", g, group, ok)
		}
	}
	if _, ok := GroupQueue("clicks"); ok {
		t.Fatal("GroupQueue(clicks) ok")
	}
	for _, bad := range []string{"%MIRROR%", "%MIRROR%idc-a", "%MIRROR%idc-a%", "%MIRROR%%clicks", "%MIRROR%idc a%clicks", "%MIRROR%idc-a%cl%icks",
		"%MIRROR%idc-a%%MIRROR%idc-b%clicks", "%MIRROR%idc-a%%RETRY%", "%MIRROR%idc-a%%OTHER%g"} {
		if Topic(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
		if _, _, ok := ParseMirror(bad); ok {
			t.Errorf("ParseMirror(%q) ok", bad)
		}
	}
}
