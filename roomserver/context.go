package roomserver

import (
	"context"
	"errors"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// ContextRequest is GET /rooms/{roomId}/context/{eventId}.
type ContextRequest struct {
	UserID          string
	RoomID          string
	EventID         string
	Limit           int // events before and after, together
	Match           func(ev ClientEvent) bool
	LazyLoadMembers bool
}

// ContextResponse is the answer of /context.
type ContextResponse struct {
	Start        string        `json:"start"`
	End          string        `json:"end"`
	EventsBefore []ClientEvent `json:"events_before"`
	Event        ClientEvent   `json:"event"`
	EventsAfter  []ClientEvent `json:"events_after"`
	State        []ClientEvent `json:"state"`
}

// Context returns an event with the visible events around it and the room
// state at the end of that window. Events of users the user ignores are
// left out like invisible ones (state events excepted).
func (s *Server) Context(ctx context.Context, req ContextRequest) (*ContextResponse, error) {
	ev, err := s.db.Event(ctx, req.EventID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != req.RoomID) {
		return nil, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return nil, err
	}
	v, err := s.newViewer(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !v.canSee(ev) {
		return nil, mxerr.NotFound("Event not found")
	}
	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	if hiddenByIgnore(ignored, ev) {
		return nil, mxerr.NotFound("Event not found")
	}
	center, err := s.clientEvent(ctx, v, ev)
	if err != nil {
		return nil, err
	}
	before := req.Limit / 2
	after := req.Limit - before
	back, err := s.Messages(ctx, MessagesRequest{
		UserID: req.UserID, RoomID: req.RoomID, From: formatToken(ev.Depth - 1), Backward: true, Limit: max(before, 0), Match: req.Match,
	})
	if err != nil {
		return nil, err
	}
	fwd, err := s.Messages(ctx, MessagesRequest{
		UserID: req.UserID, RoomID: req.RoomID, From: formatToken(ev.Depth), Limit: max(after, 0), Match: req.Match,
	})
	if err != nil {
		return nil, err
	}
	resp := &ContextResponse{
		Start: formatToken(ev.Depth - 1), End: formatToken(ev.Depth),
		EventsBefore: []ClientEvent{}, Event: center, EventsAfter: []ClientEvent{}, State: []ClientEvent{},
	}
	if before > 0 {
		resp.EventsBefore, resp.Start = back.Chunk, back.Start
		if back.End != "" {
			resp.Start = back.End
		} else {
			resp.Start = formatToken(0)
		}
	}
	if after > 0 {
		resp.EventsAfter = fwd.Chunk
		if n := len(fwd.Chunk); n > 0 {
			last, _ := s.db.Event(ctx, fwd.Chunk[n-1].EventID)
			resp.End = formatToken(last.Depth)
		}
	}
	// The state at the end of the window.
	endDepth, _ := parseToken(resp.End)
	stateDepth, err := v.stateDepth(v.worldReadable())
	if err != nil {
		stateDepth = ev.Depth // a former member sees the state of what they can see
	}
	if stateDepth == 0 || endDepth < stateDepth {
		stateDepth = endDepth
	}
	state, err := s.db.StateAt(ctx, req.RoomID, stateDepth)
	if err != nil {
		return nil, err
	}
	senders := map[string]bool{center.Sender: true}
	for _, e := range append(resp.EventsBefore, resp.EventsAfter...) {
		senders[e.Sender] = true
	}
	for _, st := range state {
		if req.LazyLoadMembers && st.Type == "m.room.member" && st.StateKey != nil && !senders[*st.StateKey] {
			continue
		}
		ce, err := s.clientEvent(ctx, nil, st)
		if err != nil {
			return nil, err
		}
		if req.Match != nil && !req.Match(ce) && !(req.LazyLoadMembers && ce.Type == "m.room.member") {
			continue
		}
		resp.State = append(resp.State, ce)
	}
	return resp, nil
}

// TimestampToEvent finds the visible event closest to ts in the given
// direction.
func (s *Server) TimestampToEvent(ctx context.Context, userID, roomID string, ts int64, backwards bool) (ClientEvent, error) {
	if err := s.checkRoom(ctx, roomID); err != nil {
		return ClientEvent{}, err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	if err != nil {
		return ClientEvent{}, err
	}
	if len(v.membership) == 0 && !v.worldReadable() {
		return ClientEvent{}, mxerr.Forbidden("You are not a member of this room")
	}
	evs, err := s.db.EventsAroundTS(ctx, roomID, ts, backwards, maxScan)
	if err != nil {
		return ClientEvent{}, err
	}
	for _, ev := range evs {
		if v.canSee(ev) {
			return s.clientEvent(ctx, nil, ev)
		}
	}
	return ClientEvent{}, mxerr.NotFound("No event found %s %d", map[bool]string{true: "before", false: "after"}[backwards], ts)
}
