package syncapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/typing"
)

// Presence (spec: m.presence and /presence/{userId}/status), with
// Synapse's rules and timeouts:
//
//   - Each device has a state. A /sync with set_presence online (the
//     default) or unavailable sets its device's state and makes it count as
//     syncing until the request ends; set_presence=offline changes nothing.
//     PUT /presence sets the requesting device's state and the user's
//     status message. The user's state is the most present of their
//     devices' (online > unavailable > offline).
//   - A device that stopped syncing goes away presenceSyncTimeout after its
//     last sync or activity; an online device without activity for
//     presenceIdleTimeout becomes unavailable. Syncing and setting presence
//     online count as activity, as in Synapse.
//   - currently_active is true while the user was active within
//     presenceActiveWindow.
//
// Only what others must hear about is written with a stream position, and
// so wakes their syncs: a change of state, status message or
// currently_active. The newest activity time lives in memory and is
// written without a position at most every presenceFlushEvery; readers
// compute last_active_ago from it. One timer (the sweeper) applies the
// timeouts for the whole server. The users tracked in memory are those
// not offline, so memory follows the number of users online.
const (
	presenceSyncTimeout  = 30 * time.Second
	presenceIdleTimeout  = 5 * time.Minute
	presenceActiveWindow = time.Minute
	presenceSweepEvery   = 5 * time.Second
	presenceFlushEvery   = time.Minute
	// maxStatusMsgLen caps status messages, in characters: every member
	// of every room the user is in receives it.
	maxStatusMsgLen = 1000
)

// restartDevice stands for the devices of a user who was not offline when
// the server stopped: they must sync again within presenceSyncTimeout.
// Device IDs are never empty, so it cannot clash with one.
const restartDevice = ""

// PresenceOptions configure presence (StartPresence).
type PresenceOptions struct {
	// Enabled tracks and shares presence (config presence.enabled). Off,
	// /sync has no presence, PUT is accepted and ignored and GET answers
	// offline, as Synapse does with presence disabled.
	Enabled bool
	// Clock is the source of time and of the sweeper's timer; nil means
	// the system clock.
	Clock typing.Clock
	// Log receives the sweeper's errors; nil means slog.Default().
	Log *slog.Logger
}

// presenceTracker is the presence state of one Service.
type presenceTracker struct {
	svc   *Service
	clock typing.Clock
	log   *slog.Logger

	mu      sync.Mutex
	users   map[string]*userPresence // users not known to be offline (and users being loaded)
	timer   typing.Timer
	stopped bool
	flushed int64 // when last-active times were last written (ms)

	sweeping sync.Mutex // held by a running sweep
}

// userPresence is one user's presence in memory.
type userPresence struct {
	// lastActive is the newest activity (ms), read without mu.
	lastActive atomic.Int64

	mu     sync.Mutex
	loaded bool // stored holds the row (or offline)
	gone   bool // removed from the tracker: look the user up again
	// stored is what the database holds, what others were told.
	stored  storage.Presence
	devices map[string]*devicePresence
}

// devicePresence is one device's presence.
type devicePresence struct {
	state      string
	lastActive int64 // ms
	lastSync   int64 // ms: when its last sync started or ended
	syncing    int   // syncs running now
}

// presenceOf returns the service's presence tracker, or nil when presence
// is off (disabled, or StartPresence not called).
func (s *Service) presenceOf() *presenceTracker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pres
}

