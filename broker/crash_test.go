package broker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "DUOMQ_CRASH_CHILD_DIR"

// runCrashChild is the child side of TestCrashSIGKILL: it sends with sync
// flush from several goroutines and prints one line per acknowledged
// message ("queue offset sha256(body) id") until it is killed.
func runCrashChild() {
	cfg := crashConfig(os.Getenv(crashChildEnv))
	b, err := New(cfg, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	b.Start(context.Background())
	if _, err := b.Topic("crash"); err != nil {
		if _, err := b.CreateTopic(TopicConfig{Name: "crash", Queues: 4}); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
			for i := 0; ; i++ {
				body := make([]byte, 64+rng.IntN(2048))
				for j := range body {
					body[j] = byte(rng.Uint32())
				}
				n := 1 + rng.IntN(3)
				msgs := make([]Message, n)
				for k := range msgs {
					msgs[k] = Message{Body: body[k*len(body)/n : (k+1)*len(body)/n]}
				}
				res, err := b.Send(context.Background(), SendRequest{Topic: "crash", QueueID: int32(rng.IntN(4)), Messages: msgs})
				if err != nil {
					continue
				}
				mu.Lock()
				for k, r := range res {
					sum := sha256.Sum256(msgs[k].Body)
					fmt.Fprintf(out, "%d %d %s %s\n", r.QueueID, r.QueueOffset, hex.EncodeToString(sum[:]), r.ID)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func crashConfig(dir string) Config {
	c := testConfig(dir)
	c.FlushMode = FlushSync
	c.SegmentBytes = 512 << 10 // several segment rolls per run
	c.CheckpointInterval = 30 * time.Millisecond
	return c
}

type ack struct {
	queue  uint32
	offset int64
	sum    string
	id     string
}

// TestCrashSIGKILL kills a sending child process with SIGKILL at random
// moments, many times. After each kill, every message the child saw acked
// must be readable, byte-identical, at its offset, and every queue must be
// contiguous and in order.
func TestCrashSIGKILL(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	if s := os.Getenv("DUOMQ_CRASH_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	acked := map[[2]int64]ack{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for r := 0; r < rounds; r++ {
		got := runChildUntilKilled(t, dir, time.Duration(20+rng.IntN(400))*time.Millisecond)
		if len(got) == 0 {
			t.Fatalf("round %d: child acked nothing", r)
		}
		for _, a := range got {
			acked[[2]int64{int64(a.queue), a.offset}] = a
		}
		verifyAcked(t, dir, acked)
		t.Logf("round %d: %d acked this round, %d in all, all readable", r, len(got), len(acked))
	}
}

func runChildUntilKilled(t *testing.T, dir string, after time.Duration) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q", sc.Text())
	}
	timer := time.AfterFunc(after, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	var acks []ack
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || len(f[2]) != 64 {
			continue // a line cut by the kill
		}
		q, _ := strconv.ParseUint(f[0], 10, 32)
		off, _ := strconv.ParseInt(f[1], 10, 64)
		acks = append(acks, ack{uint32(q), off, f[2], f[3]})
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", err)
	}
	return acks
}

func verifyAcked(t *testing.T, dir string, acked map[[2]int64]ack) {
	t.Helper()
	b, err := New(crashConfig(dir), nil, nil)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer b.Close()
	for q := uint32(0); q < 4; q++ {
		lo, hi, err := b.QueueOffsets("crash", q)
		if err != nil {
			t.Fatal(err)
		}
		for off := lo; off < hi; {
			res, err := b.Pull(context.Background(), PullRequest{Topic: "crash", QueueID: q, Offset: off, MaxMessages: 256})
			if err != nil {
				t.Fatalf("queue %d offset %d after crash: %v", q, off, err)
			}
			for i, m := range res.Messages {
				if m.QueueOffset != off+int64(i) {
					t.Fatalf("queue %d: offset %d holds message with offset %d", q, off+int64(i), m.QueueOffset)
				}
				a, ok := acked[[2]int64{int64(q), m.QueueOffset}]
				sum := sha256.Sum256(m.Body)
				if ok && (a.sum != hex.EncodeToString(sum[:]) || a.id != m.ID) {
					t.Fatalf("queue %d offset %d: body or id differs from the acked one", q, m.QueueOffset)
				}
			}
			off = res.NextOffset
		}
		for k := range acked {
			if k[0] == int64(q) && k[1] >= hi {
				t.Fatalf("acked message queue %d offset %d lost (queue max %d)", q, k[1], hi)
			}
		}
	}
}
