package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
)

// traceJSON is the part of `duomq trace -o json` the test reads.
type traceJSON struct {
	Messages []struct {
		ID      string `json:"id"`
		Topic   string `json:"topic"`
		Records []struct {
			DC         string `json:"dc"`
			Queue      uint32 `json:"queue"`
			Offset     int64  `json:"offset"`
			Replicated bool   `json:"replicated"`
		} `json:"records"`
		Outcomes map[string]string `json:"outcomes"`
		Timeline []struct {
			Kind string `json:"kind"`
			Text string `json:"text"`
		} `json:"timeline"`
	} `json:"messages"`
}

func TestTraceCommand(t *testing.T) {
	cl, c := cliTopology(t)
	cl.CreateTopic(t, meta.Topic{Name: "tr-cli", Queues: 2, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationAsync})
	cl.CreateGroup(t, meta.Group{Name: "tr-cli-g", Subscriptions: []meta.Subscription{{Topic: "tr-cli"}}})
	cl.CreateGroup(t, meta.Group{Name: "tr-cli-idle", Subscriptions: []meta.Subscription{{Topic: "tr-cli"}}})

	out, err := cli(t, "hello\n", "produce", "--cluster", c, "--dc", "idc-b", "--topic", "tr-cli", "--key", "order-1")
	if err != nil {
		t.Fatal(err)
	}
	id := jsonLines[ackLine](t, out)[0].ID
	if _, err := cli(t, "", "consume", "--cluster", c, "--dc", "idc-a", "--group", "tr-cli-g", "--topic", "tr-cli",
		"--from", "earliest", "--max", "1", "--idle-timeout", "10s"); err != nil {
		t.Fatal(err)
	}

	var tr traceJSON
	testcluster.Eventually(t, func() bool {
		out, err := cli(t, "", "trace", "--cluster", c, "--id", id, "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &tr) != nil || len(tr.Messages) != 1 {
			return false
		}
		m := tr.Messages[0]
		replicated := false
		for _, r := range m.Records {
			replicated = replicated || r.Replicated && r.DC == testcluster.DCB
		}
		return replicated && m.Outcomes["tr-cli-g"] == "acked"
	}, "trace of %s: replicated and acked", id)
	m := tr.Messages[0]
	if m.ID != id || m.Topic != "tr-cli" || m.Records[0].DC != testcluster.DCA || m.Records[0].Replicated || m.Outcomes["tr-cli-idle"] != "not delivered" {
		t.Fatalf("trace: %+v", m)
	}
	var kinds []string
	for _, e := range m.Timeline {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "born stored replicated") || !strings.Contains(got, "acked") || !strings.Contains(got, "pending") {
		t.Fatalf("timeline kinds: %s", got)
	}

	t.Run("ByKeyTable", func(t *testing.T) {
		out, err := cli(t, "", "trace", "--cluster", c, "--dc", "idc-b", "--topic", "tr-cli", "--key", "order-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"message " + id, "stored on broker-a-", "replicated to broker-b-", "acked by tr-cli-g", "tr-cli-idle: not delivered"} {
			if !strings.Contains(out, want) {
				t.Fatalf("table output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"unknown topic", []string{"--topic", "no-such-topic", "--id", id}, "no-such-topic"},
			{"not found", []string{"--id", "no-such-message"}, "no message with id"},
			{"bad id", []string{"--id", "bad id"}, "printable ASCII"},
			{"key without topic", []string{"--key", "order-1"}, "--key needs --topic"},
			{"neither", []string{"--topic", "tr-cli"}, "--id ID or --key KEY"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := cli(t, "", append([]string{"trace", "--cluster", c}, tt.args...)...)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("duomq trace %v: %v, want an error mentioning %q", tt.args, err, tt.want)
				}
			})
		}
	})
}
