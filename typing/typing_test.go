package typing_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aula-chat/aula/typing"
)

// fakeClock is a Clock that moves only when Advance is called; due timers
// fire synchronously inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) typing.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// pending counts the timers not yet fired or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// Advance moves the clock and runs the timers that are due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	for {
		var due *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(c.now) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		if due == nil {
			break
		}
		due.stopped = true
		c.mu.Unlock()
		due.f()
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// recorder collects notify calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) notify(roomID string, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, roomID)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func TestSetAndExpire(t *testing.T) {
	type step struct {
		advance time.Duration
		set     *setArgs // nil: only advance
		want    []string // typing in !r after the step
		changed bool     // whether the step took a serial
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"start and stop", []step{
			{set: &setArgs{"@a:x", true, 10 * time.Second}, want: []string{"@a:x"}, changed: true},
			{set: &setArgs{"@b:x", true, 10 * time.Second}, want: []string{"@a:x", "@b:x"}, changed: true},
			{set: &setArgs{"@a:x", false, 0}, want: []string{"@b:x"}, changed: true},
			{set: &setArgs{"@a:x", false, 0}, want: []string{"@b:x"}, changed: false},
			{set: &setArgs{"@nobody:x", false, 0}, want: []string{"@b:x"}, changed: false},
		}},
		{"timeout", []step{
			{set: &setArgs{"@a:x", true, 10 * time.Second}, want: []string{"@a:x"}, changed: true},
			{advance: 9999 * time.Millisecond, want: []string{"@a:x"}},
			{advance: time.Millisecond, want: []string{}, changed: true},
		}},
		{"typing on moves the deadline without a change", []step{
			{set: &setArgs{"@a:x", true, 10 * time.Second}, want: []string{"@a:x"}, changed: true},
			{advance: 8 * time.Second, set: &setArgs{"@a:x", true, 10 * time.Second}, want: []string{"@a:x"}},
			{advance: 9 * time.Second, want: []string{"@a:x"}},
			{advance: time.Second, want: []string{}, changed: true},
		}},
		{"timeout capped at MaxTimeout", []step{
			{set: &setArgs{"@a:x", true, time.Hour}, want: []string{"@a:x"}, changed: true},
			{advance: typing.MaxTimeout - time.Millisecond, want: []string{"@a:x"}},
			{advance: time.Millisecond, want: []string{}, changed: true},
		}},
		{"zero timeout is a stop", []step{
			{set: &setArgs{"@a:x", true, 0}, want: []string{}},
			{set: &setArgs{"@a:x", true, time.Second}, want: []string{"@a:x"}, changed: true},
			{set: &setArgs{"@a:x", true, -time.Second}, want: []string{}, changed: true},
		}},
		{"users expire separately", []step{
			{set: &setArgs{"@a:x", true, 5 * time.Second}, want: []string{"@a:x"}, changed: true},
			{set: &setArgs{"@b:x", true, 20 * time.Second}, want: []string{"@a:x", "@b:x"}, changed: true},
			{advance: 5 * time.Second, want: []string{"@b:x"}, changed: true},
			{advance: 10 * time.Second, want: []string{"@b:x"}},
			{advance: 5 * time.Second, want: []string{}, changed: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rec := &recorder{}
			tr := typing.New(clock, rec.notify)
			serial := tr.Serial()
			for i, st := range tt.steps {
				clock.Advance(st.advance) // due timers notify here, before any call
				if st.set != nil {
					tr.Set("!r", st.set.user, st.set.typing, st.set.timeout)
				}
				calls := rec.take()
				if got := tr.Typing("!r"); !slices.Equal(got, st.want) {
					t.Errorf("step %d: Typing = %q, want %q", i, got, st.want)
				}
				next := tr.Serial()
				if got := next > serial; got != st.changed {
					t.Errorf("step %d: serial %d -> %d, want changed=%v", i, serial, next, st.changed)
				}
				if st.changed && !slices.Equal(calls, []string{"!r"}) || !st.changed && len(calls) != 0 {
					t.Errorf("step %d: notify calls %q, want changed=%v", i, calls, st.changed)
				}
				serial = next
			}
		})
	}
}

type setArgs struct {
	user    string
	typing  bool
	timeout time.Duration
}

