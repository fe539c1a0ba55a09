package push

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// countsModel is the naive reference: every notifying event, and the
// newest receipt per thread; an event is unread when it is after both the
// unthreaded receipt and its thread's.
type countsModel struct {
	events     []unreadEntry
	unthreaded int64
	threads    map[string]int64
}

func (m *countsModel) receipt(thread string, depth int64) {
	if thread == "" {
		m.unthreaded = max(m.unthreaded, depth)
		return
	}
	m.threads[thread] = max(m.threads[thread], depth)
}

func (m *countsModel) counts() RoomCounts {
	var rc RoomCounts
	for _, e := range m.events {
		if e.depth <= m.unthreaded || e.depth <= m.threads[e.thread] {
			continue
		}
		rc.Total.plus(e, 1)
		if e.thread == ThreadMain {
			rc.Main.plus(e, 1)
			continue
		}
		if rc.Threads == nil {
			rc.Threads = map[string]Counts{}
		}
		t := rc.Threads[e.thread]
		t.plus(e, 1)
		rc.Threads[e.thread] = t
	}
	return rc
}

// reload builds the state as worker.load does: the receipts first, then
// every notifying event in depth order.
func (m *countsModel) reload() *unread {
	u := &unread{}
	u.receipt("", m.unthreaded)
	for t, d := range m.threads {
		u.receipt(t, d)
	}
	for _, e := range m.events {
		u.add(e)
	}
	return u
}

func sameCounts(a, b RoomCounts) bool {
	return a.Total == b.Total && a.Main == b.Main && maps.Equal(a.Threads, b.Threads)
}

// TestUnreadCountsExact checks the ring-plus-overflow state against the
// naive model for random events (threaded and not, some highlights) and
// receipts (threaded and unthreaded, at random depths, many before the
// ring), reloading the state whenever a receipt says it is unknown.
func TestUnreadCountsExact(t *testing.T) {
	threads := []string{ThreadMain, "$root1", "$root2", "$root3"}
	reloads, overflowed := 0, 0
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		m := &countsModel{threads: map[string]int64{}}
		u := m.reload()
		depth := int64(10)
		for step := range 400 {
			switch r := rng.IntN(10); {
			case r < 7: // an event; about half of them notify
				depth += 1 + int64(rng.IntN(3))
				if rng.IntN(2) == 0 {
					continue
				}
				e := unreadEntry{depth: depth, thread: threads[rng.IntN(len(threads))], highlight: rng.IntN(5) == 0}
				m.events = append(m.events, e)
				u.add(e)
				if u.over.total.Notifications > 0 {
					overflowed++
				}
			default: // a receipt at a random depth seen so far
				d := 1 + rng.Int64N(depth)
				if rng.IntN(4) == 0 {
					d = depth - rng.Int64N(20) // mostly inside the ring
				}
				thread := ""
				if rng.IntN(2) == 0 {
					thread = threads[rng.IntN(len(threads))]
				}
				m.receipt(thread, d)
				if !u.receipt(thread, d) {
					reloads++
					u = m.reload()
				}
			}
			if got, want := u.counts(), m.counts(); !sameCounts(got, want) {
				t.Fatalf("seed %d step %d: counts %+v, want %+v", seed, step, got, want)
			}
			if len(u.entries) > ringSize {
				t.Fatalf("seed %d: %d entries in the ring", seed, len(u.entries))
			}
		}
	}
	if reloads == 0 || overflowed == 0 {
		t.Fatalf("the test did not exercise the overflow (%d) or reloads (%d)", overflowed, reloads)
	}
}

// TestUnreadMemoryBounded checks that 10,000 unread notifications keep at
// most ringSize entries in memory and are all counted.
func TestUnreadMemoryBounded(t *testing.T) {
	u := &unread{}
	for i := range 10_000 {
		thread := ThreadMain
		if i%3 == 0 {
			thread = "$root"
		}
		u.add(unreadEntry{depth: int64(i + 1), thread: thread, highlight: i%10 == 0})
	}
	if len(u.entries) > ringSize || cap(u.entries) > ringSize {
		t.Fatalf("len %d cap %d, want at most %d", len(u.entries), cap(u.entries), ringSize)
	}
	rc := u.counts()
	if rc.Total != (Counts{Notifications: 10_000, Highlights: 1_000}) || rc.Threads["$root"].Notifications != 3_334 || rc.Main.Notifications != 6_666 {
		t.Fatalf("counts %+v", rc)
	}
	// A threaded receipt after everything clears its thread exactly.
	if !u.receipt("$root", 10_000) {
		t.Fatal("receipt after the ring reported unknown")
	}
	if rc := u.counts(); rc.Total.Notifications != 6_666 || rc.Threads != nil {
		t.Fatalf("after the thread's receipt: %+v", rc)
	}
	// A receipt before the overflowed entries cannot be resolved.
	if u.receipt("", 5) {
		t.Fatal("receipt before overflowed entries resolved from memory")
	}
	if !u.receipt("", 10_000) || len(u.entries) != 0 || u.counts().Total.Notifications != 0 {
		t.Fatalf("after reading everything: %+v", u.counts())
	}
}
