package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
	"github.com/duomq/duomq/internal/testcluster"
)

// cli runs the duomq command in-process with args and stdin, returning
// its stdout and error.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	if errOut.Len() > 0 {
		t.Logf("duomq %s: stderr: %s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), err
}

func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		res = append(res, v)
	}
	return res
}

// writeClusterFile records the test topology as duomq dev would.
func writeClusterFile(t *testing.T, cl *testcluster.Cluster) string {
	t.Helper()
	eps := cl.EtcdEndpoints()
	f := clusterfile.File{Sites: map[string]clusterfile.Site{
		testcluster.DCA: {Etcd: eps[0], Nameserver: cl.Nameserver(testcluster.DCA), Brokers: cl.Brokers(testcluster.DCA), Proxy: cl.Proxy(testcluster.DCA)},
		testcluster.DCB: {Etcd: eps[1], Nameserver: cl.Nameserver(testcluster.DCB), Brokers: cl.Brokers(testcluster.DCB), Proxy: cl.Proxy(testcluster.DCB)},
		"witness":       {Etcd: eps[2]},
	}}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := clusterfile.Write(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliTopology starts a topology and writes its cluster file (path c),
// with the environment cleared so the commands read only their flags.
func cliTopology(t *testing.T) (*testcluster.Cluster, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a whole topology")
	}
	cl := testcluster.New(t, testcluster.Options{})
	c := writeClusterFile(t, cl)
	t.Setenv("DUOMQ_CLUSTER", "")
	t.Setenv("DUOMQ_IDC", "")
	return cl, c
}

func TestAppCommands(t *testing.T) {
	cl, c := cliTopology(t)
	cl.CreateTopic(t, meta.Topic{Name: "cli-u", Queues: 4})
	cl.CreateTopic(t, meta.Topic{Name: "cli-o", Queues: 4, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationAsync})
	cl.CreateGroup(t, meta.Group{Name: "cli-g", Subscriptions: []meta.Subscription{{Topic: "cli-u"}}})
	cl.CreateGroup(t, meta.Group{Name: "cli-go", Subscriptions: []meta.Subscription{{Topic: "cli-o"}}})

	t.Run("UnknownTopic", func(t *testing.T) {
		_, err := cli(t, "x\n", "produce", "--cluster", c, "--dc", "idc-a", "--topic", "no-such-topic")
		t.Logf("refusal: %v", err)
		if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
			t.Fatalf("send to an unknown topic: %v", err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		var in strings.Builder
		for i := 1; i <= 100; i++ {
			fmt.Fprintf(&in, "u-%d\n", i)
		}
		out, err := cli(t, in.String(), "produce", "--cluster", c, "--dc", "idc-b", "--topic", "cli-u")
		if err != nil {
			t.Fatal(err)
		}
		acks := jsonLines[map[string]any](t, out)
		if len(acks) != 100 {
			t.Fatalf("%d acks for 100 sends", len(acks))
		}
		for _, k := range []string{"id", "topic", "key", "queue", "offset", "dc"} {
			if _, ok := acks[0][k]; !ok {
				t.Fatalf("ack %v has no %q", acks[0], k)
			}
		}
		for _, a := range acks {
			if a["dc"] != "idc-b" {
				t.Fatalf("a send through idc-b stored in %v", a["dc"])
			}
		}
		out, err = cli(t, "", "consume", "--cluster", c, "--dc", "idc-b", "--group", "cli-g", "--topic", "cli-u",
			"--from", "earliest", "--max", "100", "--idle-timeout", "10s")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, m := range jsonLines[messageLine](t, out) {
			got[m.Body] = true
		}
		for i := 1; i <= 100; i++ {
			if !got["u-"+strconv.Itoa(i)] {
				t.Fatalf("u-%d not consumed (%d of 100)", i, len(got))
			}
		}
	})

	t.Run("OrderedKey", func(t *testing.T) {
		var in strings.Builder
		for i := 1; i <= 100; i++ {
			fmt.Fprintf(&in, "k1-%d\n", i)
		}
		out, err := cli(t, in.String(), "produce", "--cluster", c, "--dc", "idc-b", "--topic", "cli-o", "--key", "k1")
		if err != nil {
			t.Fatal(err)
		}
		acks := jsonLines[ackLine](t, out)
		if len(acks) != 100 || acks[0].Key != "k1" || acks[0].DC != "idc-a" {
			t.Fatalf("%d acks, first %+v: want 100 stored in the primary idc-a", len(acks), acks[0])
		}
		out, err = cli(t, "", "consume", "--cluster", c, "--dc", "idc-a", "--group", "cli-go", "--topic", "cli-o",
			"--from", "earliest", "--max", "100", "--idle-timeout", "10s")
		if err != nil {
			t.Fatal(err)
		}
		ms := jsonLines[messageLine](t, out)
		for i, m := range ms {
			if want := fmt.Sprintf("k1-%d", i+1); m.Body != want || m.Key != "k1" {
				t.Fatalf("message %d: %q key %q, want %q key k1", i, m.Body, m.Key, want)
			}
		}
		if len(ms) != 100 {
			t.Fatalf("consumed %d of 100", len(ms))
		}
	})

	t.Run("Oversize", func(t *testing.T) {
		big := strings.Repeat("x", 5<<20) + "\n"
		_, err := cli(t, big, "produce", "--cluster", c, "--dc", "idc-a", "--topic", "cli-u")
		t.Logf("refusal: %v", err)
		if err == nil || !strings.Contains(err.Error(), "4194304") {
			t.Fatalf("5 MiB message: %v", err)
		}
	})

	t.Run("GeneratedAndIdle", func(t *testing.T) {
		cl.CreateTopic(t, meta.Topic{Name: "cli-gen", Queues: 2})
		cl.CreateGroup(t, meta.Group{Name: "cli-gen-g", Subscriptions: []meta.Subscription{{Topic: "cli-gen"}}})
		out, err := cli(t, "", "produce", "--proxy", cl.Proxy("idc-a"), "--topic", "cli-gen", "--count", "5", "--size", "6000", "--tag", "gen")
		if err != nil || len(jsonLines[ackLine](t, out)) != 5 {
			t.Fatalf("generated sends: %v\n%s", err, out)
		}
		start := time.Now()
		out, err = cli(t, "", "consume", "--proxy", cl.Proxy("idc-a"), "--group", "cli-gen-g", "--topic", "cli-gen",
			"--from", "earliest", "--tag", "gen", "--idle-timeout", "1s")
		if err != nil {
			t.Fatal(err)
		}
		ms := jsonLines[messageLine](t, out)
		if len(ms) != 5 || len(ms[0].Body) != 6000 || ms[0].Tag != "gen" {
			t.Fatalf("consumed %d (first %d bytes)", len(ms), len(ms[0].Body))
		}
		if el := time.Since(start); el > 8*time.Second {
			t.Fatalf("consume with --idle-timeout 1s ran %v", el)
		}
	})

	t.Run("Clients", func(t *testing.T) {
		app := newAppClient(t, cl.Proxy("idc-b"), "idc-b")
		app.NewProducer()
		var listed []client.ClientStatus
		testcluster.Eventually(t, func() bool {
			out, err := cli(t, "", "clients", "--cluster", c, "-o", "json")
			if err != nil {
				return false
			}
			listed = nil
			if err := json.Unmarshal([]byte(out), &listed); err != nil {
				t.Fatalf("clients -o json: %v\n%s", err, out)
			}
			for _, s := range listed {
				if s.ClientID == app.ID() {
					return s.SDKVersion == client.Version && s.ProxyDC == "idc-b" && s.IDC == "idc-b"
				}
			}
			return false
		}, "the client listed with its SDK version")
		out, err := cli(t, "", "clients", "--cluster", c)
		if err != nil || !strings.Contains(out, "SDK") || !strings.Contains(out, client.Version) {
			t.Fatalf("clients table: %v\n%s", err, out)
		}
	})

	t.Run("DeadLetters", func(t *testing.T) {
		cl.CreateTopic(t, meta.Topic{Name: "cli-dlq", Queues: 1})
		cl.CreateGroup(t, meta.Group{Name: "cli-dlq-g", Subscriptions: []meta.Subscription{{Topic: "cli-dlq"}}, MaxRetries: 1})
		if _, err := cli(t, "poison\n", "produce", "--cluster", c, "--dc", "idc-a", "--topic", "cli-dlq"); err != nil {
			t.Fatal(err)
		}
		app := newAppClient(t, cl.Proxy("idc-a"), "idc-a")
		pc, err := app.NewPushConsumer("cli-dlq-g", "cli-dlq", "*", func(context.Context, *client.MessageView) error {
			return errors.New("always fails")
		}, 1, client.WithConsumeFrom(client.ConsumeFromEarliest), client.WithReceiveWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var dead []deadLetter
		testcluster.Eventually(t, func() bool {
			out, err := cli(t, "", "dlq", "list", "--cluster", c, "--group", "cli-dlq-g", "-o", "json")
			if err != nil {
				return false
			}
			dead = nil
			json.Unmarshal([]byte(out), &dead)
			return len(dead) == 1
		}, "the dead letter listed")
		pc.Close()
		if dead[0].Body != "poison" || dead[0].DC != "idc-a" {
			t.Fatalf("dead letter %+v", dead[0])
		}
		out, err := cli(t, "", "dlq", "redrive", "--cluster", c, "--dc", "idc-a", "--group", "cli-dlq-g", "--id", dead[0].ID, "-o", "json")
		if err != nil || !strings.Contains(out, `"redriven": 1`) {
			t.Fatalf("redrive: %v\n%s", err, out)
		}
		out, err = cli(t, "", "consume", "--cluster", c, "--dc", "idc-a", "--group", "cli-dlq-g", "--topic", "cli-dlq",
			"--max", "1", "--idle-timeout", "10s")
		if err != nil || !strings.Contains(out, "poison") {
			t.Fatalf("re-driven message not consumed: %v\n%s", err, out)
		}
	})
}

func newAppClient(t *testing.T, proxy, dc string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Proxy, cfg.App = proxy, "cli-test"
	cfg.IDC.Sources, cfg.IDC.Default = []string{client.SourceDefault}, dc
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
