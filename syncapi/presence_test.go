package syncapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
	"github.com/aula-chat/aula/typing"
)

// presClock is a clock that moves only when told to. Its timers never
// fire: the tests run the sweeper themselves.
type presClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *presClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *presClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *presClock) AfterFunc(time.Duration, func()) typing.Timer { return presTimer{} }

type presTimer struct{}

func (presTimer) Stop() bool { return true }

// presEnv is a sync service with presence on, over a real database, with
// a clock the test moves.
type presEnv struct {
	t     *testing.T
	db    *storage.DB
	s     *Service
	tr    *presenceTracker
	clock *presClock
	start time.Time
}

func newPresEnv(t *testing.T, db *storage.DB, users ...string) *presEnv {
	t.Helper()
	ctx := t.Context()
	for _, u := range users {
		if err := db.CreateUser(ctx, storage.User{UserID: u, Localpart: u[1 : len(u)-2]}); err != nil {
			t.Fatal(err)
		}
	}
	pos, err := db.StreamPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(pos)
	db.OnChange(n.OnChange)
	clock := &presClock{now: time.Unix(1_700_000_000, 0)}
	s := New(db, nil, nil, nil, n)
	if err := s.StartPresence(ctx, PresenceOptions{Enabled: true, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.StopPresence)
	return &presEnv{t: t, db: db, s: s, tr: s.presenceOf(), clock: clock, start: clock.Now()}
}

// at moves the clock to d after the start.
func (e *presEnv) at(d time.Duration) {
	e.clock.advance(e.start.Add(d).Sub(e.clock.Now()))
}

// sync starts a sync of the device and returns the function that ends it.
func (e *presEnv) sync(user, device, state string) func() {
	e.t.Helper()
	done, err := e.tr.syncStarted(e.t.Context(), user, device, state)
	if err != nil {
		e.t.Fatalf("sync of %s/%s: %v", user, device, err)
	}
	return done
}

func (e *presEnv) sweep() {
	e.t.Helper()
	e.tr.sweep(e.t.Context())
}

// row returns the user's stored presence (StreamPos 0 if none).
func (e *presEnv) row(user string) storage.Presence {
	e.t.Helper()
	p, err := e.db.UserPresence(e.t.Context(), user)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Presence{UserID: user, State: storage.PresenceOffline}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// want checks the user's stored state and currently_active.
func (e *presEnv) want(what, user, state string, active bool) storage.Presence {
	e.t.Helper()
	p := e.row(user)
	if p.State != state || p.CurrentlyActive != active {
		e.t.Fatalf("%s: %s is %s (currently_active %v), want %s (%v)", what, user, p.State, p.CurrentlyActive, state, active)
	}
	return p
}

func (e *presEnv) tracked(user string) bool {
	e.tr.mu.Lock()
	defer e.tr.mu.Unlock()
	return e.tr.users[user] != nil
}

const presAlice = "@alice:x"

func TestPresenceGoesOfflineAfterSyncsStop(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		end1 := e.sync(presAlice, "D1", storage.PresenceOnline)
		first := e.want("first sync", presAlice, storage.PresenceOnline, true)
		if first.LastActiveTS != e.start.UnixMilli() {
			t.Errorf("last_active_ts %d, want %d", first.LastActiveTS, e.start.UnixMilli())
		}

		// More syncs are only activity: no new position, nobody told.
		e.at(10 * time.Second)
		end2 := e.sync(presAlice, "D1", storage.PresenceOnline)
		pos, _ := e.db.StreamPosition(t.Context())
		if r := e.row(presAlice); r.StreamPos != first.StreamPos || pos != first.StreamPos {
			t.Errorf("a second sync wrote presence: row at %d, stream at %d, want %d", r.StreamPos, pos, first.StreamPos)
		}
		end1()
		e.at(20 * time.Second)
		end2() // the last sync ends at 20s

		e.at(49 * time.Second)
		e.sweep()
		e.want("29s after the last sync", presAlice, storage.PresenceOnline, true)
		e.at(51 * time.Second)
		e.sweep()
		off := e.want("31s after the last sync", presAlice, storage.PresenceOffline, false)
		if off.StreamPos <= first.StreamPos || off.LastActiveTS != e.start.Add(10*time.Second).UnixMilli() {
			t.Errorf("offline row %+v: want a new position and the last activity (10s)", off)
		}
		if e.tracked(presAlice) {
			t.Error("an offline user is still kept in memory")
		}

		// set_presence=offline changes nothing and tracks nothing.
		if err := e.s.SetPresenceFromSync(t.Context(), presAlice, "D1", storage.PresenceOffline); err != nil {
			t.Fatal(err)
		}
		if r := e.row(presAlice); r != off || e.tracked(presAlice) {
			t.Errorf("set_presence=offline changed presence: %+v", r)
		}
	})
}

func TestPresenceSyncEndsWithItsContext(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		ctx, cancel := context.WithCancel(t.Context())
		if err := e.s.SetPresenceFromSync(ctx, presAlice, "D1", ""); err != nil {
			t.Fatal(err)
		}
		e.want("sync without set_presence", presAlice, storage.PresenceOnline, true)
		// A running sync keeps the user online however long it takes.
		e.at(time.Minute)
		e.sweep()
		e.want("during a long sync", presAlice, storage.PresenceOnline, false)
		cancel()
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.tr.mu.Lock()
			u := e.tr.users[presAlice]
			e.tr.mu.Unlock()
			u.mu.Lock()
			syncing := u.devices["D1"].syncing
			u.mu.Unlock()
			if syncing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the sync did not end with its context")
			}
			time.Sleep(time.Millisecond)
		}
		e.at(time.Minute + 31*time.Second)
		e.sweep()
		e.want("31s after the request ended", presAlice, storage.PresenceOffline, false)
	})
}