func TestOneTimer(t *testing.T) {
	clock := newFakeClock()
	tr := typing.New(clock, nil)
	for i := range 100 {
		tr.Set("!r", "@u"+string(rune('a'+i%26))+":x", true, time.Duration(30+i)*time.Second)
	}
	if n := clock.pending(); n != 1 {
		t.Errorf("%d timers pending for 26 typing users, want 1", n)
	}
	clock.Advance(3 * time.Minute)
	if got := tr.Typing("!r"); len(got) != 0 {
		t.Errorf("after all deadlines: %q", got)
	}
	if n := clock.pending(); n != 0 {
		t.Errorf("%d timers pending with nobody typing, want 0", n)
	}
}

func TestChangedSince(t *testing.T) {
	clock := newFakeClock()
	tr := typing.New(clock, nil)
	start := tr.Serial()
	rooms := []string{"!a", "!b", "!c"}

	got, s0 := tr.ChangedSince(0, rooms)
	if len(got) != 0 || s0 != start {
		t.Fatalf("initial ChangedSince(0) = %v, %d; want nothing at %d", got, s0, start)
	}
	tr.Set("!a", "@x:x", true, time.Minute)
	tr.Set("!b", "@y:x", true, time.Minute)
	_, s1 := tr.ChangedSince(start, rooms)
	tr.Set("!b", "@y:x", false, 0)
	tr.Set("!z", "@y:x", true, time.Minute) // not asked about

	check := func(since int64, want map[string][]string) {
		t.Helper()
		got, serial := tr.ChangedSince(since, rooms)
		if serial != tr.Serial() {
			t.Errorf("ChangedSince serial %d, want %d", serial, tr.Serial())
		}
		if len(got) != len(want) {
			t.Errorf("ChangedSince(%d) = %v, want %v", since, got, want)
			return
		}
		for id, users := range want {
			if g, ok := got[id]; !ok || !slices.Equal(g, users) {
				t.Errorf("ChangedSince(%d)[%s] = %q (%v), want %q", since, id, g, ok, users)
			}
		}
	}
	check(0, map[string][]string{"!a": {"@x:x"}})
	check(start, map[string][]string{"!a": {"@x:x"}, "!b": {}})
	check(s1, map[string][]string{"!b": {}})
	check(tr.Serial(), map[string][]string{})
	// Serials this run never handed out: everything.
	everything := map[string][]string{"!a": {"@x:x"}, "!b": {}, "!c": {}}
	check(start-1, everything)
	check(tr.Serial()+1, everything)

	// Expiry is a change like any other.
	before := tr.Serial()
	clock.Advance(time.Minute)
	check(before, map[string][]string{"!a": {}})

	// Rooms quiet for long are forgotten; older serials then get everything.
	mid := tr.Serial()
	clock.Advance(11 * time.Minute)
	tr.Set("!c", "@x:x", true, time.Second)
	check(mid-1, map[string][]string{"!a": {}, "!b": {}, "!c": {"@x:x"}})
	check(mid, map[string][]string{"!c": {"@x:x"}})
}

func TestRealClock(t *testing.T) {
	woke := make(chan string, 4)
	tr := typing.New(nil, func(roomID string, _ int64) { woke <- roomID })
	defer tr.Close()
	tr.Set("!r", "@a:x", true, 20*time.Millisecond)
	<-woke // the start
	select {
	case id := <-woke:
		if id != "!r" {
			t.Errorf("timeout notified %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timer never expired the typing user")
	}
	if got := tr.Typing("!r"); len(got) != 0 {
		t.Errorf("Typing after timeout = %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	tr := typing.New(nil, nil)
	defer tr.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "@u" + string(rune('a'+i)) + ":x"
			for j := range 200 {
				tr.Set("!r", user, j%2 == 0, time.Millisecond*time.Duration(j%5))
				tr.Typing("!r")
				tr.ChangedSince(tr.Serial()-1, []string{"!r"})
			}
		}()
	}
	wg.Wait()
}

// notify runs without the tracker's lock, so it may read the tracker (a
// notifier that builds the m.typing event at once does).
func TestNotifyMayReadTracker(t *testing.T) {
	clock := newFakeClock()
	var tr *typing.Tracker
	var seen [][]string
	tr = typing.New(clock, func(roomID string, _ int64) { seen = append(seen, tr.Typing(roomID)) })
	tr.Set("!r", "@a:x", true, time.Second)
	clock.Advance(time.Second)
	if len(seen) != 2 || !slices.Equal(seen[0], []string{"@a:x"}) || len(seen[1]) != 0 {
		t.Errorf("notify saw %q, want [[@a:x] []]", seen)
	}
}
