package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aula-chat/aula/storage"
)

// Options configure evaluation and delivery.
type Options struct {
	// GatewayAllowlist lists the push gateway URLs pushers may use; empty
	// allows any http(s) URL.
	GatewayAllowlist []string
	// IncludeContent sends event content to gateways for pushers without
	// format "event_id_only". Off, every push is event_id_only.
	IncludeContent bool
	// Log receives delivery failures.
	Log *slog.Logger
	// Client makes the gateway requests (default: 10-second timeout).
	Client *http.Client
	// RetryBase is the first retry delay after a failed delivery; it
	// doubles per attempt up to RetryMax (defaults 1 s and 10 min).
	RetryBase, RetryMax time.Duration
	// MaxAttempts bounds the attempts per delivery (default 12).
	MaxAttempts int
}

// worker evaluates committed events in stream order, in one goroutine, and
// owns the in-memory state that evaluation needs.
type worker struct {
	db   *storage.DB
	svc  *Service
	opts Options

	mu        sync.Mutex
	queue     []storage.Change
	queuedPos int64         // stream position of the last OnChange call
	processed int64         // every change up to here has been applied
	advanced  chan struct{} // closed when processed moves
	wake      chan struct{}
	loads     chan loadRequest
	stopped   chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	// Read by Counts under cmu, written by the worker goroutine.
	cmu    sync.RWMutex
	unread map[unreadID]*unread

	// Worker goroutine only.
	applied int64 // stream position of the last change applied
	rooms   map[string]*roomInfo
	rules   map[string]*Compiled
	batch   *Batch // evaluates an event for all its recipients

	pmu     sync.Mutex
	pushers map[string][]storage.Pusher // user → pushers; nil slice: has some, not loaded
	deliver chan struct{}
}

type loadRequest struct {
	userID  string
	roomIDs []string
	done    chan struct{}
}

// Start begins evaluating events committed after stream position pos and
// delivering pushes. Feed it the change stream with OnChange.
func (s *Service) Start(ctx context.Context, pos int64, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 12
	}
	users, err := s.db.UsersWithPushers(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &worker{
		db: s.db, svc: s, opts: opts,
		queuedPos: pos, processed: pos, applied: pos,
		advanced: make(chan struct{}), wake: make(chan struct{}, 1), loads: make(chan loadRequest),
		stopped: make(chan struct{}), cancel: cancel,
		unread: map[unreadID]*unread{}, rooms: map[string]*roomInfo{}, rules: map[string]*Compiled{}, batch: NewBatch(),
		pushers: map[string][]storage.Pusher{}, deliver: make(chan struct{}, 1),
	}
	for _, u := range users {
		w.pushers[u] = nil
	}
	s.allow = opts.GatewayAllowlist
	s.worker = w
	w.wg.Add(2)
	go w.run(ctx)
	go w.deliverLoop(ctx)
	return nil
}

// Stop ends evaluation and delivery and waits for them.
func (s *Service) Stop() {
	if w := s.worker; w != nil {
		w.cancel()
		w.wg.Wait()
	}
}

// OnChange receives committed changes from the database's change feed. It
// only queues them, so it never slows the writer down; call it before the
// sync notifier so that counts are being computed when /sync wakes up.
func (s *Service) OnChange(pos int64, changes []storage.Change) {
	w := s.worker
	if w == nil {
		return
	}
	w.mu.Lock()
	for _, c := range changes {
		switch c.Kind {
		case storage.ChangeEvent, storage.ChangeReceipt, storage.ChangeAccountData, storage.ChangeDeviceList:
			w.queue = append(w.queue, c)
		}
	}
	w.queuedPos = max(w.queuedPos, pos)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until every change up to pos has been applied, or at most
// limit.
func (w *worker) waitFor(ctx context.Context, pos int64, limit time.Duration) error {
	var timer *time.Timer
	for {
		w.mu.Lock()
		done, ch := w.processed >= pos, w.advanced
		w.mu.Unlock()
		if done {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(limit)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			w.opts.Log.Warn("push: evaluation is behind; counts may be stale", "want", pos)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-w.stopped:
			return nil
		}
	}
}

// run is the worker goroutine.
func (w *worker) run(ctx context.Context) {
	defer w.wg.Done()
	defer close(w.stopped)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-w.loads:
			for _, id := range req.roomIDs {
				if err := w.load(ctx, req.userID, id); err != nil && ctx.Err() == nil {
					w.opts.Log.Error("push: load unread counts", "room", id, "err", err)
				}
			}
			close(req.done)
		case <-w.wake:
			w.mu.Lock()
			batch, pos := w.queue, w.queuedPos
			w.queue = nil
			w.mu.Unlock()
			for _, c := range batch {
				if err := w.apply(ctx, c); err != nil && ctx.Err() == nil {
					w.opts.Log.Error("push: evaluate change", "room", c.RoomID, "err", err)
				}
				w.applied = max(w.applied, c.Pos)
			}
			w.applied = max(w.applied, pos)
			w.mu.Lock()
			w.processed = pos
			close(w.advanced)
			w.advanced = make(chan struct{})
			w.mu.Unlock()
		}
	}
}

