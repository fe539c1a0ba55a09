package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/keys"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// Defaults and bounds of a /sync request.
const (
	// DefaultTimelineLimit is the timeline length without a filter limit.
	DefaultTimelineLimit = 10
	// maxTimelineLimit caps what a filter may ask for.
	maxTimelineLimit = 500
	// MaxTimeout caps how long one request long-polls.
	MaxTimeout = 5 * time.Minute
	// roomWorkers bounds how many rooms of one response are computed at
	// once (each takes a few queries).
	roomWorkers = 4
	// presenceBatch is how long a parked request woken only by presence
	// changes waits for more of them before answering.
	presenceBatch = 2 * time.Second
)

// Request is one GET /sync.
type Request struct {
	UserID   string
	DeviceID string
	Since    *Token // nil: an initial sync
	Timeout  time.Duration
	// FullState sends every joined room with its whole state.
	FullState bool
	Filter    *Filter
	// StateKey is where rooms' state goes: "state", or for MSC4222
	// "state_after" or "org.matrix.msc4222.state_after".
	StateKey string
}

// UseStateAfter returns the state key for MSC4222's query parameters:
// use_state_after (stable) or org.matrix.msc4222.use_state_after.
func UseStateAfter(stable, unstable bool) string {
	switch {
	case stable:
		return stateAfterKey
	case unstable:
		return stateAfterMSCKey
	}
	return stateKey
}

// Sync answers a /sync request: at once when something is new for the
// user (or for an initial or full-state sync), otherwise when the first
// change that concerns them happens, or with nothing new after the
// timeout. ctx ending stops the wait.
func (s *Service) Sync(ctx context.Context, req Request) (*Response, error) {
	if req.Filter == nil {
		req.Filter = &Filter{}
	}
	if req.StateKey == "" {
		req.StateKey = stateKey
	}
	deadline := time.Now().Add(min(req.Timeout, MaxTimeout))
	var since Token
	if req.Since != nil {
		since = *req.Since
	}
	immediate := req.Since == nil || req.FullState
	var batchUntil time.Time // while presence changes are held back (see below)
	for {
		ms, err := s.memberships(ctx, req.UserID)
		if err != nil {
			return nil, err
		}
		wr := watchRequest{userID: req.UserID, deviceID: req.DeviceID, since: since}
		for id, m := range ms {
			if m.Membership == "join" {
				wr.rooms = append(wr.rooms, id)
			}
		}
		upto := s.notifier.Position()
		var plan plan
		if immediate {
			plan.all = true
		} else {
			var w *waiter
			// A token with a to-device position acknowledges the to-device
			// messages its response carried, and the rest of a batch cut at
			// its limit lies at or below since.Pos, where the notifier does
			// not look: don't park, look at the inbox (todevice.go).
			ack := since.ToDeviceAck
			now := time.Now()
			holdPresence := now.Before(batchUntil)
			until := deadline
			if holdPresence {
				until = batchUntil
			}
			plan, w = s.notifier.changes(wr, !ack && now.Before(until), holdPresence)
			plan.user = plan.user || ack
			if w == nil && plan.presenceOnly() && batchUntil.IsZero() && now.Before(deadline) {
				// Presence alone can wait a little: room-mates coming online
				// together then cost each parked request one answer, not one
				// per room-mate. Anything else still answers at once.
				batchUntil = now.Add(presenceBatch)
				if batchUntil.After(deadline) {
					batchUntil = deadline
				}
				continue
			}
			if w != nil {
				if err := s.notifier.wait(ctx, wr, w, until); err != nil {
					return nil, err
				}
				continue // look again at what changed
			}
		}
		resp, err := s.build(ctx, req, since, upto, ms, plan)
		if err != nil {
			return nil, err
		}
		if immediate || !resp.empty() || !time.Now().Before(deadline) {
			return resp, nil
		}
		// The changes were nothing this client sees (another user's
		// private receipt, say): wait on from here.
		if since, err = ParseToken(resp.NextBatch); err != nil {
			return nil, err
		}
	}
}

