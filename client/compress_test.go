package client

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

func TestCompressThreshold(t *testing.T) {
	const threshold = 4 << 10
	cases := []struct {
		name       string
		body       []byte
		compressed bool
	}{
		{"empty", nil, false},
		{"small", bytes.Repeat([]byte("a"), 100), false},
		{"at threshold", bytes.Repeat([]byte("a"), threshold), false},
		{"over threshold", bytes.Repeat([]byte("a"), threshold+1), true},
		{"large text", bytes.Repeat([]byte("duomq message body "), 10000), true},
		{"incompressible", randomBytes(64 << 10), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := compressBody(tc.body, threshold)
			if ok != tc.compressed {
				t.Fatalf("compressed = %v, want %v", ok, tc.compressed)
			}
			if !ok {
				if !bytes.Equal(out, tc.body) {
					t.Fatal("uncompressed body changed")
				}
				return
			}
			if len(out) >= len(tc.body) {
				t.Fatalf("compressed %d bytes to %d", len(tc.body), len(out))
			}
			back, err := decompressBody(out)
			if err != nil || !bytes.Equal(back, tc.body) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestCompressDisabled(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 1<<20)
	if _, ok := compressBody(body, 0); ok {
		t.Fatal("threshold 0 compressed")
	}
}

func TestDecompressCorrupt(t *testing.T) {
	if _, err := decompressBody([]byte("not zstd at all")); err == nil {
		t.Fatal("corrupt frame decoded")
	}
}

func TestMessageWireRoundTrip(t *testing.T) {
	at := time.Now().Add(time.Minute).Truncate(time.Nanosecond)
	m := &Message{
		ID: "id-1", Topic: "orders", Tag: "paid", Keys: []string{"k"}, ShardingKey: "user-1",
		Properties: map[string]string{"trace": "t"}, Body: bytes.Repeat([]byte("x"), 10<<10), DeliverAt: at,
	}
	pm := m.toPB("idc-a", 4<<10, time.Now())
	if !pm.Compressed || len(pm.Body) >= len(m.Body) {
		t.Fatalf("10 KiB body sent uncompressed (compressed=%v, %d bytes)", pm.Compressed, len(pm.Body))
	}
	pm.Properties["changed"] = "y"
	if _, ok := m.Properties["changed"]; ok {
		t.Fatal("wire message shares the caller's property map")
	}
	v, err := viewFromPB(pm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Body, m.Body) || v.ID != "id-1" || v.ShardingKey != "user-1" || v.BornDC != "idc-a" || !v.DeliverAt.Equal(at) {
		t.Fatalf("view %+v", v)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
