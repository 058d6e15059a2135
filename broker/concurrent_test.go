package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentProducersConsumers runs producers and long-polling
// consumers at once (meant for -race): every message arrives exactly once,
// and each producer's messages keep their order within a queue.
func TestConcurrentProducersConsumers(t *testing.T) {
	for _, mode := range []string{FlushSync, FlushAsync} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.FlushMode = mode
			b := openBroker(t, cfg)
			mustCreate(t, b, "c", 3)
			const producers, perProducer = 6, 300
			var wg sync.WaitGroup
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perProducer; i++ {
						_, err := b.Send(context.Background(), SendRequest{Topic: "c", QueueID: int32(p % 3), Messages: []Message{{Body: fmt.Appendf(nil, "%d:%d", p, i)}}})
						if err != nil {
							t.Errorf("send: %v", err)
							return
						}
					}
				}()
			}
			got := make([][]string, 3)
			for q := 0; q < 3; q++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[q] = consumeQueue(t, b, uint32(q), producers/3*perProducer)
				}()
			}
			wg.Wait()
			total := 0
			for q, bodies := range got {
				total += len(bodies)
				last := map[int]int{}
				for _, body := range bodies {
					var p, i int
					fmt.Sscanf(body, "%d:%d", &p, &i)
					if prev, ok := last[p]; ok && i != prev+1 {
						t.Fatalf("queue %d: producer %d message %d after %d", q, p, i, prev)
					}
					last[p] = i
				}
			}
			if total != producers*perProducer {
				t.Fatalf("consumed %d, want %d", total, producers*perProducer)
			}
		})
	}
}

func consumeQueue(t *testing.T, b *Broker, q uint32, want int) []string {
	var bodies []string
	off := int64(0)
	deadline := time.Now().Add(20 * time.Second)
	for len(bodies) < want && time.Now().Before(deadline) {
		res, err := b.Pull(context.Background(), PullRequest{Topic: "c", QueueID: q, Offset: off, Wait: 100 * time.Millisecond, MaxMessages: 64})
		if err != nil {
			t.Errorf("pull: %v", err)
			return bodies
		}
		for _, m := range res.Messages {
			bodies = append(bodies, string(m.Body))
		}
		off = res.NextOffset
	}
	return bodies
}
