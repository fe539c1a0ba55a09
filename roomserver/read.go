package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// History visibility settings.
const (
	visWorldReadable = "world_readable"
	visShared        = "shared"
	visInvited       = "invited"
	visJoined        = "joined"
)

// viewer decides which events of one room one user may see, from the
// history of the room's visibility setting and of the user's membership.
type viewer struct {
	userID     string
	visibility []storage.StateInterval
	membership []storage.StateInterval
	current    string // the user's membership now
}

func (s *Server) newViewer(ctx context.Context, roomID, userID string) (*viewer, error) {
	vis, err := s.db.StateIntervals(ctx, roomID, spec.MRoomHistoryVisibility, "")
	if err != nil {
		return nil, err
	}
	mem, err := s.db.StateIntervals(ctx, roomID, spec.MRoomMember, userID)
	if err != nil {
		return nil, err
	}
	v := &viewer{userID: userID, visibility: vis, membership: mem}
	if n := len(mem); n > 0 && mem[n-1].ToDepth == 0 {
		v.current = mem[n-1].Membership
	}
	return v, nil
}

// at returns the interval in effect right after depth d, or nil.
func at(list []storage.StateInterval, d int64) *storage.StateInterval {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].FromDepth <= d {
			if list[i].ToDepth == 0 || list[i].ToDepth > d {
				return &list[i]
			}
			return nil
		}
	}
	return nil
}

// canSee applies the spec's history visibility rules to one event, using
// the state before it; the user's own membership event counts as the
// membership it sets, so users see their own joins and leaves.
func (v *viewer) canSee(ev storage.Event) bool {
	visibility := visShared
	if iv := at(v.visibility, ev.Depth-1); iv != nil {
		var c struct {
			HistoryVisibility string `json:"history_visibility"`
		}
		var pdu struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(iv.Content, &pdu) == nil && json.Unmarshal(pdu.Content, &c) == nil && c.HistoryVisibility != "" {
			visibility = c.HistoryVisibility
		}
	}
	membership := ""
	if ev.Type == spec.MRoomMember && ev.StateKey != nil && *ev.StateKey == v.userID {
		if iv := at(v.membership, ev.Depth); iv != nil {
			membership = iv.Membership
		}
	} else if iv := at(v.membership, ev.Depth-1); iv != nil {
		membership = iv.Membership
	}
	switch visibility {
	case visWorldReadable:
		return true
	case visInvited:
		return membership == spec.Join || membership == spec.Invite
	case visJoined:
		return membership == spec.Join
	default: // shared, and unknown values as the spec's default
		return membership == spec.Join || v.current == spec.Join
	}
}

// stateDepth returns the depth whose state the user may read: the present
// for members, the moment they left for former members. Others get 403.
func (v *viewer) stateDepth(worldReadable bool) (int64, error) {
	if v.current == spec.Join || worldReadable {
		return 0, nil
	}
	if n := len(v.membership); n > 0 && v.membership[n-1].ToDepth == 0 &&
		(v.current == spec.Leave || v.current == spec.Ban) {
		// The state as of their departure, up to and including it.
		if d := v.membership[n-1].FromDepth; n >= 2 && v.membership[n-2].Membership == spec.Join {
			return d, nil
		}
	}
	return -1, mxerr.Forbidden("You are not a member of this room")
}

// worldReadable reports whether the room's current history visibility is
// world_readable.
func (v *viewer) worldReadable() bool {
	if n := len(v.visibility); n > 0 && v.visibility[n-1].ToDepth == 0 {
		return strings.Contains(string(v.visibility[n-1].Content), `"`+visWorldReadable+`"`)
	}
	return false
}

// clientEvents formats stored events for a client, attaching redactions.
func (s *Server) clientEvents(ctx context.Context, evs []storage.Event) ([]ClientEvent, error) {
	out := make([]ClientEvent, 0, len(evs))
	for _, ev := range evs {
		ce, err := s.clientEvent(ctx, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, ce)
	}
	return out, nil
}

func (s *Server) clientEvent(ctx context.Context, ev storage.Event) (ClientEvent, error) {
	if ev.RedactedBy == "" {
		return ToClientEvent(ev, nil), nil
	}
	red, err := s.db.Event(ctx, ev.RedactedBy)
	if err != nil {
		return ClientEvent{}, fmt.Errorf("roomserver: redaction of %s: %w", ev.EventID, err)
	}
	rce := ToClientEvent(red, nil)
	return ToClientEvent(ev, &rce), nil
}

// checkRoom returns 404 for rooms this server does not have.
func (s *Server) checkRoom(ctx context.Context, roomID string) error {
	if _, err := s.db.Room(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Unknown room %s", roomID)
	} else if err != nil {
		return err
	}
	return nil
}