// apply handles one change.
func (w *worker) apply(ctx context.Context, c storage.Change) error {
	switch c.Kind {
	case storage.ChangeEvent:
		if c.Event == nil {
			return nil
		}
		return w.event(ctx, *c.Event)
	case storage.ChangeReceipt:
		r := c.Receipt
		if r == nil || (r.Type != storage.ReceiptRead && r.Type != storage.ReceiptReadPrivate) {
			return nil
		}
		w.cmu.RLock()
		u := w.unread[unreadKey(r.RoomID, r.UserID)]
		w.cmu.RUnlock()
		if u == nil {
			return nil // loaded from the receipts table when first needed
		}
		ev, err := w.db.Event(ctx, r.EventID)
		if err != nil {
			return err
		}
		w.cmu.Lock()
		if !u.receipt(r.ThreadID, ev.Depth) {
			// Before notifications that fell off the ring: read again
			// from the database when next asked.
			delete(w.unread, unreadKey(r.RoomID, r.UserID))
		}
		w.cmu.Unlock()
	case storage.ChangeAccountData:
		if c.Type == "m.push_rules" && c.RoomID == "" {
			delete(w.rules, c.UserID)
		}
	case storage.ChangeDeviceList:
		w.forgetPushers(c.UserID) // a device, and with it its pushers, may be gone
	}
	return nil
}

// event evaluates a new event for every member of its room.
func (w *worker) event(ctx context.Context, ev storage.Event) error {
	room, err := w.room(ctx, ev.RoomID)
	if err != nil {
		return err
	}
	defer room.apply(ev)
	if ev.RedactedBy != "" {
		return nil
	}
	pe := PrepareEvent(ev.JSON)
	pe.ID, pe.RoomID, pe.Type, pe.Sender, pe.StateKey = ev.EventID, ev.RoomID, ev.Type, ev.Sender, ev.StateKey
	rc := room.context(ev.Sender)
	recipients := make([]string, 0, len(room.members)+1)
	for u := range room.members {
		if u != ev.Sender {
			recipients = append(recipients, u)
		}
	}
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey != ev.Sender {
		if _, joined := room.members[*ev.StateKey]; !joined && membershipOf(ev.JSON) == "invite" {
			recipients = append(recipients, *ev.StateKey)
		}
	}
	if err := w.loadRules(ctx, recipients); err != nil {
		return err
	}
	var pushUsers []string // recipients with pushers
	for _, u := range recipients {
		if w.hasPushers(u) { // their pushes carry the unread count
			if err := w.load(ctx, u, ev.RoomID); err != nil {
				return err
			}
			pushUsers = append(pushUsers, u)
		}
	}
	var pushes []storage.PushDelivery
	w.batch.Reset(pe, &rc)
	w.cmu.Lock()
	for _, u := range recipients {
		res := w.batch.Evaluate(w.rules[u], User{DisplayName: room.members[u]})
		if !res.Notify {
			continue
		}
		if un := w.unread[unreadKey(ev.RoomID, u)]; un != nil {
			un.add(unreadEntry{depth: ev.Depth, thread: pe.Thread, highlight: res.Highlight})
		}
	}
	w.cmu.Unlock()
	defer w.batch.Reset(nil, nil) // keep no reference to the event
	for _, u := range pushUsers {
		res := w.batch.Evaluate(w.rules[u], User{DisplayName: room.members[u]})
		if !res.Notify {
			continue
		}
		ps, err := w.pushersOf(ctx, u)
		if err != nil {
			return err
		}
		w.cmu.RLock()
		badge := 0
		if un := w.unread[unreadKey(ev.RoomID, u)]; un != nil {
			badge = un.counts().Total.Notifications
		}
		w.cmu.RUnlock()
		for _, p := range ps {
			body, err := w.pushBody(ev, room, u, p, res, badge)
			if err != nil {
				return err
			}
			pushes = append(pushes, storage.PushDelivery{UserID: u, AppID: p.AppID, PushKey: p.PushKey, Body: body})
		}
	}
	if err := w.db.EnqueuePushes(ctx, pushes); err != nil {
		return err
	}
	if len(pushes) > 0 {
		select {
		case w.deliver <- struct{}{}:
		default:
		}
	}
	// A member who left no longer has counts in the room.
	if ev.Type == "m.room.member" && ev.StateKey != nil && membershipOf(ev.JSON) != "join" {
		w.cmu.Lock()
		delete(w.unread, unreadKey(ev.RoomID, *ev.StateKey))
		w.cmu.Unlock()
	}
	return nil
}