func TestPresenceIdleAndCurrentlyActive(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		e.sync(presAlice, "D1", storage.PresenceOnline) // never ends
		first := e.want("sync", presAlice, storage.PresenceOnline, true)

		e.at(59 * time.Second)
		e.sweep()
		e.want("59s", presAlice, storage.PresenceOnline, true)
		e.at(61 * time.Second)
		e.sweep()
		flip := e.want("61s: no longer currently active", presAlice, storage.PresenceOnline, false)
		if flip.StreamPos <= first.StreamPos {
			t.Error("the currently_active flip took no stream position")
		}
		e.at(5*time.Minute + time.Second)
		e.sweep()
		e.want("idle for 5 minutes", presAlice, storage.PresenceUnavailable, false)
		e.at(20 * time.Minute)
		e.sweep()
		e.want("still syncing after 20 minutes", presAlice, storage.PresenceUnavailable, false)

		e.sync(presAlice, "D1", storage.PresenceOnline)
		e.want("active again", presAlice, storage.PresenceOnline, true)
	})
}

func TestPresenceCombinesDevices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		e.sync(presAlice, "PHONE", storage.PresenceUnavailable) // never ends
		e.want("unavailable from set_presence", presAlice, storage.PresenceUnavailable, false)
		endDesk := e.sync(presAlice, "DESK", storage.PresenceOnline)
		e.want("a second device online", presAlice, storage.PresenceOnline, true)
		pos := e.row(presAlice).StreamPos
		e.sync(presAlice, "PHONE", storage.PresenceUnavailable)
		if r := e.row(presAlice); r.State != storage.PresenceOnline || r.StreamPos != pos {
			t.Errorf("the phone's next sync changed presence: %+v", r)
		}
		endDesk()
		e.at(31 * time.Second)
		e.sweep()
		e.want("the desktop stopped syncing", presAlice, storage.PresenceUnavailable, false)
	})
}

func TestPresencePutStatus(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		ctx := t.Context()
		if err := e.s.SetPresence(ctx, presAlice, "D1", presAlice, storage.PresenceUnavailable, "in a lecture"); err != nil {
			t.Fatal(err)
		}
		r := e.want("put", presAlice, storage.PresenceUnavailable, false)
		if r.StatusMsg != "in a lecture" {
			t.Errorf("status_msg %q", r.StatusMsg)
		}
		if err := e.s.SetPresence(ctx, presAlice, "D1", presAlice, storage.PresenceUnavailable, "in a lecture"); err != nil {
			t.Fatal(err)
		}
		if again := e.row(presAlice); again.StreamPos != r.StreamPos {
			t.Error("setting the same presence again took a stream position")
		}
		// A sync keeps the status message; a PUT without one clears it.
		e.sync(presAlice, "D1", storage.PresenceOnline)
		if got := e.want("sync", presAlice, storage.PresenceOnline, true); got.StatusMsg != "in a lecture" {
			t.Errorf("a sync changed status_msg to %q", got.StatusMsg)
		}
		if err := e.s.SetPresence(ctx, presAlice, "D1", presAlice, storage.PresenceOnline, ""); err != nil {
			t.Fatal(err)
		}
		if got := e.row(presAlice); got.StatusMsg != "" {
			t.Errorf("status_msg %q after a PUT without one", got.StatusMsg)
		}
	})
}

// Activity is written rarely and without a stream position.
func TestPresenceFlushesLastActive(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		e := newPresEnv(t, storagetest.OpenDB(t, dsn), presAlice)
		first := e.sync(presAlice, "D1", storage.PresenceOnline)
		row := e.row(presAlice)
		first()
		for _, at := range []time.Duration{15, 30, 45} {
			e.at(at * time.Second)
			e.sync(presAlice, "D1", storage.PresenceOnline)()
			e.sweep()
		}
		if r := e.row(presAlice); r != row {
			t.Errorf("activity was written before a minute passed: %+v, want %+v", r, row)
		}
		e.at(61 * time.Second)
		e.sweep()
		r := e.row(presAlice)
		if r.LastActiveTS != e.start.Add(45*time.Second).UnixMilli() || r.StreamPos != row.StreamPos || !r.CurrentlyActive {
			t.Errorf("after a minute: %+v; want last_active_ts at 45s, position %d, currently active", r, row.StreamPos)
		}
		if pos, _ := e.db.StreamPosition(t.Context()); pos != row.StreamPos {
			t.Errorf("stream moved to %d by activity alone", pos)
		}
	})
}

// Users online when the server stopped go offline unless they sync again.
func TestPresenceAfterRestart(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		const bob = "@bob:x"
		e := newPresEnv(t, db, presAlice, bob)
		for _, u := range []string{presAlice, bob} {
			if _, err := db.SetPresence(t.Context(), storage.Presence{UserID: u, State: storage.PresenceOnline, LastActiveTS: 1, CurrentlyActive: true}); err != nil {
				t.Fatal(err)
			}
		}
		e.s.StopPresence()
		e = newPresEnv(t, db) // the restarted server
		e.sync(bob, "D1", storage.PresenceOnline)
		e.at(31 * time.Second)
		e.sweep()
		e.want("alice did not come back", presAlice, storage.PresenceOffline, false)
		e.want("bob syncs again", bob, storage.PresenceOnline, true)
	})
}
