package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func sendEpoch(b *Broker, topic string, epoch uint64) ([]SendResult, error) {
	return b.Send(context.Background(), SendRequest{Topic: topic, QueueID: 0, Epoch: epoch, Messages: []Message{{Body: []byte("x")}}})
}

func TestFencing(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, testConfig(dir))
	mustCreate(t, b, "ord", 1)
	if err := b.SetTopicEpoch("ord", 5); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		epoch     uint64
		wantErr   error
		wantTopic uint64 // the topic's epoch afterwards
	}{
		{"older epoch refused", 4, ErrStaleEpoch, 5},
		{"missing epoch refused", 0, ErrStaleEpoch, 5},
		{"current epoch accepted", 5, nil, 5},
		{"newer epoch adopted", 7, nil, 7},
		{"the old current epoch is now stale", 5, ErrStaleEpoch, 7},
	}
	var offsets []int64
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res, err := sendEpoch(b, "ord", s.epoch)
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("err = %v, want %v", err, s.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "epoch") {
				t.Fatalf("message does not explain: %v", err)
			}
			if err == nil {
				offsets = append(offsets, res[0].QueueOffset)
			}
			if tc, _ := b.Topic("ord"); tc.Epoch != s.wantTopic {
				t.Fatalf("topic epoch %d, want %d", tc.Epoch, s.wantTopic)
			}
		})
	}
	_, err := sendEpoch(b, "ord", 3)
	if err == nil || !strings.Contains(err.Error(), "epoch 7") || !strings.Contains(err.Error(), "epoch 3") {
		t.Fatalf("stale epoch error must name both epochs: %v", err)
	}
	waitDispatched(t, b)
	pr, err := b.Pull(context.Background(), PullRequest{Topic: "ord", MaxMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 2 || pr.Messages[0].Epoch != 5 || pr.Messages[1].Epoch != 7 {
		t.Fatalf("stored epochs: %+v (offsets %v)", pr.Messages, offsets)
	}

	// Raising only: lower or equal epochs change nothing, nor does an update.
	if err := b.SetTopicEpoch("ord", 6); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateTopic(TopicConfig{Name: "ord", Queues: 2, Perm: PermReadWrite}); err != nil {
		t.Fatal(err)
	}
	if tc, _ := b.Topic("ord"); tc.Epoch != 7 {
		t.Fatalf("epoch lowered to %d", tc.Epoch)
	}
	if err := b.SetTopicEpoch("nope", 1); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}

	// Unfenced topics take epoch 0 and store it.
	mustCreate(t, b, "plain", 1)
	if _, err := sendEpoch(b, "plain", 0); err != nil {
		t.Fatal(err)
	}

	// The epoch is persisted with the topic.
	b.Close()
	b2 := openBroker(t, testConfig(dir))
	if tc, _ := b2.Topic("ord"); tc.Epoch != 7 {
		t.Fatalf("epoch after reopen %d", tc.Epoch)
	}
	if _, err := sendEpoch(b2, "ord", 6); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale epoch after reopen: %v", err)
	}
}