// Event returns one event if the user may see it; otherwise, and for
// unknown events, 404 M_NOT_FOUND.
func (s *Server) Event(ctx context.Context, userID, roomID, eventID string) (ClientEvent, error) {
	ev, err := s.db.Event(ctx, eventID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != roomID) {
		return ClientEvent{}, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return ClientEvent{}, err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	if err != nil {
		return ClientEvent{}, err
	}
	if !v.canSee(ev) {
		return ClientEvent{}, mxerr.NotFound("Event not found")
	}
	return s.clientEvent(ctx, ev)
}

// State returns the room state the user may read: current for members,
// as of leaving for former members.
func (s *Server) State(ctx context.Context, userID, roomID string) ([]ClientEvent, error) {
	depth, err := s.readableStateDepth(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	var evs []storage.Event
	if depth == 0 {
		evs, err = s.db.CurrentState(ctx, roomID)
	} else {
		evs, err = s.db.StateAt(ctx, roomID, depth)
	}
	if err != nil {
		return nil, err
	}
	return s.clientEvents(ctx, evs)
}

// StateEvent returns the content of one state event the user may read.
func (s *Server) StateEvent(ctx context.Context, userID, roomID, typ, stateKey string) (ClientEvent, error) {
	depth, err := s.readableStateDepth(ctx, userID, roomID)
	if err != nil {
		return ClientEvent{}, err
	}
	ev, err := s.db.StateEventAt(ctx, roomID, typ, stateKey, depth)
	if errors.Is(err, storage.ErrNotFound) {
		return ClientEvent{}, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return ClientEvent{}, err
	}
	return s.clientEvent(ctx, ev)
}

func (s *Server) readableStateDepth(ctx context.Context, userID, roomID string) (int64, error) {
	if err := s.checkRoom(ctx, roomID); err != nil {
		return 0, err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	if err != nil {
		return 0, err
	}
	return v.stateDepth(v.worldReadable())
}

// Members returns the room's member events the user may see (current for
// members, as of leaving for former members), filtered by membership.
func (s *Server) Members(ctx context.Context, userID, roomID, atToken, membership, notMembership string) ([]ClientEvent, error) {
	depth, err := s.readableStateDepth(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	if atToken != "" {
		d, err := parseToken(atToken)
		if err != nil {
			return nil, err
		}
		if depth == 0 || d < depth {
			depth = d
		}
	}
	evs, err := s.db.RoomMembers(ctx, roomID, depth)
	if err != nil {
		return nil, err
	}
	var kept []storage.Event
	for _, ev := range evs {
		m := membershipOf(ev)
		if (membership != "" && m != membership) || (notMembership != "" && m == notMembership) {
			continue
		}
		kept = append(kept, ev)
	}
	return s.clientEvents(ctx, kept)
}

// JoinedMember is one entry of GET /joined_members.
type JoinedMember struct {
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// JoinedMembers returns the joined members with their room profiles; only
// members may ask.
func (s *Server) JoinedMembers(ctx context.Context, userID, roomID string) (map[string]JoinedMember, error) {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	if r.membership(userID) != spec.Join {
		return nil, mxerr.Forbidden("You are not a member of this room")
	}
	out := map[string]JoinedMember{}
	for t, ev := range r.state {
		if t.EventType != spec.MRoomMember {
			continue
		}
		var c struct {
			Membership  string `json:"membership"`
			DisplayName string `json:"displayname"`
			AvatarURL   string `json:"avatar_url"`
		}
		if json.Unmarshal(ev.Content(), &c) == nil && c.Membership == spec.Join {
			out[t.StateKey] = JoinedMember{DisplayName: c.DisplayName, AvatarURL: c.AvatarURL}
		}
	}
	return out, nil
}

// JoinedRooms lists the rooms the user is joined to.
func (s *Server) JoinedRooms(ctx context.Context, userID string) ([]string, error) {
	ms, err := s.db.MembershipsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	rooms := []string{}
	for _, m := range ms {
		if m.Membership == spec.Join {
			rooms = append(rooms, m.RoomID)
		}
	}
	return rooms, nil
}

func membershipOf(ev storage.Event) string {
	var pdu struct {
		Content struct {
			Membership string `json:"membership"`
		} `json:"content"`
	}
	_ = json.Unmarshal(ev.JSON, &pdu)
	return pdu.Content.Membership
}

// Pagination tokens of /messages are "t" + a depth: the point right after
// the event at that depth.
func parseToken(tok string) (int64, error) {
	d, err := strconv.ParseInt(strings.TrimPrefix(tok, "t"), 10, 64)
	if !strings.HasPrefix(tok, "t") || err != nil || d < 0 {
		return 0, mxerr.InvalidParam("Invalid pagination token %q", tok)
	}
	return d, nil
}

func formatToken(depth int64) string { return "t" + strconv.FormatInt(depth, 10) }
