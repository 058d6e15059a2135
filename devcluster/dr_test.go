package devcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// orderedLoad sends, per sharding key, sequence numbers 0, 1, 2, ... one
// at a time through one DC's proxy with the SDK (ids fixed before the
// first attempt, so a retry is not stored twice), retrying a failed
// sequence number until it is acked or the load stops. It records every
// ack with its time.
type orderedLoad struct {
	mu    sync.Mutex
	acked map[string]map[int]string // key -> seq -> id
	times []time.Time               // ack times, in order
	by    map[string]ackInfo        // id -> who acked it and when
	fails int
}

type ackInfo struct {
	dc string
	at time.Time
}

func runOrderedLoad(ctx context.Context, t *testing.T, proxy, topic string, keys int) (*orderedLoad, func()) {
	return runOrderedLoadKeys(ctx, t, proxy, topic, "key", keys)
}

// runOrderedLoadKeys is runOrderedLoad with keys prefix-0, prefix-1, ...
func runOrderedLoadKeys(ctx context.Context, t *testing.T, proxy, topic, prefix string, keys int) (*orderedLoad, func()) {
	cfg := client.DefaultConfig()
	cfg.Proxy, cfg.App = proxy, "dr-test"
	cfg.RequestTimeout = time.Second
	cfg.Retry.MaxAttempts = 3
	cfg.Retry.InitialBackoff, cfg.Retry.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	cli, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := cli.NewProducer()
	l := &orderedLoad{acked: map[string]map[int]string{}, by: map[string]ackInfo{}}
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("%s-%d", prefix, k)
		l.acked[key] = map[int]string{}
		wg.Go(func() {
			for seq := 0; lctx.Err() == nil && seq < 100000; seq++ {
				m := &client.Message{Topic: topic, ShardingKey: key, Body: fmt.Appendf(nil, "%s:%d", key, seq)}
				for lctx.Err() == nil {
					r, err := p.Send(lctx, m)
					l.mu.Lock()
					if err == nil {
						l.acked[key][seq] = r.ID
						l.times = append(l.times, time.Now())
						l.by[r.ID] = ackInfo{dc: r.DC, at: time.Now()}
					} else if lctx.Err() == nil {
						l.fails++
					}
					l.mu.Unlock()
					if err == nil {
						break
					}
				}
			}
		})
	}
	return l, func() { cancel(); wg.Wait(); cli.Close() }
}

// firstAckAfter is the time of the first ack after t0.
func (l *orderedLoad) firstAckAfter(t0 time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.times {
		if at.After(t0) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (l *orderedLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.times)
}

// maxGap is the longest time between consecutive acks.
func (l *orderedLoad) maxGap() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := append([]time.Time(nil), l.times...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

// verdict compares the acks with what a DC's brokers hold.
type verdict struct {
	acked, lost, duplicates, reordered int
}

// checkStored reads every queue of topic from dc's brokers (queue q on
// broker q mod n) and checks the load's acks against it: every acked
// message is stored, and each key's sequence numbers first appear in
// increasing order.
func (l *orderedLoad) checkStored(t *testing.T, f clusterfile.File, dc, topic string, queues int) verdict {
	t.Helper()
	seen := map[string]int{}    // id -> copies
	order := map[string][]int{} // key -> seqs in stored order (first copies)
	first := map[string]bool{}  // id seen
	brokers := f.Sites[dc].Brokers
	for q := range queues {
		for _, m := range pullQueue(t, brokers[q%len(brokers)], topic, uint32(q)) {
			seen[m.GetId()]++
			if first[m.GetId()] {
				continue
			}
			first[m.GetId()] = true
			var key string
			var seq int
			if _, err := fmt.Sscanf(string(bytes.ReplaceAll(m.GetBody(), []byte(":"), []byte(" "))), "%s %d", &key, &seq); err != nil {
				t.Fatalf("body %q: %v", m.GetBody(), err)
			}
			order[key] = append(order[key], seq)
		}
	}
	var v verdict
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, seqs := range l.acked {
		for _, id := range seqs {
			v.acked++
			if seen[id] == 0 {
				v.lost++
			}
		}
	}
	for _, n := range seen {
		v.duplicates += n - 1
	}
	for _, seqs := range order {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				v.reordered++
			}
		}
	}
	return v
}

func pullQueue(t *testing.T, addr, topic string, q uint32) []*brokerpb.Message {
	t.Helper()
	out, err := tryPullQueue(addr, topic, q)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryPullQueue reads a whole queue; an error (the queue was cut back
// while it was read, say) is returned.
func tryPullQueue(addr, topic string, q uint32) ([]*brokerpb.Message, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	bc := brokerpb.NewBrokerClient(cc)
	var out []*brokerpb.Message
	for off := int64(0); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := bc.Pull(ctx, &brokerpb.PullRequest{Topic: topic, QueueId: q, Offset: off, MaxMessages: 1024})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("pull %s/%d@%d from %s: %w", topic, q, off, addr, err)
		}
		out = append(out, res.GetMessages()...)
		if res.GetNextOffset() == off {
			return out, nil
		}
		off = res.GetNextOffset()
	}
}

// controllerPost calls the controller API of a dev cluster.
func controllerPost(t *testing.T, f clusterfile.File, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.ControllerAPI+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+f.ControllerToken)
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: time.Minute, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		r.Header.Set("Authorization", "Bearer "+f.ControllerToken)
		return nil
	}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("controller %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("controller %s answer: %v", path, err)
	}
	return resp.StatusCode
}

