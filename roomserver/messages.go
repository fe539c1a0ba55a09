package roomserver

import (
	"context"
	"errors"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// MessagesRequest is GET /rooms/{roomId}/messages.
type MessagesRequest struct {
	UserID   string
	RoomID   string
	From     string // pagination token; empty: the end for dir=b, the start for dir=f
	To       string // optional token to stop at
	Backward bool
	Limit    int
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
// see.
func (s *Server) Messages(ctx context.Context, req MessagesRequest) (*MessagesResponse, error) {
	info, err := s.db.Room(ctx, req.RoomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Unknown room %s", req.RoomID)
	}
	if err != nil {
		return nil, err
	}
	v, err := s.newViewer(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	if v.current == "" && len(v.membership) == 0 && !v.worldReadable() {
		return nil, mxerr.Forbidden("You are not a member of this room")
	}
	from := info.LatestDepth
	if !req.Backward {
		from = 0
	}
	if req.From != "" {
		if from, err = parseToken(req.From); err != nil {
			return nil, err
		}
	}
	var to int64 = -1
	if req.To != "" {
		if to, err = parseToken(req.To); err != nil {
			return nil, err
		}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 10
	}
	resp := &MessagesResponse{Chunk: []ClientEvent{}, Start: formatToken(from)}
	pos, scanned := from, 0
	for len(resp.Chunk) < limit && scanned < maxScan {
		var batch []storage.Event
		if req.Backward {
			if pos <= 0 || (to >= 0 && pos <= to) {
				break
			}
			lower := int64(0)
			if to >= 0 {
				lower = to
			}
			batch, err = s.db.RoomEvents(ctx, req.RoomID, lower, pos+1, true, limit)
		} else {
			if to >= 0 && pos >= to {
				break
			}
			upper := int64(0)
			if to >= 0 {
				upper = to + 1
			}
			batch, err = s.db.RoomEvents(ctx, req.RoomID, pos, upper, false, limit)
		}
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			pos = -1
			break
		}
		for _, ev := range batch {
			scanned++
			if req.Backward {
				pos = ev.Depth - 1
			} else {
				pos = ev.Depth
			}
			if !v.canSee(ev) {
				continue
			}
			ce, err := s.clientEvent(ctx, ev)
			if err != nil {
				return nil, err
			}
			if req.Match != nil && !req.Match(ce) {
				continue
			}
			resp.Chunk = append(resp.Chunk, ce)
			if len(resp.Chunk) == limit {
				break
			}
		}
	}
	if pos >= 0 && !(req.Backward && pos == 0) && !(!req.Backward && pos >= info.LatestDepth && to < 0) {
		resp.End = formatToken(pos)
	}
	if req.LazyLoadMembers {
		if resp.State, err = s.lazyMembers(ctx, req.RoomID, resp.Chunk); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// lazyMembers returns the current member events of the chunk's senders.
func (s *Server) lazyMembers(ctx context.Context, roomID string, chunk []ClientEvent) ([]ClientEvent, error) {
	seen := map[string]bool{}
	var out []ClientEvent
	for _, ce := range chunk {
		if seen[ce.Sender] || (ce.Type == "m.room.member" && ce.StateKey != nil && *ce.StateKey == ce.Sender) {
			seen[ce.Sender] = true
			continue
		}
		seen[ce.Sender] = true
		ev, err := s.db.StateEventAt(ctx, roomID, "m.room.member", ce.Sender, 0)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m, err := s.clientEvent(ctx, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
