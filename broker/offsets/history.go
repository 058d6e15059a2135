package offsets

import (
	"time"
)

// A message trace asks when a group's committed offset moved past a
// message. The file keeps only offsets, so each queue's recent moves are
// remembered in memory: at most historyMarks marks, thinned so that the
// newest stay precise and older ones get coarser in proportion to their
// age. What happened before the store was opened (or before a group's
// first commit, which is where it starts reading, not what it consumed)
// is unknown.
const (
	historyMarks = 32
	// coalesceWindow: a move this close to the start of the newest
	// interval extends that interval instead of adding a mark, so a busy
	// queue does not thin its history on every acknowledgement.
	coalesceWindow = 10 * time.Millisecond
)

// Passed bounds the moment a group's committed offset moved past a
// message: it was not past at After and was past at By (both zero when
// not remembered).
type Passed struct {
	After, By time.Time
	// Synced: the move was raised from another DC's offsets (Raise), not
	// committed by consumers of this broker.
	Synced bool
}

// mark says the committed offset reached off at at (unix nanoseconds).
type mark struct {
	off    int64
	at     int64
	synced bool
}

// history is one queue's recent commit marks. The committed offset was
// baseOff at baseAt; marks ascend in offset and time.
type history struct {
	baseOff int64
	baseAt  int64
	// baseSynced: the history started with a raise from another DC's
	// offsets, so every message before baseOff was consumed there.
	baseSynced bool
	marks      []mark
}

func (h *history) current() int64 {
	if n := len(h.marks); n > 0 {
		return h.marks[n-1].off
	}
	return h.baseOff
}

// left is the start time of interval i (the one ending at marks[i]).
func (h *history) left(i int) int64 {
	if i == 0 {
		return h.baseAt
	}
	return h.marks[i-1].at
}

// move records that the committed offset became off at now.
func (h *history) move(off, now int64, synced bool) {
	switch cur := h.current(); {
	case off == cur:
	case off < cur:
		h.moveBack(off, now)
	default:
		h.advance(off, now, synced)
	}
}

func (h *history) advance(off, now int64, synced bool) {
	n := len(h.marks)
	if n > 0 && h.marks[n-1].synced == synced && now-h.left(n-1) < int64(coalesceWindow) {
		h.marks[n-1] = mark{off: off, at: now, synced: synced}
		return
	}
	h.marks = append(h.marks, mark{off: off, at: now, synced: synced})
	if len(h.marks) > historyMarks {
		h.thin(now)
	}
}

// thin removes the mark whose removal merges two intervals into the one
// with the smallest span relative to its age, never the newest mark (the
// current offset).
func (h *history) thin(now int64) {
	best, bestCost := -1, 0.0
	for i := 0; i < len(h.marks)-1; i++ {
		left := h.left(i)
		cost := float64(h.marks[i+1].at-left) / float64(now-left+1)
		if best < 0 || cost < bestCost {
			best, bestCost = i, cost
		}
	}
	h.marks = append(h.marks[:best], h.marks[best+1:]...)
}

// moveBack handles a reset to an earlier offset: messages from off on are
// no longer passed; those before it keep their times.
func (h *history) moveBack(off, now int64) {
	if off < h.baseOff {
		*h = history{baseOff: off, baseAt: now}
		return
	}
	i := 0
	for i < len(h.marks) && h.marks[i].off <= off {
		i++
	}
	first := h.marks[i] // exists: off < current
	h.marks = h.marks[:i]
	if h.current() < off {
		h.marks = append(h.marks, mark{off: off, at: first.at, synced: first.synced})
	}
}

// find returns when the committed offset moved past offset; zero times
// when the history does not cover it.
func (h *history) find(offset int64) Passed {
	if offset < h.baseOff {
		return Passed{Synced: h.baseSynced}
	}
	for i, m := range h.marks {
		if m.off > offset {
			return Passed{After: time.Unix(0, h.left(i)), By: time.Unix(0, m.at), Synced: m.synced}
		}
	}
	return Passed{}
}

// recordLocked notes a change of k's committed offset from old (had:
// there was one) to off. The first commit of a queue starts its history:
// it is where the group starts reading. The caller holds s.mu.
func (s *Store) recordLocked(k key, old int64, had bool, off int64, synced bool) {
	now := s.now().UnixNano()
	h := s.hist[k]
	if h == nil {
		h = &history{baseOff: off, baseAt: now, baseSynced: synced && !had}
		if had {
			h.baseOff = old
		}
		s.hist[k] = h
	}
	h.move(off, now, synced)
}

// PassedAt reports whether group's committed offset of the queue is past
// offset (the message at offset was consumed, or skipped by a reset) and,
// as far as this store remembers, when it moved past: zero times when the
// move happened before the remembered history.
func (s *Store) PassedAt(group, topic string, queue uint32, offset int64) (p Passed, past bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{group, topic, queue}
	off, ok := s.offsets[k]
	if !ok || off <= offset {
		return Passed{}, false
	}
	if h := s.hist[k]; h != nil {
		p = h.find(offset)
	}
	return p, true
}
