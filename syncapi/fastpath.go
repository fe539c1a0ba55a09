package syncapi

import (
	"context"
	"errors"

	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// The fast path: a joined room's entry of an incremental sync computed from
// the notifier's memory of the room's latest events and receipts, without
// a query. It covers what wakes most parked requests (a few new messages,
// receipts, typing in a room the user has been in since their last sync)
// and declines everything else, which the room server then computes from
// the database:
//   - the recent list does not reach back to since;
//   - a new event is a state event (the state section would change), was
//     redacted since, or is bundled into another new event (an edit, a
//     thread reply or a reference to an event in the same batch);
//   - more new events than the timeline limit (a gappy sync).
//
// Member events that lazy loading must add are looked up once per room and
// user for all requests together (memberEvent), never per request.

// fastRoom returns the room's entry, or ok false when the fast path does not
// apply. The user must have been joined since before since.
func (s *Service) fastRoom(ctx context.Context, req Request, roomID string, since Token, upto int64, ignored map[string]bool,
	typingNow map[string][]string) (jr *JoinedRoom, ok bool, err error) {
	f := req.Filter
	evs, rcs, complete := s.notifier.recentAfter(roomID, since.Pos, upto)
	if !complete {
		return nil, false, nil
	}
	ids := make(map[string]bool, len(evs))
	for _, e := range evs {
		ids[e.ev.EventID] = true
	}
	for _, e := range evs {
		if e.redacted || e.ev.StateKey != nil || (e.relatesTo != "" && ids[e.relatesTo]) {
			return nil, false, nil
		}
	}

	// Newest first, up to the limit, as the room server walks.
	limit := f.Room.Timeline.EffectiveLimit(DefaultTimelineLimit, maxTimelineLimit)
	var picked []recentEvent
	i := len(evs) - 1
	for ; i >= 0 && len(picked) < limit; i-- {
		e := evs[i]
		if ignored[e.ev.Sender] {
			continue
		}
		ce := roomserver.ToClientEvent(e.ev, nil)
		if f.Room.Timeline.Matches(ce) {
			picked = append(picked, e)
		}
	}
	if i >= 0 {
		return nil, false, nil // older new events left out: a gappy sync
	}

	jr = &JoinedRoom{AccountData: EventList{Events: []any{}}}
	jr.Timeline = Timeline{Events: make([]any, 0, len(picked)), PrevBatch: since.String()}
	var senders []string
	seen := map[string]bool{}
	for k := len(picked) - 1; k >= 0; k-- {
		e := picked[k]
		ce := roomserver.ToClientEvent(e.ev, nil)
		ce.Unsigned["membership"] = "join"
		if e.txn.UserID == req.UserID && e.txn.DeviceID == req.DeviceID && req.DeviceID != "" {
			ce.Unsigned["transaction_id"] = e.txn.TxnID
		}
		jr.Timeline.Events = append(jr.Timeline.Events, f.format(ce))
		if !seen[e.ev.Sender] {
			seen[e.ev.Sender] = true
			senders = append(senders, e.ev.Sender)
		}
	}
	if len(picked) > 0 {
		jr.Timeline.PrevBatch = roomserver.PaginationToken(picked[len(picked)-1].ev.Depth - 1)
	}

	state := []any{}
	if rs := f.Room.State; rs.LazyLoadMembers && len(senders) > 0 {
		var c *lazyCache
		if !rs.IncludeRedundantMembers {
			c = s.lazySent(req.UserID, req.DeviceID)
		}
		for _, u := range senders {
			if c != nil {
				c.mu.Lock()
				_, known := c.sent[roomID+"\x00"+u]
				c.mu.Unlock()
				if known {
					continue
				}
			}
			ev, found, err := s.memberEvent(ctx, roomID, u)
			if err != nil {
				return nil, false, err
			}
			if !found {
				continue
			}
			ce := roomserver.ToClientEvent(ev, nil)
			if rs.Matches(ce) {
				state = append(state, f.format(ce))
			}
			if c != nil {
				c.mu.Lock()
				c.sent[roomID+"\x00"+u] = ev.EventID
				c.mu.Unlock()
			}
		}
	}
	jr.roomState.set(req.StateKey, state)

	var visible []storage.Receipt
	for _, rc := range rcs {
		if rc.Type == storage.ReceiptRead || rc.UserID == req.UserID {
			visible = append(visible, rc)
		}
	}
	jr.Ephemeral.Events = s.ephemeral(f, roomID, typingNow, visible)
	return jr, true, nil
}

// memberCall is one lookup of a member event that concurrent requests
// share.
type memberCall struct {
	done  chan struct{}
	ev    storage.Event
	found bool
	err   error
}

// memberEvent returns a user's current member event in a room from the
// notifier's memory, looking it up in the database once for all the
// requests that need it at the same time.
func (s *Service) memberEvent(ctx context.Context, roomID, userID string) (storage.Event, bool, error) {
	n := s.notifier
	n.mu.Lock()
	r := n.room(roomID)
	if r.members == nil {
		r.members = map[string]storage.Event{}
	}
	ev, ok := r.members[userID]
	n.mu.Unlock()
	if ok {
		return ev, true, nil
	}
	key := roomID + "\x00" + userID
	s.mu.Lock()
	call := s.inflight[key]
	if call != nil {
		s.mu.Unlock()
		select {
		case <-call.done:
			return call.ev, call.found, call.err
		case <-ctx.Done():
			return storage.Event{}, false, ctx.Err()
		}
	}
	call = &memberCall{done: make(chan struct{})}
	s.inflight[key] = call
	s.mu.Unlock()

	call.ev, call.err = s.db.StateEventAt(context.WithoutCancel(ctx), roomID, "m.room.member", userID, 0)
	if errors.Is(call.err, storage.ErrNotFound) {
		call.err = nil
	} else if call.err == nil {
		call.found = true
		n.mu.Lock()
		if _, set := r.members[userID]; !set { // a newer one from the change feed wins
			r.members[userID] = call.ev
		}
		n.mu.Unlock()
	}
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
	close(call.done)
	return call.ev, call.found, call.err
}

// ignoredUsers returns the user's ignored users, from the notifier's
// memory once loaded (the change feed drops it when the list changes).
func (s *Service) ignoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	n := s.notifier
	n.mu.Lock()
	u := n.user(userID)
	cached, gen := u.ignored, u.pos
	n.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	ignored, err := s.rooms.IgnoredUsers(ctx, userID)
	if err != nil {
		return nil, err
	}
	if ignored == nil {
		ignored = map[string]bool{}
	}
	n.mu.Lock()
	if u.pos == gen { // nothing of the user's changed while reading
		u.ignored = ignored
	}
	n.mu.Unlock()
	return ignored, nil
}