// memberships returns the user's memberships, from the notifier's memory
// once loaded.
func (s *Service) memberships(ctx context.Context, userID string) (map[string]Membership, error) {
	if ms, ok := s.notifier.memberships(userID); ok {
		return ms, nil
	}
	list, err := s.db.MembershipsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	ms := make(map[string]Membership, len(list))
	for _, m := range list {
		ms[m.RoomID] = Membership{Membership: m.Membership, Pos: m.StreamPos}
	}
	s.notifier.installMemberships(userID, ms)
	out, _ := s.notifier.memberships(userID)
	return out, nil
}

// roomJob is one room entry to compute.
type roomJob struct {
	roomID     string
	membership string
	req        roomserver.SyncRoomRequest
}

// build computes the response for the changes after since up to upto.
func (s *Service) build(ctx context.Context, req Request, since Token, upto int64, ms map[string]Membership, p plan) (*Response, error) {
	f := req.Filter
	initial := req.Since == nil
	full := initial || req.FullState
	resp := &Response{}
	var joined []string
	for id, m := range ms {
		if m.Membership == "join" {
			joined = append(joined, id)
		}
	}
	sort.Strings(joined)
	typingNow, typingSerial := s.typing.ChangedSince(since.Typing, joined)
	resp.NextBatch = Token{Pos: upto, Typing: typingSerial}.String()

	changed := map[string]bool{}
	for _, id := range p.rooms {
		changed[id] = true
	}
	for id := range typingNow {
		changed[id] = true
	}

	// Account data: global, and per room for the rooms shown.
	var roomData map[string][]any
	if p.all || p.user {
		global, perRoom, err := s.accountData(ctx, req, since.Pos, initial)
		if err != nil {
			return nil, err
		}
		if len(global) > 0 {
			resp.AccountData = &EventList{Events: global}
		}
		roomData = perRoom
	}

	lazy := f.Room.State.LazyLoadMembers
	if initial && lazy && !f.Room.State.IncludeRedundantMembers {
		// A new sync sequence: the client remembers no members.
		c := s.lazySent(req.UserID, req.DeviceID)
		c.mu.Lock()
		clear(c.sent)
		c.mu.Unlock()
	}
	var ignored map[string]bool
	var jobs []roomJob
	rooms := &Rooms{}
	limit := f.Room.Timeline.EffectiveLimit(DefaultTimelineLimit, maxTimelineLimit)
	base := roomserver.SyncRoomRequest{
		UserID: req.UserID, DeviceID: req.DeviceID, Since: since.Pos, Upto: upto,
		StateAfter: req.StateKey != stateKey, Limit: limit, LazyMembers: lazy,
		Match: f.Room.Timeline.Matches,
	}
	if initial {
		base.Since = 0
	}
	ids := make([]string, 0, len(ms))
	for id := range ms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := ms[id]
		if !f.Room.AllowsRoom(id) {
			continue
		}
		isNew := !initial && m.Pos > since.Pos
		job := roomJob{roomID: id, membership: m.Membership, req: base}
		job.req.RoomID = id
		switch m.Membership {
		case "join":
			if !(full || p.all || isNew || changed[id] || len(roomData[id]) > 0) {
				continue
			}
			job.req.FullState = full || isNew
			if isNew {
				// A room joined since the last sync comes as on an initial
				// sync: its latest events, not only those after since (as
				// Synapse answers).
				job.req.Since = 0
			}
			job.req.Summary = lazy
		case "leave", "ban":
			if !(isNew || (full && f.Room.IncludeLeave)) {
				continue
			}
			job.req.Upto = m.Pos
			job.req.FullState = full
		case "invite", "knock":
			if !(full || isNew) {
				continue
			}
		default:
			continue
		}
		jobs = append(jobs, job)
	}
	if len(jobs) > 0 {
		var err error
		if ignored, err = s.ignoredUsers(ctx, req.UserID); err != nil {
			return nil, err
		}
	}
	// Rooms the fast path can answer from memory (fastpath.go).
	fast := map[string]*JoinedRoom{}
	if !full {
		rest := jobs[:0]
		for _, j := range jobs {
			if j.membership == "join" && !j.req.FullState {
				jr, ok, err := s.fastRoom(ctx, req, j.roomID, since, upto, ignored, typingNow)
				if err != nil {
					return nil, err
				}
				if ok {
					fast[j.roomID] = jr
					continue
				}
			}
			rest = append(rest, j)
		}
		jobs = rest
	}
	var receipts map[string][]storage.Receipt
	var receiptRooms []string
	for _, j := range jobs {
		if j.membership == "join" && (full || p.all || changed[j.roomID] || j.req.FullState) {
			receiptRooms = append(receiptRooms, j.roomID)
		}
	}
	if len(receiptRooms) > 0 && f.Room.Ephemeral.Allows("m.receipt", "") {
		list, err := s.db.ReceiptsVisibleTo(ctx, req.UserID, receiptRooms, since.Pos)
		if err != nil {
			return nil, err
		}
		receipts = map[string][]storage.Receipt{}
		for _, r := range list {
			if r.StreamPos <= upto {
				receipts[r.RoomID] = append(receipts[r.RoomID], r)
			}
		}
	}

	results := make([]any, len(jobs))
	err := s.forEach(ctx, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		j.req.Ignored = ignored
		var err error
		switch j.membership {
		case "invite", "knock":
			var st []roomserver.StrippedEvent
			if st, err = s.rooms.StrippedState(ctx, req.UserID, j.roomID); err == nil {
				if j.membership == "invite" {
					results[i] = &InvitedRoom{InviteState: StrippedList{Events: st}}
				} else {
					results[i] = &KnockedRoom{KnockState: StrippedList{Events: st}}
				}
			}
		default:
			var sr *roomserver.SyncRoom
			if sr, err = s.rooms.SyncRoom(ctx, j.req); err == nil {
				results[i] = sr
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	for i, j := range jobs {
		switch r := results[i].(type) {
		case *InvitedRoom:
			if rooms.Invite == nil {
				rooms.Invite = map[string]*InvitedRoom{}
			}
			rooms.Invite[j.roomID] = r
		case *KnockedRoom:
			if rooms.Knock == nil {
				rooms.Knock = map[string]*KnockedRoom{}
			}
			rooms.Knock[j.roomID] = r
		case *roomserver.SyncRoom:
			state := s.dedupeMembers(req, j.roomID, initial, r)
			tl := Timeline{Events: formatAll(f, r.Timeline), Limited: r.Limited, PrevBatch: r.PrevBatch}
			stateEvents := []any{}
			for _, ev := range state {
				if f.Room.State.Matches(ev) {
					stateEvents = append(stateEvents, f.format(ev))
				}
			}
			data := roomData[j.roomID]
			if data == nil {
				data = []any{}
			}
			if j.membership != "join" {
				lr := &LeftRoom{Timeline: tl, AccountData: EventList{Events: data}}
				lr.roomState.set(req.StateKey, stateEvents)
				if rooms.Leave == nil {
					rooms.Leave = map[string]*LeftRoom{}
				}
				rooms.Leave[j.roomID] = lr
				continue
			}
			jr := &JoinedRoom{Timeline: tl, AccountData: EventList{Events: data}, Summary: r.Summary}
			jr.roomState.set(req.StateKey, stateEvents)
			jr.Ephemeral.Events = s.ephemeral(f, j.roomID, typingNow, receipts[j.roomID])
			if !j.req.FullState && len(tl.Events) == 0 && len(stateEvents) == 0 && len(jr.Ephemeral.Events) == 0 && len(data) == 0 {
				continue // what changed was nothing this client sees
			}
			if rooms.Join == nil {
				rooms.Join = map[string]*JoinedRoom{}
			}
			rooms.Join[j.roomID] = jr
		}
	}
	for id, jr := range fast {
		if data := roomData[id]; data != nil {
			jr.AccountData.Events = data
		}
		if len(jr.Timeline.Events) == 0 && len(jr.Ephemeral.Events) == 0 && len(jr.AccountData.Events) == 0 && !hasState(jr.roomState) {
			continue
		}
		if rooms.Join == nil {
			rooms.Join = map[string]*JoinedRoom{}
		}
		rooms.Join[id] = jr
	}
	// Typing in rooms that had nothing else to compute.
	for id := range typingNow {
		if rooms.Join[id] != nil || !f.Room.AllowsRoom(id) {
			continue
		}
		evs := s.ephemeral(f, id, typingNow, nil)
		if len(evs) == 0 {
			continue
		}
		if rooms.Join == nil {
			rooms.Join = map[string]*JoinedRoom{}
		}
		jr := &JoinedRoom{Timeline: Timeline{Events: []any{}, PrevBatch: resp.NextBatch}, AccountData: EventList{Events: []any{}}}
		jr.Ephemeral.Events = evs
		rooms.Join[id] = jr
	}
	if err := s.unreadCounts(ctx, req, upto, rooms.Join); err != nil { // unread.go
		return nil, err
	}
	if rooms.Join != nil || rooms.Invite != nil || rooms.Leave != nil || rooms.Knock != nil {
		resp.Rooms = rooms
	}
	if !initial { // an initial sync has clients query every user's keys anyway
		checkRooms := p.rooms
		if p.all {
			checkRooms = joined
		}
		memberRooms := s.notifier.memberChangeRooms(checkRooms, since.Pos, upto)
		dl, err := s.deviceListsFor(ctx, req.UserID, since.Pos, upto, ms, p.all || p.user || p.devices, memberRooms)
		if err != nil {
			return nil, err
		}
		resp.DeviceLists = dl
	}
	if req.DeviceID != "" {
		counts, err := s.keyCounts(ctx, req.UserID, req.DeviceID)
		if err != nil {
			return nil, err
		}
		resp.OneTimeKeysCount, resp.UnusedFallbackKeyTypes = keys.OneTimeKeyCounts(counts), counts.Fallback
	}
	if p.all || p.user {
		if err := s.toDevice(ctx, req, since, upto, resp); err != nil { // todevice.go
			return nil, err
		}
	}
	if p.all || p.presence || p.user {
		if err := s.presence(ctx, req, since, upto, resp); err != nil { // presence.go
			return nil, err
		}
	}
	return resp, nil
}

func hasState(rs roomState) bool {
	for _, l := range []*EventList{rs.State, rs.StateAfter, rs.StateAfterMSC} {
		if l != nil && len(l.Events) > 0 {
			return true
		}
	}
	return false
}

// forEach runs fn for 0..n-1 on up to roomWorkers goroutines and returns
// the first error.
func (s *Service) forEach(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range min(n, roomWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func formatAll(f *Filter, evs []roomserver.ClientEvent) []any {
	out := make([]any, 0, len(evs))
	for _, ev := range evs {
		out = append(out, f.format(ev))
	}
	return out
}

// ephemeral builds a joined room's typing and receipt events.
func (s *Service) ephemeral(f *Filter, roomID string, typingNow map[string][]string, receipts []storage.Receipt) []any {
	out := []any{}
	eph := &f.Room.Ephemeral
	if !eph.AllowsRoom(roomID) {
		return out
	}
	if users, ok := typingNow[roomID]; ok && eph.Allows("m.typing", "") {
		if users == nil {
			users = []string{}
		}
		out = append(out, map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
	}
	if len(receipts) > 0 && eph.Allows("m.receipt", "") {
		content := map[string]map[string]map[string]any{}
		for _, r := range receipts {
			byType := content[r.EventID]
			if byType == nil {
				byType = map[string]map[string]any{}
				content[r.EventID] = byType
			}
			users := byType[r.Type]
			if users == nil {
				users = map[string]any{}
				byType[r.Type] = users
			}
			receipt := map[string]any{"ts": r.TS}
			if r.ThreadID != "" {
				receipt["thread_id"] = r.ThreadID
			}
			users[r.UserID] = receipt
		}
		out = append(out, map[string]any{"type": "m.receipt", "content": content})
	}
	if eph.Limit != nil && len(out) > *eph.Limit {
		out = out[:*eph.Limit]
	}
	return out
}

// accountData returns the user's global account data and the room account
// data by room that changed after since (all of it for an initial sync),
// filtered. The push rules are global account data m.push_rules.
func (s *Service) accountData(ctx context.Context, req Request, since int64, initial bool) ([]any, map[string][]any, error) {
	f := req.Filter
	list, err := s.db.AccountDataSince(ctx, req.UserID, since)
	if err != nil {
		return nil, nil, err
	}
	global := []any{}
	perRoom := map[string][]any{}
	for _, a := range list {
		ev := map[string]any{"type": a.Type, "content": json.RawMessage(a.Content)}
		if a.RoomID == "" {
			if f.AccountData.Allows(a.Type, "") {
				global = append(global, ev)
			}
		} else if f.Room.AccountData.AllowsEvent(a.RoomID, a.Type, "", false) {
			perRoom[a.RoomID] = append(perRoom[a.RoomID], ev)
		}
	}
	if f.AccountData.Allows("m.push_rules", "") {
		pos, err := s.db.PushRulesPos(ctx, req.UserID)
		if err != nil {
			return nil, nil, err
		}
		if initial || pos > since {
			rules, err := s.push.Rules(ctx, req.UserID)
			if err != nil {
				return nil, nil, err
			}
			global = append(global, map[string]any{"type": "m.push_rules", "content": map[string]any{"global": rules}})
		}
	}
	if lim := f.AccountData.Limit; lim != nil && len(global) > *lim {
		global = global[:*lim]
	}
	return global, perRoom, nil
}

// errNoFilter is /sync's answer for a filter ID the user does not have.
var errNoFilter = mxerr.InvalidParam("No such filter")

// ResolveFilter returns the filter a /sync request names: inline JSON (a
// value starting with "{") or the ID of one of the user's stored filters.
// Stored filters never change, so they are kept in memory once read.
func (s *Service) ResolveFilter(ctx context.Context, userID, param string) (*Filter, error) {
	if param == "" {
		return &Filter{}, nil
	}
	if param[0] == '{' {
		return ParseFilter([]byte(param))
	}
	key := userID + "\x00" + param
	s.mu.Lock()
	f, ok := s.filters[key]
	s.mu.Unlock()
	if ok {
		return f, nil
	}
	raw, err := s.db.Filter(ctx, userID, param)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoFilter
	}
	if err != nil {
		return nil, err
	}
	if f, err = ParseFilter(raw); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.filters) >= maxCachedFilters {
		clear(s.filters)
	}
	s.filters[key] = f
	s.mu.Unlock()
	return f, nil
}

// maxCachedFilters bounds the filter cache.
const maxCachedFilters = 10000

// dedupeMembers applies lazy loading's include_redundant_members=false:
// member events this device was already sent are left out of the state.
// It returns the state to send and remembers the member events sent.
func (s *Service) dedupeMembers(req Request, roomID string, initial bool, r *roomserver.SyncRoom) []roomserver.ClientEvent {
	rs := req.Filter.Room.State
	if !rs.LazyLoadMembers || rs.IncludeRedundantMembers {
		return r.State
	}
	c := s.lazySent(req.UserID, req.DeviceID)
	c.mu.Lock()
	defer c.mu.Unlock()
	state := r.State[:0:0]
	for _, ev := range r.State {
		if ev.Type == "m.room.member" && ev.StateKey != nil && !initial && c.sent[roomID+"\x00"+*ev.StateKey] == ev.EventID {
			continue
		}
		state = append(state, ev)
	}
	for _, list := range [][]roomserver.ClientEvent{state, r.Timeline} {
		for _, ev := range list {
			if ev.Type == "m.room.member" && ev.StateKey != nil {
				if len(c.sent) >= maxLazySent {
					clear(c.sent) // sending some members again is harmless
				}
				c.sent[roomID+"\x00"+*ev.StateKey] = ev.EventID
			}
		}
	}
	return state
}

// maxLazySent bounds the member events remembered per device.
const maxLazySent = 50000

// lazyCache remembers which member event of each (room, user) a device
// was last sent. It lives in memory: after a restart members are sent
// again, which is harmless.
type lazyCache struct {
	mu   sync.Mutex
	sent map[string]string // room "\x00" user → event ID
}

// lazySent returns the device's cache.
func (s *Service) lazySent(userID, deviceID string) *lazyCache {
	key := userID + "\x00" + deviceID
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lazy[key]
	if c == nil {
		c = &lazyCache{sent: map[string]string{}}
		s.lazy[key] = c
	}
	return c
}
