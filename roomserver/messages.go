package roomserver

import (
	"context"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/storage"
)

// MessagesRequest is GET /rooms/{roomId}/messages.
type MessagesRequest struct {
	UserID   string
	RoomID   string
	From     string // pagination token; empty: the end for dir=b, the start for dir=f
	To       string // optional token to stop at
	Backward bool
	Limit    int // 0 returns no events
	// Match, if not nil, keeps only events it accepts (the request's filter).
	Match func(ev ClientEvent) bool
	// LazyLoadMembers adds the member events of the chunk's senders to State.
	LazyLoadMembers bool
}

// MessagesResponse is the answer of /messages.
type MessagesResponse struct {
	Chunk []ClientEvent `json:"chunk"`
	Start string        `json:"start"`
	End   string        `json:"end,omitempty"`
	State []ClientEvent `json:"state,omitempty"`
}

// maxScan bounds the events one /messages request examines, so a filter
// that matches nothing cannot make it walk the whole room.
const maxScan = 1000

// Messages pages through a room's history, showing only what the user may
// see, without the non-state events of users they ignore. Tokens are positions between events (see parseToken): dir=b returns
// the events at or before from, newest first; dir=f those after from,
// oldest first; to bounds the walk the same way. end is the position after
// the last event examined, omitted when no events are left in that
// direction (the start or the end of the room, to, or the last event the
// user may see).
func (s *Server) Messages(ctx context.Context, req MessagesRequest) (*MessagesResponse, error) {
	info, v, err := s.view(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !v.mayRead() {
		return nil, forbiddenNotMember()
	}
	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	// The walk covers the depths (lo, hi].
	lo, hi := int64(0), v.maxVisibleDepth(info.LatestDepth)
	var from int64
	switch {
	case req.From != "":
		if from, err = s.resolveToken(ctx, req.RoomID, req.From); err != nil {
			return nil, err
		}
	case req.Backward:
		from = hi
	}
	if req.To != "" {
		to, err := s.resolveToken(ctx, req.RoomID, req.To)
		if err != nil {
			return nil, err
		}
		if req.Backward {
			lo = to
		} else {
			hi = min(hi, to)
		}
	}
	if req.Backward {
		hi = min(hi, from)
	} else {
		lo = from
	}
	resp := &MessagesResponse{Chunk: []ClientEvent{}, Start: req.From}
	if resp.Start == "" {
		resp.Start = formatToken(from)
	}

	pos := hi // the next event is at pos (backwards) or pos+1 (forwards)
	if !req.Backward {
		pos = lo
	}
	var picked []storage.Event
	exhausted, scanned := false, 0
	for {
		if (req.Backward && pos <= lo) || (!req.Backward && pos >= hi) {
			exhausted = true
			break
		}
		if len(picked) >= req.Limit || scanned >= maxScan {
			break
		}
		n := min(max(req.Limit-len(picked), 50), maxScan-scanned)
		var batch []storage.Event
		if req.Backward {
			batch, err = s.db.RoomEvents(ctx, req.RoomID, lo, pos+1, true, n)
		} else {
			batch, err = s.db.RoomEvents(ctx, req.RoomID, pos, hi+1, false, n)
		}
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 { // nothing left in the range
			exhausted = true
			break
		}
		// Advance event by event, so that end is right after the last
		// event looked at when the page fills up mid-batch. The filter
		// sees the event as served (stored redacted, so content is final).
		for _, ev := range batch {
			if len(picked) >= req.Limit {
				break
			}
			scanned++
			if req.Backward {
				pos = ev.Depth - 1
			} else {
				pos = ev.Depth
			}
			if v.canSee(ev) && !hiddenByIgnore(ignored, ev) && (req.Match == nil || req.Match(ToClientEvent(ev, nil))) {
				picked = append(picked, ev)
			}
		}
	}
	if resp.Chunk, err = s.clientEvents(ctx, v, picked); err != nil {
		return nil, err
	}
	for i := range resp.Chunk {
		resp.Chunk[i].Unsigned["membership"] = v.membershipAt(picked[i])
	}
	if !exhausted {
		resp.End = formatToken(pos)
	}
	if req.LazyLoadMembers && len(picked) > 0 {
		if resp.State, err = s.lazyMembers(ctx, req.RoomID, picked); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// lazyMembers returns the member events of the chunk's senders as they
// were at the chunk's first event (as Synapse does).
func (s *Server) lazyMembers(ctx context.Context, roomID string, chunk []storage.Event) ([]ClientEvent, error) {
	seen := map[string]bool{}
	var senders []string
	for _, ev := range chunk {
		if !seen[ev.Sender] {
			seen[ev.Sender] = true
			senders = append(senders, ev.Sender)
		}
	}
	evs, err := s.db.StateEventsAt(ctx, roomID, spec.MRoomMember, senders, chunk[0].Depth)
	if err != nil {
		return nil, err
	}
	return s.clientEvents(ctx, nil, evs)
}

// hiddenByIgnore reports whether an event is hidden from a user because
// they ignore its sender (their m.ignored_user_list): every event but state
// events, which the spec says are still sent so that the room looks the
// same to everyone.
func hiddenByIgnore(ignored map[string]bool, ev storage.Event) bool {
	return ev.StateKey == nil && ignored[ev.Sender]
}