// StartPresence turns presence on (when opts.Enabled): it takes over the
// users the database says are not offline, who go offline unless they
// sync again within presenceSyncTimeout, and starts the sweeper. Call it
// once, before serving; StopPresence stops it.
func (s *Service) StartPresence(ctx context.Context, opts PresenceOptions) error {
	if !opts.Enabled {
		return nil
	}
	t := &presenceTracker{svc: s, clock: opts.Clock, log: opts.Log, users: map[string]*userPresence{}}
	if t.clock == nil {
		t.clock = typing.SystemClock{}
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	rows, err := s.db.PresenceNotOffline(ctx)
	if err != nil {
		return err
	}
	now := t.nowMS()
	t.flushed = now
	for _, r := range rows {
		u := &userPresence{loaded: true, stored: r, devices: map[string]*devicePresence{
			restartDevice: {state: r.State, lastActive: now, lastSync: now},
		}}
		u.lastActive.Store(r.LastActiveTS)
		t.users[r.UserID] = u
	}
	s.mu.Lock()
	started := s.pres != nil
	if !started {
		s.pres = t
	}
	s.mu.Unlock()
	if started {
		return errors.New("syncapi: presence started twice")
	}
	t.schedule()
	return nil
}

// StopPresence stops the sweeper and writes the last-active times held in
// memory. Call it before closing the database.
func (s *Service) StopPresence() {
	t := s.presenceOf()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	t.sweeping.Lock()
	defer t.sweeping.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.flush(ctx, t.snapshot())
	s.mu.Lock()
	s.pres = nil
	s.mu.Unlock()
}

// SetPresenceFromSync applies a /sync request's set_presence before the
// sync is computed: "" or "online" marks the device online (and the user
// active), "unavailable" marks it unavailable, "offline" changes nothing.
// The device counts as syncing until ctx ends, so pass the request's
// context. It fails only when storing a change failed.
func (s *Service) SetPresenceFromSync(ctx context.Context, userID, deviceID, state string) error {
	t := s.presenceOf()
	if t == nil {
		return nil
	}
	switch state {
	case "":
		state = storage.PresenceOnline
	case storage.PresenceOnline, storage.PresenceUnavailable:
	case storage.PresenceOffline:
		return nil
	default:
		return mxerr.InvalidParam("set_presence must be online, offline or unavailable, not %q", state)
	}
	done, err := t.syncStarted(ctx, userID, deviceID, state)
	if done != nil {
		context.AfterFunc(ctx, done)
	}
	return err
}

// SetPresence answers PUT /presence/{userId}/status: the requester sets
// their own presence and status message ("" for none) from one of their
// devices.
func (s *Service) SetPresence(ctx context.Context, requester, deviceID, userID, state, statusMsg string) error {
	if requester != userID {
		return mxerr.Forbidden("You can only set your own presence")
	}
	switch state {
	case storage.PresenceOnline, storage.PresenceUnavailable, storage.PresenceOffline:
	default:
		return mxerr.InvalidParam("presence must be online, unavailable or offline, not %q", state)
	}
	if utf8.RuneCountInString(statusMsg) > maxStatusMsgLen {
		return mxerr.New(http.StatusBadRequest, "M_TOO_LARGE", "status_msg is longer than %d characters", maxStatusMsgLen)
	}
	if strings.IndexByte(statusMsg, 0) >= 0 {
		return mxerr.InvalidParam("status_msg must not contain NUL characters")
	}
	t := s.presenceOf()
	if t == nil {
		return nil // presence is off: accepted and ignored, as in Synapse
	}
	return t.put(ctx, userID, deviceID, state, statusMsg)
}

// PresenceActive records that the user did something on the device (sent
// an event, say): the device becomes online again if it was unavailable.
func (s *Service) PresenceActive(ctx context.Context, userID, deviceID string) error {
	t := s.presenceOf()
	if t == nil {
		return nil
	}
	return t.active(ctx, userID, deviceID)
}

// PresenceStatus is a user's presence as clients see it: the body of GET
// /presence/{userId}/status and the content of m.presence.
type PresenceStatus struct {
	Presence        string `json:"presence"`
	LastActiveAgo   *int64 `json:"last_active_ago,omitempty"`
	StatusMsg       string `json:"status_msg,omitempty"`
	CurrentlyActive *bool  `json:"currently_active,omitempty"`
}

// GetPresence answers GET /presence/{userId}/status: the requester's own
// presence, or that of a user who shares a joined room with them (403
// otherwise; 404 for an unknown user). With presence off everyone is
// offline.
func (s *Service) GetPresence(ctx context.Context, requester, userID string) (*PresenceStatus, error) {
	if !ids.ValidUserID(userID) {
		return nil, mxerr.InvalidParam("%q is not a valid user ID", userID)
	}
	t := s.presenceOf()
	if t == nil {
		return &PresenceStatus{Presence: storage.PresenceOffline}, nil
	}
	if requester != userID {
		if _, err := s.db.User(ctx, userID); errors.Is(err, storage.ErrNotFound) {
			return nil, mxerr.NotFound("Unknown user")
		} else if err != nil {
			return nil, err
		}
		shared, err := s.db.ShareJoinedRoom(ctx, requester, userID)
		if err != nil {
			return nil, err
		}
		if !shared {
			return nil, mxerr.Forbidden("You are not allowed to see their presence")
		}
	}
	row, err := s.db.UserPresence(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		row, err = storage.Presence{UserID: userID, State: storage.PresenceOffline}, nil
	}
	if err != nil {
		return nil, err
	}
	st := t.status(row)
	return &st, nil
}

// presence fills the response's presence section (being built): the
// presence of the user and of everyone sharing a joined room with them
// that changed after since (on an initial or full-state sync, everyone's
// who is not offline), plus the members of rooms joined since, filtered by
// the filter's presence section. A limit keeps the latest changes.
func (s *Service) presence(ctx context.Context, req Request, since Token, upto int64, resp *Response) error {
	t := s.presenceOf()
	f := &req.Filter.Presence
	if t == nil || f.BlocksAll() || (f.Limit != nil && *f.Limit == 0) {
		return nil
	}
	q := storage.PresenceQuery{UserID: req.UserID, Upto: upto}
	if req.Since != nil && !req.FullState {
		q.Since, q.IncludeOffline = since.Pos, true
		ms, err := s.memberships(ctx, req.UserID)
		if err != nil {
			return err
		}
		for id, m := range ms {
			if m.Membership == "join" && m.Pos > since.Pos && m.Pos <= upto {
				q.NewRooms = append(q.NewRooms, id)
			}
		}
	}
	var rows []storage.Presence
	ok := false
	if q.Since > 0 && len(q.NewRooms) == 0 {
		// Woken by a room-mate's change: answer from the notifier's
		// memory when it can, so that one change does not cost a query
		// per room-mate.
		ms, err := s.memberships(ctx, req.UserID)
		if err != nil {
			return err
		}
		rows, ok = s.notifier.presenceSince(req.UserID, ms, q.Since, upto)
	}
	if !ok {
		var err error
		if rows, err = s.db.PresenceVisibleTo(ctx, q); err != nil {
			return err
		}
	}
	var events []any
	for _, r := range rows {
		if f.Allows("m.presence", r.UserID) {
			events = append(events, map[string]any{"type": "m.presence", "sender": r.UserID, "content": t.status(r)})
		}
	}
	if f.Limit != nil && len(events) > *f.Limit {
		events = events[len(events)-*f.Limit:]
	}
	if len(events) > 0 {
		resp.Presence = &EventList{Events: events}
	}
	return nil
}

// status formats a stored presence for clients, with last_active_ago from
// the newest activity known.
func (t *presenceTracker) status(p storage.Presence) PresenceStatus {
	st := PresenceStatus{Presence: p.State, StatusMsg: p.StatusMsg}
	last := p.LastActiveTS
	t.mu.Lock()
	if u := t.users[p.UserID]; u != nil {
		last = max(last, u.lastActive.Load())
	}
	t.mu.Unlock()
	if last > 0 {
		ago := max(t.nowMS()-last, 0)
		st.LastActiveAgo = &ago
	}
	if p.State == storage.PresenceOnline {
		active := p.CurrentlyActive
		st.CurrentlyActive = &active
	}
	return st
}

func (t *presenceTracker) nowMS() int64 { return t.clock.Now().UnixMilli() }

// entry returns the user's presence, loaded and locked.
func (t *presenceTracker) entry(ctx context.Context, userID string) (*userPresence, error) {
	for {
		t.mu.Lock()
		u := t.users[userID]
		if u == nil {
			u = &userPresence{devices: map[string]*devicePresence{}}
			t.users[userID] = u
		}
		t.mu.Unlock()
		u.mu.Lock()
		if u.gone {
			u.mu.Unlock()
			continue
		}
		if !u.loaded {
			row, err := t.svc.db.UserPresence(ctx, userID)
			if errors.Is(err, storage.ErrNotFound) {
				row, err = storage.Presence{UserID: userID, State: storage.PresenceOffline}, nil
			}
			if err != nil {
				u.mu.Unlock()
				return nil, err
			}
			u.stored, u.loaded = row, true
			u.bump(row.LastActiveTS)
		}
		return u, nil
	}
}

// device returns the user's device, created offline if new. u.mu is held.
func (u *userPresence) device(deviceID string) *devicePresence {
	d := u.devices[deviceID]
	if d == nil {
		d = &devicePresence{state: storage.PresenceOffline}
		u.devices[deviceID] = d
	}
	return d
}

// bump moves the user's last activity forwards to ts.
func (u *userPresence) bump(ts int64) {
	for {
		old := u.lastActive.Load()
		if ts <= old || u.lastActive.CompareAndSwap(old, ts) {
			return
		}
	}
}

// state is the most present state of the user's devices. u.mu is held.
func (u *userPresence) state() string {
	state := storage.PresenceOffline
	for _, d := range u.devices {
		switch {
		case d.state == storage.PresenceOnline:
			return storage.PresenceOnline
		case d.state == storage.PresenceUnavailable:
			state = storage.PresenceUnavailable
		}
	}
	return state
}

// syncStarted records that a sync of the device started with the given
// state. done, which the caller must call once the sync has ended, is
// returned even when storing a change failed.
func (t *presenceTracker) syncStarted(ctx context.Context, userID, deviceID, state string) (done func(), err error) {
	u, err := t.entry(ctx, userID)
	if err != nil {
		return nil, err
	}
	defer u.mu.Unlock()
	now := t.nowMS()
	d := u.device(deviceID)
	d.syncing++
	d.state, d.lastActive, d.lastSync = state, now, now
	done = func() {
		u.mu.Lock()
		d.syncing--
		d.lastSync = t.nowMS()
		u.mu.Unlock()
	}
	if u.state() == storage.PresenceOnline {
		u.bump(now)
	}
	return done, t.update(ctx, userID, u, u.stored.StatusMsg, now)
}

// put applies PUT /presence from a device.
func (t *presenceTracker) put(ctx context.Context, userID, deviceID, state, statusMsg string) error {
	u, err := t.entry(ctx, userID)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	now := t.nowMS()
	d := u.device(deviceID)
	d.state, d.lastActive = state, now
	if u.state() == storage.PresenceOnline {
		u.bump(now)
	}
	return t.update(ctx, userID, u, statusMsg, now)
}

// active records activity on a device.
func (t *presenceTracker) active(ctx context.Context, userID, deviceID string) error {
	// A user who is not online anywhere (no syncing client) stays
	// offline, as in Synapse: sending from a script or a bridge does not
	// make anyone appear online. Such users are not in memory, so this
	// costs the send no query and no lock of the user's entry.
	t.mu.Lock()
	_, tracked := t.users[userID]
	t.mu.Unlock()
	if !tracked {
		return nil
	}
	u, err := t.entry(ctx, userID)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	now := t.nowMS()
	d := u.device(deviceID)
	d.lastActive = now
	if d.state == storage.PresenceUnavailable {
		d.state = storage.PresenceOnline
	}
	u.bump(now)
	return t.update(ctx, userID, u, u.stored.StatusMsg, now)
}

// update stores the user's presence if others must hear about it: its
// state, status message or currently_active changed. u.mu is held.
func (t *presenceTracker) update(ctx context.Context, userID string, u *userPresence, statusMsg string, now int64) error {
	last := u.lastActive.Load()
	want := storage.Presence{UserID: userID, State: u.state(), StatusMsg: statusMsg, LastActiveTS: last}
	want.CurrentlyActive = want.State == storage.PresenceOnline && now-last < presenceActiveWindow.Milliseconds()
	old := u.stored
	if want.State == old.State && want.StatusMsg == old.StatusMsg && want.CurrentlyActive == old.CurrentlyActive {
		return nil
	}
	// The notifier wakes the rooms the user is joined to, so it must know
	// them before the change arrives.
	if _, err := t.svc.memberships(ctx, userID); err != nil {
		return err
	}
	pos, err := t.svc.db.SetPresence(ctx, want)
	if err != nil {
		return err
	}
	want.StreamPos, want.LastActiveTS = pos, max(last, old.LastActiveTS)
	u.stored = want
	return nil
}

// schedule arms the sweeper's timer.
func (t *presenceTracker) schedule() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.timer = t.clock.AfterFunc(presenceSweepEvery, t.tick)
	}
}

