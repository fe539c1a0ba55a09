package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/internal/apitest"
)

// syncWait is how long a test waits for a sync loop to deliver one
// expected event. Generous: the machine is small and shared.
const syncWait = 10 * time.Second

// syncHTTPTimeout bounds one request of a syncing client. It must exceed
// the 30 s long-poll timeout mautrix's sync loop asks for.
const syncHTTPTimeout = 90 * time.Second

// elementFilter is the filter Element (matrix-js-sdk) uploads before its
// first /sync: a small initial timeline, lazy-loaded members and
// per-thread unread counts.
func elementFilter() *mautrix.Filter {
	return &mautrix.Filter{Room: &mautrix.RoomFilter{
		State:    &mautrix.FilterPart{LazyLoadMembers: true},
		Timeline: &mautrix.FilterPart{Limit: 20, UnreadThreadNotifications: true},
	}}
}

// syncExchange is one /sync request a client made and what the server
// answered; done is zero while the request is in flight.
type syncExchange struct {
	query  string
	start  time.Time
	done   time.Time
	status int
	body   []byte
	err    error
}

// syncRecorder is the HTTP transport of a syncing client. It keeps the raw
// /sync exchanges, so a failed expectation can show exactly what the
// server answered, and tells when each request started and ended.
type syncRecorder struct {
	next http.RoundTripper

	mu  sync.Mutex
	log []*syncExchange
}

// RoundTrip implements http.RoundTripper.
func (r *syncRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/sync") {
		return r.next.RoundTrip(req)
	}
	ex := &syncExchange{query: req.URL.RawQuery, start: time.Now()}
	r.mu.Lock()
	r.log = append(r.log, ex)
	r.mu.Unlock()

	resp, err := r.next.RoundTrip(req)
	var body []byte
	status := 0
	if err == nil {
		status = resp.StatusCode
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			resp = nil
		} else {
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	r.mu.Lock()
	ex.done, ex.status, ex.body, ex.err = time.Now(), status, body, err
	r.mu.Unlock()
	return resp, err
}

// inFlightLongPoll returns the start of the /sync request in flight that
// asked to wait (timeout > 0), if there is one.
func (r *syncRecorder) inFlightLongPoll() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.log) - 1; i >= 0; i-- {
		ex := r.log[i]
		if ex.done.IsZero() && strings.Contains(ex.query, "since=") && !strings.Contains(ex.query, "timeout=0") {
			return ex.start, true
		}
	}
	return time.Time{}, false
}

// answeredBefore returns a copy of the last exchange answered before at:
// the one whose events a handler that ran at at was given.
func (r *syncRecorder) answeredBefore(at time.Time) (syncExchange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last *syncExchange
	for _, ex := range r.log {
		if !ex.done.IsZero() && !ex.done.After(at) && (last == nil || ex.done.After(last.done)) {
			last = ex
		}
	}
	if last == nil {
		return syncExchange{}, false
	}
	return *last, true
}

// dump logs the last n /sync exchanges with their raw answers.
func (r *syncRecorder) dump(t *testing.T, who string, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	from := max(0, len(r.log)-n)
	for _, ex := range r.log[from:] {
		if ex.done.IsZero() {
			t.Logf("%s /sync?%s: in flight for %v", who, ex.query, time.Since(ex.start).Round(time.Millisecond))
			continue
		}
		body := string(ex.body)
		var resp map[string]json.RawMessage
		if json.Unmarshal(ex.body, &resp) == nil {
			delete(resp, "account_data") // the push rules: long and beside the point
			if b, err := json.Marshal(resp); err == nil {
				body = string(b)
			}
		}
		if len(body) > 8000 {
			body = body[:8000] + "…"
		}
		t.Logf("%s /sync?%s: %d after %v (err %v)\n%s", who, ex.query, ex.status,
			ex.done.Sub(ex.start).Round(time.Millisecond), ex.err, body)
	}
}

// failFastSyncer is mautrix's DefaultSyncer, except that a failed /sync
// ends the loop instead of being retried ten seconds later, so a server
// error fails the test at once and with its cause, and that processed is
// called after every response has been dispatched to the handlers.
type failFastSyncer struct {
	*mautrix.DefaultSyncer
	processed func()
}

