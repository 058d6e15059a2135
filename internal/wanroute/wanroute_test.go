package wanroute

import "testing"

func TestRewrite(t *testing.T) {
	t.Cleanup(func() { Set(nil) })
	if got := Rewrite("10.0.0.1:9000"); got != "10.0.0.1:9000" {
		t.Fatalf("empty table rewrote to %q", got)
	}
	routes := map[string]string{"10.0.0.1:9000": "127.0.0.1:4000"}
	Set(routes)
	routes["10.0.0.2:9000"] = "changed after Set"
	if got := Rewrite("10.0.0.1:9000"); got != "127.0.0.1:4000" {
		t.Fatalf("Rewrite = %q, want the relay", got)
	}
	if got := Rewrite("10.0.0.2:9000"); got != "10.0.0.2:9000" {
		t.Fatalf("the caller's map leaked into the table: %q", got)
	}
}