// tick runs one sweep and arms the next.
func (t *presenceTracker) tick() {
	t.sweeping.Lock()
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if !stopped {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.sweep(ctx)
		cancel()
	}
	t.sweeping.Unlock()
	t.schedule()
}

// snapshot returns the users in memory.
func (t *presenceTracker) snapshot() map[string]*userPresence {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]*userPresence, len(t.users))
	for id, u := range t.users {
		out[id] = u
	}
	return out
}

// sweep applies the timeouts to every user in memory, forgets those who
// are offline, and writes last-active times every presenceFlushEvery.
func (t *presenceTracker) sweep(ctx context.Context) {
	now := t.nowMS()
	users := t.snapshot()
	for id, u := range users {
		u.mu.Lock()
		if u.loaded && !u.gone {
			for devID, d := range u.devices {
				if d.state == storage.PresenceOnline && now-d.lastActive > presenceIdleTimeout.Milliseconds() {
					d.state = storage.PresenceUnavailable
				}
				if d.syncing == 0 && now-max(d.lastSync, d.lastActive) > presenceSyncTimeout.Milliseconds() {
					delete(u.devices, devID)
				}
			}
			if err := t.update(ctx, id, u, u.stored.StatusMsg, now); err != nil {
				t.log.Error("presence: storing a timeout failed", "user", id, "err", err)
			}
		}
		if !u.gone && len(u.devices) == 0 && (!u.loaded || u.stored.State == storage.PresenceOffline) {
			u.gone = true
			t.mu.Lock()
			if t.users[id] == u {
				delete(t.users, id)
			}
			t.mu.Unlock()
		}
		u.mu.Unlock()
	}
	if now-t.flushed >= presenceFlushEvery.Milliseconds() {
		t.flushed = now
		t.flush(ctx, users)
	}
}

// flush writes the users' newer last-active times, without stream
// positions, in one transaction.
func (t *presenceTracker) flush(ctx context.Context, users map[string]*userPresence) {
	var touches []storage.PresenceTouch
	for id, u := range users {
		u.mu.Lock()
		if last := u.lastActive.Load(); u.loaded && u.stored.StreamPos > 0 && last > u.stored.LastActiveTS {
			touches = append(touches, storage.PresenceTouch{UserID: id, LastActiveTS: last})
		}
		u.mu.Unlock()
	}
	if len(touches) == 0 {
		return
	}
	if err := t.svc.db.TouchPresence(ctx, touches); err != nil {
		t.log.Error("presence: storing last-active times failed", "users", len(touches), "err", err)
		return
	}
	for _, tc := range touches {
		u := users[tc.UserID]
		u.mu.Lock()
		u.stored.LastActiveTS = max(u.stored.LastActiveTS, tc.LastActiveTS)
		u.mu.Unlock()
	}
}
