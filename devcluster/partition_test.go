package devcluster

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// needNetns fails under CI and skips elsewhere, saying why, when the sites
// cannot run in network namespaces here.
func needNetns(t *testing.T) {
	t.Helper()
	if why := NetnsAvailable(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("partition tests need network namespaces: %s", why)
		}
		t.Skipf("NOT RUN: partition tests need network namespaces: %s", why)
	}
}

// epochsIn maps the id of every record of topic in dc to its epoch.
// flagReplicated marks a record a follower copied (broker.proto, flags).
const flagReplicated = 2

// storedRecord is what a DC's log says of one message.
type storedRecord struct {
	epoch      uint64
	replicated bool // a copy of the other DC's record
}

func epochsIn(t *testing.T, brokers []string, topic string, queues int) map[string]storedRecord {
	t.Helper()
	out, err := tryEpochsIn(brokers, topic, queues)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryEpochsIn(brokers []string, topic string, queues int) (map[string]storedRecord, error) {
	out := map[string]storedRecord{}
	for q := range queues {
		ms, err := tryPullQueue(brokers[q%len(brokers)], topic, uint32(q))
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			out[m.GetId()] = storedRecord{epoch: m.GetEpoch(), replicated: m.GetFlags()&flagReplicated != 0}
		}
	}
	return out, nil
}

// TestAsymmetricPartitionNoSplitBrain cuts the primary DC (idc-a) off from
// idc-b and the witness while producers in both DCs send to an ordered
// topic with async replication, the case where only the lease stops the
// old primary: idc-a stops acking within the lease TTL, the controller
// promotes idc-b once idc-a's liveness records expired, no epoch has
// messages acked by two DCs, and after the heal idc-a cuts its
// unreplicated tail (quarantined) and follows idc-b.
func TestAsymmetricPartitionNoSplitBrain(t *testing.T) {
	needNetns(t)
	dir := t.TempDir()
	sup, _, f := startDevWith(t, Options{Dir: dir, Netns: true})
	const topic, queues = "fx", 4
	store := createOrderedRepl(t, f, topic, queues, SiteA, "async")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	loadA, stopA := runOrderedLoadKeys(ctx, t, f.Sites[SiteA].Proxy, topic, "a", 4)
	defer stopA()
	loadB, stopB := runOrderedLoadKeys(ctx, t, f.Sites[SiteB].Proxy, topic, "b", 4)
	defer stopB()
	eventually(t, 20*time.Second, "both loads acked", func() bool { return loadA.ackCount() >= 100 && loadB.ackCount() >= 100 })

	t.Logf("before the cut: %d records in idc-a, %d in idc-b", len(epochsIn(t, f.Sites[SiteA].Brokers, topic, queues)), len(epochsIn(t, f.Sites[SiteB].Brokers, topic, queues)))
	cut := time.Now()
	if err := sup.Partition(SiteA, SiteB, SiteWitness); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "idc-b acks again after the failover", func() bool {
		_, ok := loadB.firstAckAfter(time.Now().Add(-50 * time.Millisecond))
		o, _, err := store.GetOrdered(ctx, topic)
		return ok && err == nil && o.Primary == SiteB
	})
	before := loadB.ackCount()
	eventually(t, 20*time.Second, "idc-b goes on", func() bool { return loadB.ackCount() >= before+100 })
	stopA()
	stopB()

	var lastA time.Time
	loadA.mu.Lock()
	for _, a := range loadA.by {
		if a.dc == SiteA && a.at.After(lastA) {
			lastA = a.at
		}
	}
	loadA.mu.Unlock()
	const leaseTTL = 2 * time.Second
	t.Logf("partition at %s: idc-a's last ack %v after the cut (lease TTL %v)", cut.Format("15:04:05.000"), lastA.Sub(cut).Round(time.Millisecond), leaseTTL)
	if lastA.Sub(cut) > leaseTTL+time.Second {
		t.Fatalf("idc-a acked ordered writes %v after it was cut off (lease TTL %v)", lastA.Sub(cut), leaseTTL)
	}

	// Who acked what in which epoch, read from each DC's own log before
	// the heal (the host still reaches idc-a through the bridge).
	inA := epochsIn(t, f.Sites[SiteA].Brokers, topic, queues)
	inB := epochsIn(t, f.Sites[SiteB].Brokers, topic, queues)
	ackers := map[uint64]map[string]int{} // epoch -> DC -> acks
	unreplicated := 0
	for _, l := range []*orderedLoad{loadA, loadB} {
		l.mu.Lock()
		for id, a := range l.by {
			log := inA
			if a.dc == SiteB {
				log = inB
			}
			rec, ok := log[id]
			if !ok {
				_, inOther := inB[id]
				t.Errorf("message %s acked by %s %v after the cut is not in its log (in idc-b's: %v)", id, a.dc, a.at.Sub(cut), inOther)
				continue
			}
			// Who stored it: a retry answered from a replicated copy (the
			// send is idempotent) confirms the other DC's write; it is
			// not a write of this DC.
			storer := a.dc
			if rec.replicated {
				storer = map[string]string{SiteA: SiteB, SiteB: SiteA}[a.dc]
			}
			e := rec.epoch
			if ackers[e] == nil {
				ackers[e] = map[string]int{}
			}
			ackers[e][storer]++
			if a.dc == SiteA {
				if _, ok := inB[id]; !ok {
					unreplicated++
				}
			}
		}
		l.mu.Unlock()
	}
	var epochs []uint64
	for e := range ackers {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	for _, e := range epochs {
		t.Logf("epoch %d: acks by DC %v", e, ackers[e])
		if len(ackers[e]) > 1 {
			t.Errorf("split brain: epoch %d has messages acked by %v", e, ackers[e])
		}
	}
	t.Logf("async replication: %d messages acked by idc-a never reached idc-b (the RPO of async)", unreplicated)

	// Heal: idc-a returns as a follower, cuts its divergent tail and
	// catches up with idc-b.
	if err := sup.Heal(SiteA); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "idc-a's copy equals idc-b's", func() bool {
		// idc-a cuts its queues back meanwhile: a read may fail, then retry.
		a, errA := tryEpochsIn(f.Sites[SiteA].Brokers, topic, queues)
		b, errB := tryEpochsIn(f.Sites[SiteB].Brokers, topic, queues)
		if errA != nil || errB != nil || len(a) != len(b) {
			return false
		}
		for id := range b {
			if _, ok := a[id]; !ok {
				return false
			}
		}
		return true
	})
	if unreplicated > 0 {
		files, _ := filepath.Glob(filepath.Join(dir, SiteA, "broker-a-*", "quarantine", topic+"-*.jsonl"))
		if len(files) == 0 {
			t.Fatalf("%d unreplicated messages but no quarantine file in idc-a", unreplicated)
		}
	}
}
