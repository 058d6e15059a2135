package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// jsonLines decodes every line of buf.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newJSON(t *testing.T, level string) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(Config{Format: "json", Level: level}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return l, &buf
}

func TestJSONLineCarriesComponentSiteAndTraceID(t *testing.T) {
	l, buf := newJSON(t, "info")
	l = Component(l, "broker", "idc-a")
	ctx := WithTraceID(context.Background(), "01HZX3M1Q0C8W6Y5V4T3S2R1PA")
	l.WarnContext(ctx, "send failed", "topic", "orders")
	lines := jsonLines(t, buf)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(lines))
	}
	want := map[string]string{"component": "broker", "site": "idc-a", "trace_id": "01HZX3M1Q0C8W6Y5V4T3S2R1PA", "topic": "orders", "msg": "send failed", "level": "WARN"}
	for k, v := range want {
		if got := lines[0][k]; got != v {
			t.Errorf("%s = %v, want %q (line %v)", k, got, v, lines[0])
		}
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(DefaultConfig(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	Component(l, "nameserver", "idc-b").ErrorContext(WithTraceID(context.Background(), "m-1"), "lease table full")
	line := buf.String()
	for _, want := range []string{"component=nameserver", "site=idc-b", "trace_id=m-1", `msg="lease table full"`, "level=ERROR"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %s", line, want)
		}
	}
}

func TestOneValuePerKey(t *testing.T) {
	l, buf := newJSON(t, "info")
	// A site runner names the site, the daemon the component and the site
	// again, the package the component again: one of each.
	l = l.With("site", "idc-a").With("component", "broker", "site", "idc-a").With("component", "broker", "broker", "b0")
	l.Info("serving", "broker", "b0")
	raw := buf.String()
	for _, key := range []string{`"component":`, `"site":`, `"broker":`} {
		if n := strings.Count(raw, key); n != 1 {
			t.Errorf("%s appears %d times in %s", key, n, raw)
		}
	}
	// Order of first appearance is kept: the site first.
	if strings.Index(raw, `"site"`) > strings.Index(raw, `"component"`) {
		t.Errorf("site should come before component: %s", raw)
	}
}

func TestLineTraceIDWins(t *testing.T) {
	l, buf := newJSON(t, "debug")
	ctx := WithTraceID(context.Background(), "from-ctx")
	l.DebugContext(ctx, "pop failed", "trace_id", "from-line")
	l.Debug("no context")
	lines := jsonLines(t, buf)
	if got := lines[0]["trace_id"]; got != "from-line" {
		t.Errorf("trace_id = %v, want the line's own", got)
	}
	if _, ok := lines[1]["trace_id"]; ok {
		t.Errorf("a line without a trace context has trace_id: %v", lines[1])
	}
	if strings.Count(buf.String(), "trace_id") != 1 {
		t.Errorf("trace_id twice: %s", buf.String())
	}
}

func TestGroupKeepsFieldsAtTopLevel(t *testing.T) {
	l, buf := newJSON(t, "info")
	Component(l, "proxy", "idc-a").WithGroup("req").Info("x", "topic", "t")
	m := jsonLines(t, buf)[0]
	if m["component"] != "proxy" || m["site"] != "idc-a" {
		t.Errorf("fields not at the top level: %v", m)
	}
	if g, ok := m["req"].(map[string]any); !ok || g["topic"] != "t" {
		t.Errorf("group lost: %v", m)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{Format: "xml", Level: "info"}, {Format: "json", Level: "loud"}} {
		if _, err := New(c, &bytes.Buffer{}); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestOrTraceID(t *testing.T) {
	ctx := context.Background()
	if got := TraceID(OrTraceID(ctx, "msg-1")); got != "msg-1" {
		t.Errorf("OrTraceID on an empty context = %q", got)
	}
	if got := TraceID(OrTraceID(WithTraceID(ctx, "client"), "msg-1")); got != "client" {
		t.Errorf("OrTraceID replaced the caller's trace id: %q", got)
	}
	if WithTraceID(ctx, "") != ctx {
		t.Error("WithTraceID with an empty id should return ctx")
	}
}

func TestInterceptor(t *testing.T) {
	l, buf := newJSON(t, "debug")
	icpt := UnaryServerInterceptor(l, func(req any) string { return req.(string) })
	info := &grpc.UnaryServerInfo{FullMethod: "/duomq.Svc/Send"}
	var seen string
	handler := func(err error) grpc.UnaryHandler {
		return func(ctx context.Context, _ any) (any, error) {
			seen = TraceID(ctx)
			return nil, err
		}
	}
	tests := []struct {
		name      string
		header    string
		err       error
		wantSeen  string
		wantTrace string // of the logged line; "" for no line
		wantLevel string
	}{
		{"ok with header", "trace-7", nil, "trace-7", "", ""},
		{"ok without header", "", nil, "", "", ""},
		{"client error, header", "trace-7", status.Error(codes.NotFound, "no topic"), "trace-7", "trace-7", "DEBUG"},
		{"server fault, message id", "", status.Error(codes.DataLoss, "corrupt"), "", "msg-1", "WARN"},
		{"invalid header ignored", "bad id", status.Error(codes.Internal, "x"), "", "msg-1", "WARN"},
		{"plain error", "", errors.New("boom"), "", "msg-1", "WARN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			ctx := context.Background()
			if tc.header != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(TraceHeader, tc.header))
			}
			icpt(ctx, "msg-1", info, handler(tc.err))
			if seen != tc.wantSeen {
				t.Errorf("handler saw trace id %q, want %q", seen, tc.wantSeen)
			}
			if tc.wantTrace == "" {
				if buf.Len() != 0 {
					t.Errorf("logged a successful call: %s", buf.String())
				}
				return
			}
			m := jsonLines(t, buf)[0]
			if m["trace_id"] != tc.wantTrace || m["level"] != tc.wantLevel || m["method"] != info.FullMethod {
				t.Errorf("line %v: want trace_id %q at %s", m, tc.wantTrace, tc.wantLevel)
			}
		})
	}
}

func TestOutgoingTrace(t *testing.T) {
	ctx := OutgoingTrace(WithTraceID(context.Background(), "trace-9"))
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get(TraceHeader); len(got) != 1 || got[0] != "trace-9" {
		t.Errorf("outgoing %s = %v", TraceHeader, got)
	}
	if _, ok := metadata.FromOutgoingContext(OutgoingTrace(context.Background())); ok {
		t.Error("metadata added without a trace id")
	}
}

func TestValidTraceID(t *testing.T) {
	for id, want := range map[string]bool{
		"": false, "a": true, "with space": false, strings.Repeat("x", 128): true, strings.Repeat("x", 129): false, "é": false,
	} {
		if got := validTraceID(id); got != want {
			t.Errorf("validTraceID(%q) = %v", id, got)
		}
	}
}