// loadRules compiles the rules of the users that have none cached, reading
// the stored documents in batches.
func (w *worker) loadRules(ctx context.Context, users []string) error {
	var need []string
	for _, u := range users {
		if w.rules[u] == nil {
			need = append(need, u)
		}
	}
	for len(need) > 0 {
		batch := need[:min(len(need), 500)]
		need = need[len(batch):]
		docs, err := w.db.PushRulesOf(ctx, batch)
		if err != nil {
			return err
		}
		for _, u := range batch {
			var ur UserRules
			if raw := docs[u]; raw != nil {
				if err := json.Unmarshal(raw, &ur); err != nil {
					w.opts.Log.Error("push: stored rules unreadable", "user", u, "err", err)
				}
			}
			w.rules[u] = CompileFor(u, Effective(u, ur))
		}
	}
	return nil
}

// loadBound bounds the events load reads per user and room; counts of a
// room with more unread events than that saturate.
const loadBound = 10_000

// load computes the user's unread state in a room from the receipts table
// and the events after the receipt, if not cached yet. It runs in the
// worker goroutine, so no event is counted twice or missed: it reads the
// events up to the last one applied, newest first in pages, and counts
// every notifying one (up to loadBound events read).
func (w *worker) load(ctx context.Context, userID, roomID string) error {
	key := unreadKey(roomID, userID)
	w.cmu.RLock()
	have := w.unread[key] != nil
	w.cmu.RUnlock()
	if have {
		return nil
	}
	room, err := w.room(ctx, roomID)
	if err != nil {
		return err
	}
	u := &unread{}
	if joinDepth, joined := room.joinDepth[userID]; joined {
		if u, err = w.svc.receipts(ctx, userID, roomID); err != nil {
			return err
		}
		if err := w.loadRules(ctx, []string{userID}); err != nil {
			return err
		}
		rules := w.rules[userID]
		after := max(u.unthreaded, joinDepth)
		var found []unreadEntry // newest first
		before := int64(0)
		for read := 0; read < loadBound; {
			want := min(500, loadBound-read)
			list, err := w.db.RoomEvents(ctx, roomID, after, before, true, want)
			if err != nil {
				return err
			}
			for _, ev := range list {
				read++
				before = ev.Depth
				if ev.StreamPos > w.applied || ev.Sender == userID || ev.RedactedBy != "" {
					continue
				}
				pe := PrepareEvent(ev.JSON)
				pe.ID, pe.RoomID, pe.Type, pe.Sender, pe.StateKey = ev.EventID, ev.RoomID, ev.Type, ev.Sender, ev.StateKey
				rc := room.context(ev.Sender)
				res := rules.Evaluate(pe, &rc, User{DisplayName: room.members[userID]})
				if res.Notify {
					found = append(found, unreadEntry{depth: ev.Depth, thread: pe.Thread, highlight: res.Highlight})
				}
			}
			if len(list) < want {
				break
			}
		}
		for i := len(found) - 1; i >= 0; i-- {
			u.add(found[i])
		}
	}
	w.cmu.Lock()
	w.unread[key] = u
	w.cmu.Unlock()
	return nil
}

// room returns the cached state of a room, loading it when first needed.
func (w *worker) room(ctx context.Context, roomID string) (*roomInfo, error) {
	if r := w.rooms[roomID]; r != nil {
		return r, nil
	}
	state, err := w.db.CurrentState(ctx, roomID)
	if err != nil {
		return nil, err
	}
	r := newRoomInfo()
	for _, ev := range state {
		r.apply(ev)
	}
	w.rooms[roomID] = r
	return r, nil
}
