package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// streamTables are the tables with a stream_pos column. At start-up the
// stream continues after the highest position found in any of them, so a
// new table with a stream_pos column must be listed here (a test checks).
// Nothing may ever delete the row that holds the highest position.
var streamTables = []string{"events", "account_data", "push_rules", "receipts", "to_device_inbox", "to_device_deleted", "presence", "device_lists",
	"erased_users", "event_rewrites", // privacy (erase.go)
}

// stream hands out the positions of the global stream and knows up to
// where every position has finished. Positions are handed out in memory,
// not by a locked counter row, so that transactions of different rooms and
// users commit concurrently (and PostgreSQL can flush their commits
// together). Because a transaction may commit after a later one, readers
// must only read up to Current: every position at or below it has committed
// (or rolled back, leaving a harmless gap).
type stream struct {
	mu      sync.Mutex
	last    int64              // highest position handed out
	pending map[int64]struct{} // handed out, transaction not finished
	current int64              // every position <= current has finished

	listener func(pos int64, changes []Change) // see DB.OnChange
	ready    []Change                          // committed, waiting for current to reach them
	publish  sync.Mutex                        // keeps deliveries in stream order
}

// init continues the stream after the highest stored position.
func (s *stream) init(ctx context.Context, db *DB) error {
	var high int64
	for _, t := range append([]string{"stream_position"}, streamTables...) {
		col := "stream_pos"
		if t == "stream_position" {
			col = "pos" // the counter of schema version 1, kept as a floor
		}
		var v int64
		if err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(`+col+`), 0) FROM `+t).Scan(&v); err != nil {
			return fmt.Errorf("storage: highest stream position in %s: %w", t, err)
		}
		high = max(high, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.current, s.pending = high, high, map[int64]struct{}{}
	return nil
}

// next hands out a position.
func (s *stream) next() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[int64]struct{}{}
	}
	s.last++
	s.pending[s.last] = struct{}{}
	return s.last
}

// finish records that the transaction holding positions has committed or
// rolled back, with the changes it made. Positions of a rolled-back
// transaction that nobody has passed yet are handed out again, so a no-op
// write does not move the stream; others stay as harmless gaps. Committed
// changes go to the listener once current has reached them.
func (s *stream) finish(positions []int64, committed bool, changes []Change) {
	if len(positions) == 0 && len(changes) == 0 {
		return
	}
	s.mu.Lock()
	for _, p := range positions {
		delete(s.pending, p)
	}
	if !committed {
		for i := len(positions) - 1; i >= 0 && positions[i] == s.last; i-- {
			s.last-- // positions are taken in increasing order within a transaction
		}
	}
	if len(s.pending) == 0 {
		s.current = s.last
	} else {
		low := s.last
		for p := range s.pending {
			low = min(low, p)
		}
		s.current = low - 1
	}
	if committed && s.listener != nil {
		s.ready = append(s.ready, changes...)
	}
	var out []Change
	if len(s.ready) > 0 {
		keep := s.ready[:0]
		for _, c := range s.ready {
			if c.Pos <= s.current {
				out = append(out, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(s.ready[len(keep):])
		s.ready = keep
	}
	if len(out) == 0 {
		s.mu.Unlock()
		return
	}
	slices.SortStableFunc(out, func(a, b Change) int { return cmp.Compare(a.Pos, b.Pos) })
	cur, listener := s.current, s.listener
	// Taking publish before releasing mu hands deliveries over in the
	// order their positions were published.
	s.publish.Lock()
	s.mu.Unlock()
	defer s.publish.Unlock()
	listener(cur, out)
}

// position returns the highest position up to which everything has finished.
func (s *stream) position() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}
