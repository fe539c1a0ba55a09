package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// fleet is a set of clients each holding a long-polling /sync: after an
// initial sync, each loops GET /sync?since=…&timeout=… on its own
// connection and records when an answer carried a bench message.
type fleet struct {
	marker   string // bench messages' bodies are "MARKER SEQ"
	timeout  time.Duration
	presence string // set_presence
	clients  []*poller

	initial  *recorder // initial syncs
	longpoll *recorder // long-polls (latency: how long each was parked)
	samples  *errSamples

	started  atomic.Int64 // clients past their initial sync
	inFlight atomic.Int64 // long-polls sent and not yet answered
	received atomic.Int64 // first sightings of bench messages
	limited  atomic.Int64 // answers with a limited timeline
	answers  atomic.Int64 // long-polls answered without error
	presEvs  atomic.Int64 // presence events received

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// poller is one client of a fleet.
type poller struct {
	m     member
	c     *client
	room  int          // the index of the one room the client is in
	wakes []wakeRec    // owned by the client's goroutine until stop
	seen  map[int]bool // seqs already seen
	dups  int          // bench messages seen again
}

// wakeRec is a bench message seen by a client: its sequence number and
// when the /sync carrying it returned.
type wakeRec struct {
	seq int
	at  time.Time
}

func newFleet(base *client, ms []member, roomOf func(int) int, marker, presence string, timeout time.Duration) *fleet {
	f := &fleet{
		marker: marker, timeout: timeout, presence: presence,
		initial: newRecorder("initial"), longpoll: newRecorder("longpoll"), samples: &errSamples{},
	}
	for i, m := range ms {
		f.clients = append(f.clients, &poller{m: m, c: base.dedicated(timeout + 30*time.Second), room: roomOf(i), seen: map[int]bool{}})
	}
	return f
}

// start launches every client; initial syncs run at most conc at a time
// (a real crowd of clients does not start in the same millisecond either).
func (f *fleet) start(ctx context.Context, conc int) {
	ctx, f.cancel = context.WithCancel(ctx)
	sem := make(chan struct{}, conc)
	for _, p := range f.clients {
		f.wg.Add(1)
		go f.poll(ctx, p, sem)
	}
}

// stop ends every long-poll and waits for the clients to finish; after it
// the clients' records may be read.
func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
	for _, p := range f.clients {
		p.c.closeIdle()
	}
}

func (f *fleet) poll(ctx context.Context, p *poller, sem chan struct{}) {
	defer f.wg.Done()
	since := ""
	for since == "" {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		t0 := time.Now()
		page, err := p.c.sync(ctx, p.m.token, "", p.m.filterID, f.presence, 0)
		<-sem
		if ctx.Err() != nil {
			return
		}
		f.initial.add(time.Since(t0), err)
		if err != nil {
			f.samples.add("initial sync of "+p.m.userID, err)
			sleepCtx(ctx, time.Second)
			continue
		}
		since = page.NextBatch
	}
	f.started.Add(1)
	for ctx.Err() == nil {
		f.inFlight.Add(1)
		t0 := time.Now()
		page, err := p.c.sync(ctx, p.m.token, since, p.m.filterID, f.presence, f.timeout)
		at := time.Now()
		f.inFlight.Add(-1)
		if ctx.Err() != nil {
			return // stopped: not an error
		}
		f.longpoll.add(at.Sub(t0), err)
		if err != nil {
			f.samples.add("long-poll of "+p.m.userID, err)
			sleepCtx(ctx, time.Second) // a broken server is not hammered
			continue
		}
		f.answers.Add(1)
		f.presEvs.Add(int64(page.Presence))
		if page.Limited > 0 {
			f.limited.Add(1)
		}
		for _, b := range page.Bodies {
			seq, ok := parseMarker(b.Body, f.marker)
			if !ok {
				continue
			}
			if p.seen[seq] {
				p.dups++
				continue
			}
			p.seen[seq] = true
			p.wakes = append(p.wakes, wakeRec{seq: seq, at: at})
			f.received.Add(1)
		}
		since = page.NextBatch
	}
}

// waitParked waits until every client is past its initial sync and has a
// long-poll out, then a little more so that the server has parked them.
// It gives up after bound.
func (f *fleet) waitParked(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	n := int64(len(f.clients))
	for {
		if f.started.Load() == n && f.inFlight.Load() == n {
			sleepCtx(ctx, 300*time.Millisecond)
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v only %d of %d clients were past their initial sync and %d had a long-poll out; meanwhile %d long-polls were answered, carrying %d presence events (errors: %s)",
				bound, f.started.Load(), n, f.inFlight.Load(), f.answers.Load(), f.presEvs.Load(), f.samples.String())
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// waitReceived waits until the clients have seen want bench messages in
// all, or until bound; it reports whether they did.
func (f *fleet) waitReceived(ctx context.Context, want int64, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for f.received.Load() < want {
		if time.Now().After(deadline) || !sleepCtx(ctx, 5*time.Millisecond) {
			return false
		}
	}
	return true
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errSamples keeps the first few distinct errors in full (status,
// errcode and message), for the report.
type errSamples struct {
	mu   sync.Mutex
	list []string
	seen map[string]bool
}

const maxErrSamples = 8

func (s *errSamples) add(what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := err.Error()
	if s.seen[text] || len(s.list) >= maxErrSamples {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[text] = true
	s.list = append(s.list, what+": "+text)
}

func (s *errSamples) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.list...)
}

func (s *errSamples) String() string {
	l := s.get()
	if len(l) == 0 {
		return "none"
	}
	return fmt.Sprint(l)
}
