package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duomq/duomq/internal/clusterfile"
)

func TestProduceBodiesFromLines(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	in := "a\r\n\nb\n" + long + "\nlast-without-newline"
	next := (&produceFlags{}).bodies(strings.NewReader(in))
	var got []string
	for {
		b, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	want := []string{"a", "b", long, "last-without-newline"}
	if len(got) != len(want) {
		t.Fatalf("%d bodies, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("body %d: %.20q, want %.20q", i, got[i], want[i])
		}
	}
}

func TestProduceGeneratedBodies(t *testing.T) {
	next := (&produceFlags{count: 3, size: 16}).bodies(strings.NewReader("ignored\n"))
	for i := 1; i <= 3; i++ {
		b, err := next()
		if err != nil || len(b) != 16 || !strings.HasPrefix(string(b), "msg-") {
			t.Fatalf("body %d: %q %v", i, b, err)
		}
	}
	if _, err := next(); err != io.EOF {
		t.Fatalf("after --count bodies: %v", err)
	}
	if b := generatedBody(12345, 3); len(b) != 3 {
		t.Fatalf("short body %q", b)
	}
}

func TestProduceKeyIsShardingKey(t *testing.T) {
	m := (&produceFlags{topic: "t", key: "k1", tag: "paid"}).message([]byte("x"))
	if m.ShardingKey != "k1" || len(m.Keys) != 1 || m.Keys[0] != "k1" || m.Tag != "paid" || !m.DeliverAt.IsZero() {
		t.Fatalf("%+v", m)
	}
}

func TestProxyDiscovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.json")
	f := clusterfile.File{Sites: map[string]clusterfile.Site{
		"idc-a":   {Etcd: "http://127.0.0.1:1", Proxy: "127.0.0.1:7001"},
		"idc-b":   {Etcd: "http://127.0.0.1:2", Proxy: "127.0.0.1:7002"},
		"witness": {Etcd: "http://127.0.0.1:3"},
	}}
	if err := clusterfile.Write(path, f); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DUOMQ_CLUSTER", "")
	t.Setenv("DUOMQ_IDC", "")
	g := &globalFlags{cluster: path}

	site, err := (&proxyFlags{dc: "idc-b"}).one(g)
	if err != nil || site.addr != "127.0.0.1:7002" || site.dc != "idc-b" {
		t.Fatalf("--dc idc-b: %+v %v", site, err)
	}
	if _, err := (&proxyFlags{}).one(g); err == nil || !strings.Contains(err.Error(), "idc-a, idc-b") {
		t.Fatalf("no --dc: %v", err)
	}
	if _, err := (&proxyFlags{dc: "witness"}).one(g); err == nil || !strings.Contains(err.Error(), "no proxy") {
		t.Fatalf("--dc witness: %v", err)
	}
	t.Setenv("DUOMQ_IDC", "idc-a")
	if site, _ := (&proxyFlags{}).one(g); site.addr != "127.0.0.1:7001" {
		t.Fatalf("$DUOMQ_IDC: %+v", site)
	}
	all, err := (&proxyFlags{}).all(g)
	if err != nil || len(all) != 2 || all[0].dc != "idc-a" || all[1].dc != "idc-b" {
		t.Fatalf("all proxies: %+v %v", all, err)
	}
	if s, _ := (&proxyFlags{proxy: "10.0.0.1:9"}).one(&globalFlags{}); s.addr != "10.0.0.1:9" {
		t.Fatalf("--proxy: %+v", s)
	}
	t.Setenv("DUOMQ_CLUSTER", "")
	if _, err := (&proxyFlags{dc: "idc-a"}).one(&globalFlags{}); err == nil || !strings.Contains(err.Error(), "--proxy") {
		t.Fatalf("no cluster: %v", err)
	}
}
