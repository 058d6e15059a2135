package offsets

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/duomq/duomq/internal/atomicfile"
)

// Entry is one committed offset.
type Entry struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	Queue  uint32 `json:"queue"`
	Offset int64  `json:"offset"`
}

type key struct {
	group, topic string
	queue        uint32
}

// Store holds the consumer offsets of one broker.
type Store struct {
	path string

	flushMu sync.Mutex // serialises Flush and Close

	mu      sync.Mutex // guards the fields below
	offsets map[key]int64
	hist    map[key]*history // recent moves, memory only (history.go)
	now     func() time.Time
	gen     uint64 // bumped by every change
	saved   uint64 // gen of the table on disk
	closed  bool
}

// Open loads the offsets stored at path; a missing file is an empty store.
// The directory is created if needed.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	if err := atomicfile.RemoveTemps(path); err != nil {
		return nil, err
	}
	s := &Store{path: path, offsets: map[key]int64{}, hist: map[key]*history{}, now: time.Now}
	data, err := atomicfile.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	if s.offsets, err = decode(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Commit records offset as the next offset group reads from queue of topic.
// It may move an offset back (a consumer resetting its position). Names
// must be valid UTF-8 (JSON cannot carry anything else). After Close it
// still updates memory, but nothing is persisted any more.
func (s *Store) Commit(group, topic string, queue uint32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{group, topic, queue}
	old, had := s.offsets[k]
	if had && old == offset {
		return
	}
	s.offsets[k] = offset
	s.recordLocked(k, old, had, offset, false)
	s.gen++
}

// Raise commits offset unless the group's offset is already there or
// further; it reports whether it moved the offset.
func (s *Store) Raise(group, topic string, queue uint32, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{group, topic, queue}
	old, had := s.offsets[k]
	if had && old >= offset {
		return false
	}
	s.offsets[k] = offset
	s.recordLocked(k, old, had, offset, true)
	s.gen++
	return true
}

// Get returns the committed offset, and false if there is none.
func (s *Store) Get(group, topic string, queue uint32) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.offsets[key{group, topic, queue}]
	return off, ok
}

// Snapshot returns every committed offset sorted by group, topic, queue.
func (s *Store) Snapshot() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *Store) snapshotLocked() []Entry {
	out := make([]Entry, 0, len(s.offsets))
	for k, off := range s.offsets {
		out = append(out, Entry{Group: k.group, Topic: k.topic, Queue: k.queue, Offset: off})
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// Queue returns the committed offsets of every group of one queue,
// sorted by group.
func (s *Store) Queue(topic string, queue uint32) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for k, off := range s.offsets {
		if k.topic == topic && k.queue == queue {
			out = append(out, Entry{Group: k.group, Topic: k.topic, Queue: k.queue, Offset: off})
		}
	}
	slices.SortFunc(out, compareEntries)
	return out
}

func compareEntries(a, b Entry) int {
	return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Queue, b.Queue))
}

// DeleteTopic forgets every offset of topic, for every group.
func (s *Store) DeleteTopic(topic string) {
	s.deleteWhere(func(k key) bool { return k.topic == topic })
}

// DeleteGroup forgets every offset of group.
func (s *Store) DeleteGroup(group string) {
	s.deleteWhere(func(k key) bool { return k.group == group })
}

func (s *Store) deleteWhere(match func(key) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.offsets)
	maps.DeleteFunc(s.offsets, func(k key, _ int64) bool { return match(k) })
	maps.DeleteFunc(s.hist, func(k key, _ *history) bool { return match(k) })
	if len(s.offsets) != n {
		s.gen++
	}
}

// Flush writes the table to disk if it changed since the last Flush.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.flushLocked()
}

func (s *Store) flushLocked() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.gen == s.saved {
		s.mu.Unlock()
		return nil
	}
	gen, entries := s.gen, s.snapshotLocked()
	s.mu.Unlock()

	data, err := encode(entries)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path, data, 0o644); err != nil {
		return fmt.Errorf("offsets: %w", err)
	}
	s.mu.Lock()
	s.saved = gen
	s.mu.Unlock()
	return nil
}

// Close flushes the store. It is safe to call more than once.
func (s *Store) Close() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	err := s.flushLocked()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}