func createOrdered(t *testing.T, f clusterfile.File, topic string, queues int, primary string) *meta.Store {
	t.Helper()
	return createOrderedRepl(t, f, topic, queues, primary, meta.ReplicationSync)
}

func createOrderedRepl(t *testing.T, f clusterfile.File, topic string, queues int, primary string, repl meta.Replication) *meta.Store {
	t.Helper()
	store := metaStore(t, f.EtcdEndpoints())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.CreateTopic(ctx, meta.Topic{Name: topic, Queues: queues, Ordered: true, Primary: primary, Replication: repl}); err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{SiteA, SiteB} {
		for _, addr := range f.Sites[dc].Brokers {
			eventually(t, 10*time.Second, "topic on broker "+addr, func() bool { return brokerHas(t, addr, topic, uint32(queues)) })
		}
	}
	return store
}

// TestPrimarySiteKilledUnderSyncOrderedLoad SIGKILLs the whole primary
// site while producers in the other DC send ordered messages with
// replication=sync: the controller fails the topic over once the dead
// DC's leases expired; no acked message is lost, per-key order holds,
// duplicates are counted, and the time until the topic took writes again
// is printed.
func TestPrimarySiteKilledUnderSyncOrderedLoad(t *testing.T) {
	_, _, f := startDev(t)
	const topic, queues = "payments", 4
	store := createOrdered(t, f, topic, queues, SiteA)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	load, stop := runOrderedLoad(ctx, t, f.Sites[SiteB].Proxy, topic, 8)
	defer stop()
	eventually(t, 20*time.Second, "ordered load acked through idc-a", func() bool { return load.ackCount() >= 200 })

	killed := time.Now()
	devPost(t, f, "/sites/idc-a/kill", http.StatusOK)
	eventually(t, 30*time.Second, "writes acked again after the kill", func() bool {
		_, ok := load.firstAckAfter(killed.Add(100 * time.Millisecond))
		return ok
	})
	at, _ := load.firstAckAfter(killed.Add(100 * time.Millisecond))
	before := load.ackCount()
	eventually(t, 20*time.Second, "load goes on in idc-b", func() bool { return load.ackCount() >= before+200 })
	stop()

	o, _, err := store.GetOrdered(ctx, topic)
	if err != nil || o.Primary != SiteB || o.Blocked {
		t.Fatalf("fencing record after the kill: %+v, %v", o, err)
	}
	v := load.checkStored(t, f, SiteB, topic, queues)
	t.Logf("unplanned failover: topic writable again %v after SIGKILL of idc-a (target 3s); longest gap between acks %v; acked %d, lost %d, duplicates %d, reordered %d, failed attempts %d",
		at.Sub(killed).Round(time.Millisecond), load.maxGap().Round(time.Millisecond), v.acked, v.lost, v.duplicates, v.reordered, load.fails)
	if v.lost != 0 || v.reordered != 0 {
		t.Fatalf("acked %d: lost %d, reordered %d", v.acked, v.lost, v.reordered)
	}
	if d := at.Sub(killed); d > 15*time.Second {
		t.Fatalf("writable again only after %v", d)
	}
}

// TestPlannedSwitchoverUnderLoad moves an ordered sync topic to the other
// DC while producers send: nothing lost, nothing reordered, and the write
// pause the controller measured is printed.
func TestPlannedSwitchoverUnderLoad(t *testing.T) {
	_, _, f := startDev(t)
	const topic, queues = "ledger", 4
	createOrdered(t, f, topic, queues, SiteA)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	load, stop := runOrderedLoad(ctx, t, f.Sites[SiteA].Proxy, topic, 8)
	defer stop()
	eventually(t, 20*time.Second, "ordered load acked", func() bool { return load.ackCount() >= 200 })

	var rep struct {
		Transitions []struct {
			Outcome      string  `json:"outcome"`
			PauseSeconds float64 `json:"pause_seconds"`
			Error        string  `json:"error"`
		} `json:"transitions"`
	}
	started := time.Now()
	if code := controllerPost(t, f, "/v1/switchover", map[string]string{"topic": topic, "to": SiteB}, &rep); code != http.StatusOK {
		t.Fatalf("switchover: HTTP %d %+v", code, rep)
	}
	took := time.Since(started)
	before := load.ackCount()
	eventually(t, 20*time.Second, "load goes on after the switchover", func() bool { return load.ackCount() >= before+200 })
	stop()
	v := load.checkStored(t, f, SiteB, topic, queues)
	va := load.checkStored(t, f, SiteA, topic, queues)
	t.Logf("planned switchover: %+v in %v; longest gap between acks %v; acked %d, lost %d, duplicates %d, reordered %d (idc-a's copy: lost %d)",
		rep.Transitions, took.Round(time.Millisecond), load.maxGap().Round(time.Millisecond), v.acked, v.lost, v.duplicates, v.reordered, va.lost)
	if len(rep.Transitions) != 1 || rep.Transitions[0].Outcome != "ok" {
		t.Fatalf("switchover report %+v", rep)
	}
	if v.lost != 0 || v.reordered != 0 || v.duplicates != 0 {
		t.Fatalf("acked %d: lost %d, reordered %d, duplicates %d", v.acked, v.lost, v.reordered, v.duplicates)
	}
	// idc-a follows idc-b now: its copy catches up with everything too.
	eventually(t, 20*time.Second, "idc-a's copy complete", func() bool {
		return load.checkStored(t, f, SiteA, topic, queues).lost == 0
	})
}