// ProcessResponse implements mautrix.Syncer.
func (s failFastSyncer) ProcessResponse(ctx context.Context, resp *mautrix.RespSync, since string) error {
	err := s.DefaultSyncer.ProcessResponse(ctx, resp, since)
	s.processed()
	return err
}

// OnFailedSync implements mautrix.Syncer.
func (failFastSyncer) OnFailedSync(_ *mautrix.RespSync, err error) (time.Duration, error) {
	return 0, fmt.Errorf("/sync failed: %w", err)
}

// seen is an event a sync loop dispatched to a handler, and when.
type seen struct {
	evt *event.Event
	at  time.Time
}

// syncLoop is a client running mautrix's sync loop in a goroutine, with
// handlers that pass what they see to the test through channels.
type syncLoop struct {
	name string
	cli  *mautrix.Client
	rec  *syncRecorder

	members, messages, names, typing, receipts chan seen
	handlerErrs                                chan error
	synced                                     chan struct{} // closed after the first sync was processed

	ctx    context.Context
	cancel context.CancelFunc
	loopRun
	stop func()
}

// startSyncLoop switches cli to a long-poll capable recording transport,
// gives it a memory state store, the Element filter and handlers, and runs
// its sync loop until the test ends. autoJoin makes the handler for the
// user's own invites join the room, as a bot or an auto-accepting client
// does.
func startSyncLoop(t *testing.T, name string, cli *mautrix.Client, autoJoin bool) *syncLoop {
	t.Helper()
	rec := &syncRecorder{next: http.DefaultTransport}
	cli.Client = &http.Client{Timeout: syncHTTPTimeout, Transport: rec}
	cli.StateStore = newStateStore()
	syncer := mautrix.NewDefaultSyncer()
	syncer.FilterJSON = elementFilter()

	l := &syncLoop{
		name: name, cli: cli, rec: rec,
		members: make(chan seen, 1000), messages: make(chan seen, 1000), names: make(chan seen, 1000),
		typing: make(chan seen, 1000), receipts: make(chan seen, 1000),
		handlerErrs: make(chan error, 100), synced: make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	var once sync.Once
	cli.Syncer = failFastSyncer{DefaultSyncer: syncer, processed: func() { once.Do(func() { close(l.synced) }) }}
	pass := func(ch chan seen) mautrix.EventHandler { return passTo(l.ctx, ch) }
	syncer.OnEvent(cli.StateStoreSyncHandler)
	syncer.OnEventType(event.StateMember, func(ctx context.Context, evt *event.Event) {
		// The state store keeps the parsed content and JoinRoomByID
		// updates it in place: hand the test a copy as /sync sent it.
		member := *evt.Content.AsMember()
		copied := *evt
		copied.Content.Parsed = &member
		if autoJoin && evt.GetStateKey() == cli.UserID.String() &&
			evt.Mautrix.EventSource&event.SourceInvite != 0 &&
			evt.Content.AsMember().Membership == event.MembershipInvite {
			jctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			if _, err := cli.JoinRoomByID(jctx, evt.RoomID); err != nil {
				l.handlerErrs <- fmt.Errorf("auto-join %s: %w", evt.RoomID, err)
			}
		}
		pass(l.members)(ctx, &copied)
	})
	syncer.OnEventType(event.EventMessage, pass(l.messages))
	syncer.OnEventType(event.StateRoomName, pass(l.names))
	syncer.OnEventType(event.EphemeralEventTyping, pass(l.typing))
	syncer.OnEventType(event.EphemeralEventReceipt, pass(l.receipts))
	l.run(l.ctx, cli)
	var stopOnce sync.Once
	l.stop = func() {
		stopOnce.Do(func() {
			if l.halt(t, name, cli, l.cancel) && l.failed() {
				t.Errorf("%s: the sync loop ended with %v", name, l.loopErr)
				rec.dump(t, name, 3)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// loopRun is a running mautrix sync loop.
type loopRun struct {
	stopped chan struct{} // closed when the loop has returned
	loopErr error         // the loop's result, read after stopped
}

// run starts cli's sync loop, which runs until ctx ends.
func (lr *loopRun) run(ctx context.Context, cli *mautrix.Client) {
	lr.stopped = make(chan struct{})
	go func() {
		defer close(lr.stopped)
		lr.loopErr = cli.SyncWithContext(ctx)
	}()
}

// halt stops the loop and waits for it to return; false (and a test
// error) when it does not within syncWait.
func (lr *loopRun) halt(t *testing.T, name string, cli *mautrix.Client, cancel context.CancelFunc) bool {
	cli.StopSync()
	cancel()
	select {
	case <-lr.stopped:
		return true
	case <-time.After(syncWait):
		t.Errorf("%s: the sync loop did not stop within %v", name, syncWait)
		return false
	}
}

// failed reports whether the loop ended with an error other than being
// stopped.
func (lr *loopRun) failed() bool {
	return lr.loopErr != nil && !errors.Is(lr.loopErr, context.Canceled)
}

// newStateStore returns mautrix's memory state store, ready for use:
// v0.26.0's NewMemoryStateStore leaves JoinRules nil, and the first
// m.room.join_rules event would panic the sync loop.
func newStateStore() *stateStore {
	store := mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)
	store.JoinRules = map[id.RoomID]*event.JoinRulesEventContent{}
	return &stateStore{store}
}

// stateStore is mautrix's memory state store, except that SetMember keeps
// a copy of the member content. v0.26.0 keeps the synced event's own
// content, and a later SetMembership (which InviteUser, JoinRoomByID and
// LeaveRoom call) writes into it while the sync loop's handlers may still
// be reading that event: a data race in the test client, not the server.
type stateStore struct{ *mautrix.MemoryStateStore }

// SetMember stores a copy of member.
func (s *stateStore) SetMember(ctx context.Context, roomID id.RoomID, userID id.UserID, member *event.MemberEventContent) error {
	if member != nil {
		c := *member
		member = &c
	}
	return s.MemoryStateStore.SetMember(ctx, roomID, userID, member)
}

// passTo is an event handler that hands each event, with the time it
// arrived, to ch (until ctx ends).
func passTo(ctx context.Context, ch chan seen) mautrix.EventHandler {
	return func(_ context.Context, evt *event.Event) {
		select {
		case ch <- seen{evt: evt, at: time.Now()}:
		case <-ctx.Done():
		}
	}
}

// waitSynced waits until the loop has processed its initial sync.
func (l *syncLoop) waitSynced(t *testing.T) {
	t.Helper()
	select {
	case <-l.synced:
	case <-l.stopped:
		t.Fatalf("%s: the sync loop ended before its initial sync was processed: %v", l.name, l.loopErr)
	case <-time.After(syncWait):
		l.rec.dump(t, l.name, 5)
		t.Fatalf("%s: no sync was processed within %v", l.name, syncWait)
	}
}

// next returns the next event of ch, failing the test after syncWait.
func (l *syncLoop) next(t *testing.T, ch chan seen, what string) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case err := <-l.handlerErrs:
		l.rec.dump(t, l.name, 5)
		t.Fatalf("%s waiting for %s: %v", l.name, what, err)
	case <-l.stopped:
		l.rec.dump(t, l.name, 5)
		t.Fatalf("%s waiting for %s: the sync loop ended: %v", l.name, what, l.loopErr)
	case <-time.After(syncWait):
		l.rec.dump(t, l.name, 5)
		t.Fatalf("%s: no %s within %v", l.name, what, syncWait)
	}
	panic("unreachable")
}

// await returns the first event of ch that match accepts, logging the
// ones it skips; it fails the test after syncWait.
func (l *syncLoop) await(t *testing.T, ch chan seen, what string, match func(*event.Event) bool) seen {
	t.Helper()
	deadline := time.Now().Add(syncWait)
	for {
		select {
		case s := <-ch:
			if match(s.evt) {
				return s
			}
			t.Logf("%s, waiting for %s, skipped %s %s in %s: %v", l.name, what, s.evt.Type.Type, s.evt.ID, s.evt.RoomID, s.evt.Content.Raw)
		case err := <-l.handlerErrs:
			l.rec.dump(t, l.name, 5)
			t.Fatalf("%s waiting for %s: %v", l.name, what, err)
		case <-l.stopped:
			l.rec.dump(t, l.name, 5)
			t.Fatalf("%s waiting for %s: the sync loop ended: %v", l.name, what, l.loopErr)
		case <-time.After(time.Until(deadline)):
			l.rec.dump(t, l.name, 5)
			t.Fatalf("%s: no %s within %v", l.name, what, syncWait)
		}
	}
}

// drain returns the events ch holds now, without waiting.
func drain(ch chan seen) []seen {
	var out []seen
	for {
		select {
		case s := <-ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// expectMessage fails unless s is the message id from sender with body.
func expectMessage(t *testing.T, who string, s seen, roomID id.RoomID, eventID id.EventID, sender id.UserID, body string) {
	t.Helper()
	evt := s.evt
	msg := evt.Content.AsMessage()
	if evt.ID != eventID || evt.Sender != sender || evt.RoomID != roomID || msg.Body != body ||
		msg.MsgType != event.MsgText || evt.Mautrix.EventSource != event.SourceJoin|event.SourceTimeline {
		t.Fatalf("%s saw message %s from %s in %s (%s) with %q, want %s from %s in %s (joined timeline) with %q",
			who, evt.ID, evt.Sender, evt.RoomID, evt.Mautrix.EventSource, msg.Body, eventID, sender, roomID, body)
	}
	if evt.Timestamp <= 0 || time.Since(time.UnixMilli(evt.Timestamp)) > time.Minute {
		t.Errorf("%s: message %s has origin_server_ts %d", who, evt.ID, evt.Timestamp)
	}
}

// typingIs returns a matcher for an m.typing event of roomID listing
// exactly users.
func typingIs(roomID id.RoomID, users ...id.UserID) func(*event.Event) bool {
	return func(evt *event.Event) bool {
		got := evt.Content.AsTyping().UserIDs
		return evt.RoomID == roomID && len(got) == len(users) && !slices.ContainsFunc(users, func(u id.UserID) bool {
			return !slices.Contains(got, u)
		})
	}
}

// receiptOf returns a matcher for an m.receipt event of roomID holding
// user's receipt of type rt for eventID.
func receiptOf(roomID id.RoomID, eventID id.EventID, rt event.ReceiptType, user id.UserID) func(*event.Event) bool {
	return func(evt *event.Event) bool {
		_, ok := (*evt.Content.AsReceipt())[eventID][rt][user]
		return evt.RoomID == roomID && ok
	}
}

// TestSyncTwoUsersWithMautrix is the acceptance test of /sync: two
// mautrix-go clients run the library's real sync loop with Element's filter
// (lazy-loaded members) and see each other's invites, joins, room state,
// messages, typing and receipts through their handlers.
func TestSyncTwoUsersWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		aliceCli := register(t, s, "alice", "alice-password")
		bobCli := register(t, s, "bob", "bob-password")
		alice := startSyncLoop(t, "alice", aliceCli, false)
		bob := startSyncLoop(t, "bob", bobCli, true)
		alice.waitSynced(t)
		bob.waitSynced(t)
		// Both loops now long-poll with a since token: all that follows
		// reaches them through incremental syncs.

		created, err := aliceCli.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset: "private_chat", Name: "Sync room", Invite: []id.UserID{bobCli.UserID},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		roomID := created.RoomID

		// Bob's syncer sees his invite, the handler joins, and the syncer
		// then sees his join: invite → join, nothing else in between.
		var own []seen
		for {
			m := bob.await(t, bob.members, "bob's membership", func(evt *event.Event) bool {
				return evt.RoomID == roomID && evt.GetStateKey() == bobCli.UserID.String()
			})
			own = append(own, m)
			if m.evt.Content.AsMember().Membership == event.MembershipJoin {
				break
			}
		}
		first := own[0].evt
		if first.Content.AsMember().Membership != event.MembershipInvite || first.Mautrix.EventSource != event.SourceInvite|event.SourceState ||
			first.Sender != aliceCli.UserID {
			t.Fatalf("bob's first own membership event: %s from %s (%s), want an invite from alice in rooms.invite",
				first.Content.AsMember().Membership, first.Sender, first.Mautrix.EventSource)
		}
		join := own[len(own)-1].evt
		if join.Mautrix.EventSource&event.SourceJoin == 0 || join.Sender != bobCli.UserID || join.ID == "" {
			t.Fatalf("bob's join %s from %s (%s): want his own join event in rooms.join", join.ID, join.Sender, join.Mautrix.EventSource)
		}
		for _, m := range own[1 : len(own)-1] {
			// The invite may come again in the joined room's timeline.
			if mem := m.evt.Content.AsMember().Membership; mem != event.MembershipInvite || m.evt.Mautrix.EventSource&event.SourceJoin == 0 {
				t.Errorf("between bob's invite and join: %s (%s)", mem, m.evt.Mautrix.EventSource)
			}
		}
		// Alice sees bob join.
		alice.await(t, alice.members, "bob's join on alice's side", func(evt *event.Event) bool {
			return evt.RoomID == roomID && evt.GetStateKey() == bobCli.UserID.String() &&
				evt.Content.AsMember().Membership == event.MembershipJoin && evt.ID == join.ID
		})

		// The room's state as bob's client learnt it from /sync: the name
		// (in the invite's stripped state and in the joined room), and what
		// mautrix's state store keeps.
		var nameSources []event.Source
		for {
			n := bob.await(t, bob.names, "the room name", func(evt *event.Event) bool { return evt.RoomID == roomID })
			if got := n.evt.Content.AsRoomName().Name; got != "Sync room" {
				t.Fatalf("bob saw room name %q (%s), want Sync room", got, n.evt.Mautrix.EventSource)
			}
			nameSources = append(nameSources, n.evt.Mautrix.EventSource)
			if n.evt.Mautrix.EventSource&event.SourceJoin != 0 {
				break
			}
		}
		if nameSources[0] != event.SourceInvite|event.SourceState {
			t.Errorf("room name sources %v: want the name in the invite's stripped state first", nameSources)
		}
		store := bobCli.StateStore
		bg := context.Background()
		if pl, err := store.GetPowerLevels(bg, roomID); err != nil || pl == nil || pl.GetUserLevel(aliceCli.UserID) != 100 {
			t.Errorf("bob's state store: power levels %+v, %v; want alice at 100", pl, err)
		}
		if cr, err := store.GetCreate(bg, roomID); err != nil || cr == nil || cr.ID == "" || cr.Sender != aliceCli.UserID {
			t.Errorf("bob's state store: create event %+v, %v; want alice's full m.room.create event", cr, err)
		}
		if jr, err := store.GetJoinRules(bg, roomID); err != nil || jr == nil || jr.JoinRule != event.JoinRuleInvite {
			t.Errorf("bob's state store: join rules %+v, %v; want invite", jr, err)
		}
		// (JoinRoomByID records the join too; /sync must not undo it.)
		if !store.IsInRoom(bg, roomID, bobCli.UserID) {
			t.Errorf("bob's state store: bob is not in the room")
		}

		// Alice sends; bob's handler sees each message once, in order.
		bodies := []string{"one", "two", "three"}
		var sent []id.EventID
		for _, b := range bodies {
			resp, err := aliceCli.SendText(ctx(t), roomID, b)
			if err != nil {
				t.Fatalf("SendText(%q): %v", b, err)
			}
			sent = append(sent, resp.EventID)
		}
		for i, b := range bodies {
			expectMessage(t, "bob", bob.next(t, bob.messages, "alice's message "+b), roomID, sent[i], aliceCli.UserID, b)
		}
		// Lazy loading: alice's member event reached bob with (mautrix
		// handles state before the timeline) her first message at the
		// latest, since his client needs it to show her as the sender.
		if m, err := store.TryGetMember(bg, roomID, aliceCli.UserID); err != nil || m == nil ||
			m.Membership != event.MembershipJoin || m.Displayname != "alice" {
			t.Errorf("bob's state store: alice's member content %+v, %v; want her join (lazy-loaded with her messages)", m, err)
		}

		// Bob replies; alice sees her own messages, then his.
		reply, err := bobCli.SendText(ctx(t), roomID, "hi alice")
		if err != nil {
			t.Fatalf("bob's SendText: %v", err)
		}
		for i, b := range bodies {
			expectMessage(t, "alice", alice.next(t, alice.messages, "her own message "+b), roomID, sent[i], aliceCli.UserID, b)
		}
		expectMessage(t, "alice", alice.next(t, alice.messages, "bob's reply"), roomID, reply.EventID, bobCli.UserID, "hi alice")
		expectMessage(t, "bob", bob.next(t, bob.messages, "his own reply"), roomID, reply.EventID, bobCli.UserID, "hi alice")

		// Typing: alice starts, bob sees her listed; she stops, bob sees
		// the list empty.
		if _, err := aliceCli.UserTyping(ctx(t), roomID, true, 30*time.Second); err != nil {
			t.Fatalf("UserTyping(true): %v", err)
		}
		bob.await(t, bob.typing, "m.typing listing alice", typingIs(roomID, aliceCli.UserID))
		if _, err := aliceCli.UserTyping(ctx(t), roomID, false, 0); err != nil {
			t.Fatalf("UserTyping(false): %v", err)
		}
		bob.await(t, bob.typing, "m.typing with nobody", typingIs(roomID))

		// Receipts: bob's private receipt reaches only bob; his public one
		// reaches alice, for the right event.
		if err := bobCli.SendReceipt(ctx(t), roomID, sent[0], event.ReceiptTypeReadPrivate, nil); err != nil {
			t.Fatalf("SendReceipt(m.read.private): %v", err)
		}
		bob.await(t, bob.receipts, "his own private receipt", receiptOf(roomID, sent[0], event.ReceiptTypeReadPrivate, bobCli.UserID))
		before := time.Now()
		if err := bobCli.SendReceipt(ctx(t), roomID, sent[2], event.ReceiptTypeRead, nil); err != nil {
			t.Fatalf("SendReceipt(m.read): %v", err)
		}
		got := alice.await(t, alice.receipts, "bob's read receipt", receiptOf(roomID, sent[2], event.ReceiptTypeRead, bobCli.UserID))
		rr := (*got.evt.Content.AsReceipt())[sent[2]][event.ReceiptTypeRead][bobCli.UserID]
		if rr.Timestamp.Before(before.Add(-time.Minute)) || rr.Timestamp.After(time.Now().Add(time.Minute)) || rr.ThreadID != "" {
			t.Errorf("bob's receipt on alice's side: %+v, want a current ts and no thread", rr)
		}
		// The public receipt came after the private one in the stream, so
		// a leaked private receipt would have reached alice by now.
		for _, r := range append(drain(alice.receipts), got) {
			for evtID, receipts := range *r.evt.Content.AsReceipt() {
				if _, leaked := receipts[event.ReceiptTypeReadPrivate]; leaked {
					t.Errorf("alice saw a private receipt for %s: %v", evtID, r.evt.Content.Raw)
				}
			}
		}
		bob.await(t, bob.receipts, "his own public receipt", receiptOf(roomID, sent[2], event.ReceiptTypeRead, bobCli.UserID))

		// Every message was handed over exactly once: a repeat would have
		// come before the receipts, which are later in the stream.
		for _, l := range []*syncLoop{alice, bob} {
			for _, m := range drain(l.messages) {
				t.Errorf("%s saw message %s (%q) again", l.name, m.evt.ID, m.evt.Content.AsMessage().Body)
			}
		}
		alice.stop()
		bob.stop()
	})
}

// TestSyncLongPollWakeupWithMautrix lets mautrix's sync loop long-poll
// (timeout=30000) and measures how soon after a write returns the other
// user's handler fires. The bound asserted is generous: it only proves the
// parked request was woken rather than left to time out.
func TestSyncLongPollWakeupWithMautrix(t *testing.T) {
	const bound = 5 * time.Second
	// parkDelay gives the server time to park the request before the write;
	// without it the write could land before the request waits, and the
	// test would measure an immediate answer instead of a wake-up.
	const parkDelay = 300 * time.Millisecond

	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		aliceCli := register(t, s, "alice", "alice-password")
		bobCli := register(t, s, "bob", "bob-password")
		created, err := aliceCli.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset: "private_chat", Name: "Long poll", Invite: []id.UserID{bobCli.UserID},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		roomID := created.RoomID
		if _, err := bobCli.JoinRoomByID(ctx(t), roomID); err != nil {
			t.Fatalf("JoinRoomByID: %v", err)
		}
		// Offline, so that presence (whose wake-ups the server batches for
		// two seconds) cannot answer the parked request this test watches.
		aliceCli.SyncPresence, bobCli.SyncPresence = event.PresenceOffline, event.PresenceOffline
		alice := startSyncLoop(t, "alice", aliceCli, false)
		bob := startSyncLoop(t, "bob", bobCli, false)
		alice.waitSynced(t)
		bob.waitSynced(t)

		// parked waits until l has a long-poll in flight, then gives the
		// server parkDelay to park it, and returns when it started.
		parked := func(l *syncLoop) time.Time {
			t.Helper()
			deadline := time.Now().Add(syncWait)
			for {
				if time.Now().After(deadline) {
					l.rec.dump(t, l.name, 5)
					t.Fatalf("%s: no long-polling /sync stayed in flight for %v within %v", l.name, parkDelay, syncWait)
				}
				if start, ok := l.rec.inFlightLongPoll(); ok {
					time.Sleep(parkDelay)
					if again, ok := l.rec.inFlightLongPoll(); ok && again.Equal(start) {
						return start
					}
					continue // answered meanwhile (presence, say): wait for the next one
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		// woken checks and logs one wake-up: the exchange that delivered
		// marker must be the request parked before the write.
		woken := func(l *syncLoop, what, marker string, pollStart, writeStart, written time.Time, handled seen) {
			t.Helper()
			latency := handled.at.Sub(written)
			ex, ok := l.rec.answeredBefore(handled.at)
			if !ok || !bytes.Contains(ex.body, []byte(marker)) {
				l.rec.dump(t, l.name, 3)
				t.Fatalf("%s: the last /sync answer before the handler ran does not hold %s", l.name, marker)
			}
			// The server wakes the request when the write commits, so the
			// handler often runs before the write's own answer arrives.
			t.Logf("%s: %s handled %v after the write was sent, %v after it returned (the /sync answer arrived %v after the write was sent; the request had waited %v)",
				l.name, what, handled.at.Sub(writeStart).Round(time.Microsecond), latency.Round(time.Microsecond),
				ex.done.Sub(writeStart).Round(time.Microsecond), ex.done.Sub(ex.start).Round(time.Millisecond))
			if !ex.start.Equal(pollStart) || !strings.Contains(ex.query, "timeout=30000") {
				t.Errorf("%s: %s came in /sync?%s started at %v, not in the long-poll parked at %v",
					l.name, what, ex.query, ex.start.Format(time.StampMicro), pollStart.Format(time.StampMicro))
			}
			if latency > bound {
				l.rec.dump(t, l.name, 3)
				t.Errorf("%s: %s handled %v after the write, want under %v: the long-poll was not woken", l.name, what, latency, bound)
			}
		}

		// Drop what the initial syncs delivered.
		drain(bob.messages)
		drain(bob.typing)
		drain(alice.receipts)

		var last id.EventID
		for i := range 3 {
			body := fmt.Sprintf("wake up %d", i)
			pollStart := parked(bob)
			writeStart := time.Now()
			resp, err := aliceCli.SendText(ctx(t), roomID, body)
			written := time.Now()
			if err != nil {
				t.Fatalf("SendText: %v", err)
			}
			got := bob.next(t, bob.messages, body)
			expectMessage(t, "bob", got, roomID, resp.EventID, aliceCli.UserID, body)
			woken(bob, "message "+body, resp.EventID.String(), pollStart, writeStart, written, got)
			last = resp.EventID
		}

		pollStart := parked(bob)
		writeStart := time.Now()
		if _, err := aliceCli.UserTyping(ctx(t), roomID, true, 30*time.Second); err != nil {
			t.Fatalf("UserTyping: %v", err)
		}
		written := time.Now()
		got := bob.await(t, bob.typing, "m.typing listing alice", typingIs(roomID, aliceCli.UserID))
		woken(bob, "typing", `"m.typing"`, pollStart, writeStart, written, got)

		pollStart = parked(alice)
		writeStart = time.Now()
		if err := bobCli.SendReceipt(ctx(t), roomID, last, event.ReceiptTypeRead, nil); err != nil {
			t.Fatalf("SendReceipt: %v", err)
		}
		written = time.Now()
		got = alice.await(t, alice.receipts, "bob's receipt", receiptOf(roomID, last, event.ReceiptTypeRead, bobCli.UserID))
		woken(alice, "receipt", `"m.receipt"`, pollStart, writeStart, written, got)

		alice.stop()
		bob.stop()
	})
}
