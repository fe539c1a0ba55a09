package roomserver

import (
	"context"
	"encoding/json"
	"errors"
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
// history of the room's visibility setting and of the user's membership
// (both as depth intervals, so no state is loaded per event).
type viewer struct {
	userID     string
	visibility []storage.StateInterval
	visValues  []string // visibility[i]'s history_visibility, defaulted
	membership []storage.StateInterval
	current    string // the user's membership now ("" if none)
	// ignored is the user's ignore list when the caller already has it
	// (ignoredKnown); addBundles reads it otherwise.
	ignored      map[string]bool
	ignoredKnown bool
}

// newViewer loads what the visibility rules need. A user who forgot the
// room is treated as never having been in it: the spec says forgetting
// ends their access to its history.
func (s *Server) newViewer(ctx context.Context, roomID, userID string) (*viewer, error) {
	vis, mem, err := s.db.VisibilityIntervals(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	v := &viewer{userID: userID, visibility: vis, membership: mem}
	for _, iv := range vis {
		v.visValues = append(v.visValues, historyVisibility(iv.Content))
	}
	if n := len(mem); n > 0 && mem[n-1].ToDepth == 0 {
		v.current = mem[n-1].Membership
	}
	if v.current != spec.Join && len(mem) > 0 {
		forgot, err := s.db.Forgotten(ctx, userID, roomID)
		if err != nil {
			return nil, err
		}
		if forgot {
			v.membership, v.current = nil, ""
		}
	}
	return v, nil
}

// historyVisibility reads the setting from an m.room.history_visibility
// event's JSON. Missing or unknown values are "shared", as the spec says.
func historyVisibility(eventJSON []byte) string {
	var pdu struct {
		Content struct {
			HistoryVisibility string `json:"history_visibility"`
		} `json:"content"`
	}
	_ = json.Unmarshal(eventJSON, &pdu)
	switch h := pdu.Content.HistoryVisibility; h {
	case visWorldReadable, visInvited, visJoined:
		return h
	}
	return visShared
}

// at returns the index of the interval in effect right after depth d, or -1.
func at(list []storage.StateInterval, d int64) int {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].FromDepth <= d {
			if list[i].ToDepth == 0 || list[i].ToDepth > d {
				return i
			}
			return -1
		}
	}
	return -1
}

// visAt is the history visibility right after depth d.
func (v *viewer) visAt(d int64) string {
	if i := at(v.visibility, d); i >= 0 {
		return v.visValues[i]
	}
	return visShared
}

// memAt is the user's membership right after depth d ("" if none).
func (v *viewer) memAt(d int64) string {
	if i := at(v.membership, d); i >= 0 {
		return v.membership[i].Membership
	}
	return ""
}

// joinedAfter reports whether the user joined the room at some point after
// depth d.
func (v *viewer) joinedAfter(d int64) bool {
	for i := len(v.membership) - 1; i >= 0 && v.membership[i].FromDepth > d; i-- {
		if v.membership[i].Membership == spec.Join {
			return true
		}
	}
	return false
}

// allowed applies the spec's history visibility rules (client-server API,
// "Room History Visibility", server behaviour) to a point of the room at
// depth d with the given visibility and membership there:
//
//  1. world_readable: allow;
//  2. the user was joined: allow;
//  3. shared, and the user joined at any point after: allow;
//  4. invited, and the user was invited: allow;
//  5. otherwise deny.
//
// Rule 3 keeps what a former member could see before leaving and nothing
// sent after they left (unless they come back).
func (v *viewer) allowed(vis, membership string, d int64) bool {
	switch {
	case vis == visWorldReadable, membership == spec.Join:
		return true
	case vis == visShared:
		return v.joinedAfter(d)
	case vis == visInvited:
		return membership == spec.Invite
	}
	return false
}

// canSee reports whether the user may see the event, judged by the state
// before it. For history visibility events, and for the user's own member
// events, the state after the event counts too: the spec lets users see
// the change if either side would allow it (so everyone sees their own
// joins and leaves).
func (v *viewer) canSee(ev storage.Event) bool {
	d := ev.Depth
	if v.allowed(v.visAt(d-1), v.memAt(d-1), d) {
		return true
	}
	isVis := ev.Type == spec.MRoomHistoryVisibility && ev.StateKey != nil && *ev.StateKey == ""
	isOwn := ev.Type == spec.MRoomMember && ev.StateKey != nil && *ev.StateKey == v.userID
	return (isVis || isOwn) && v.allowed(v.visAt(d), v.memAt(d), d)
}

// canSeeStateAt reports whether the user may see the room's state right
// after depth d (GET /members?at=).
func (v *viewer) canSeeStateAt(d int64) bool {
	return v.allowed(v.visAt(d), v.memAt(d), d)
}

// membershipAt is unsigned.membership of an event: the user's membership
// after it, "leave" when they had none.
func (v *viewer) membershipAt(ev storage.Event) string {
	if m := v.memAt(ev.Depth); m != "" {
		return m
	}
	return spec.Leave
}

// everJoined reports whether the user has been joined to the room at some
// point (and has not forgotten it).
func (v *viewer) everJoined() bool {
	for _, iv := range v.membership {
		if iv.Membership == spec.Join {
			return true
		}
	}
	return false
}

// mayRead reports whether the user may read the room's history at all: the
// spec requires them to have joined, unless the room is world_readable.
// What they then see is decided per event by canSee.
func (v *viewer) mayRead() bool {
	return v.everJoined() || v.worldReadable()
}

// maxVisibleDepth bounds the depth of the events the user can see: no event
// after it is visible. Pagination starts there instead of walking through
// history the user may not see.
func (v *viewer) maxVisibleDepth(latest int64) int64 {
	if v.current == spec.Join {
		return latest
	}
	var bound int64
	end := func(iv storage.StateInterval) int64 {
		if iv.ToDepth == 0 {
			return latest
		}
		return iv.ToDepth
	}
	for _, iv := range v.membership {
		if iv.Membership == spec.Join || iv.Membership == spec.Invite {
			bound = max(bound, end(iv))
		}
	}
	for i, iv := range v.visibility {
		if v.visValues[i] == visWorldReadable {
			bound = max(bound, end(iv))
		}
	}
	return min(bound, latest)
}

// lastJoinEnd returns the depth of the event that ended the user's last
// stay in the room (their leave, kick or ban), or 0.
func (v *viewer) lastJoinEnd() int64 {
	for i := len(v.membership) - 1; i >= 0; i-- {
		if iv := v.membership[i]; iv.Membership == spec.Join && iv.ToDepth != 0 {
			return iv.ToDepth
		}
	}
	return 0
}

// stateDepth returns the depth whose state the user may read (0: the
// current state): the present for members, the moment they left for former
// members (spec: "the state of the room when they left"), the present for
// others when the room is world_readable. Everyone else gets 403.
func (v *viewer) stateDepth(worldReadable bool) (int64, error) {
	if v.current == spec.Join {
		return 0, nil
	}
	if d := v.lastJoinEnd(); d > 0 {
		return d, nil
	}
	if worldReadable {
		return 0, nil
	}
	return -1, forbiddenNotMember()
}

func forbiddenNotMember() *mxerr.Error {
	return mxerr.Forbidden("You are not a member of this room")
}

// worldReadable reports whether the room's current history visibility is
// world_readable.
func (v *viewer) worldReadable() bool {
	n := len(v.visibility)
	return n > 0 && v.visibility[n-1].ToDepth == 0 && v.visValues[n-1] == visWorldReadable
}

// CheckRoom returns 404 M_NOT_FOUND for rooms this server does not have.
func (s *Server) CheckRoom(ctx context.Context, roomID string) error { return s.checkRoom(ctx, roomID) }

// checkRoom returns 404 for rooms this server does not have.
func (s *Server) checkRoom(ctx context.Context, roomID string) error {
	if _, err := s.db.Room(ctx, roomID); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Unknown room %s", roomID)
	} else if err != nil {
		return err
	}
	return nil
}

// view loads a room and the requesting user's viewer. An unknown room is
// 403, like a room the user is not in (as Synapse answers), so that room
// IDs cannot be probed.
func (s *Server) view(ctx context.Context, roomID, userID string) (storage.RoomInfo, *viewer, error) {
	info, err := s.db.Room(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return info, nil, forbiddenNotMember()
	}
	if err != nil {
		return info, nil, err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	return info, v, err
}

// Event returns one event if the user may see it; otherwise, and for
// unknown events, 404 M_NOT_FOUND (the spec's answer for both).
func (s *Server) Event(ctx context.Context, userID, roomID, eventID string) (ClientEvent, error) {
	return s.event(ctx, userID, roomID, eventID, true)
}

// event finds an event the user may see; hideIgnored also hides (as unknown)
// non-state events of users the reader ignores, as GET /event does.
func (s *Server) event(ctx context.Context, userID, roomID, eventID string, hideIgnored bool) (ClientEvent, error) {
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
	if hideIgnored {
		ignored, err := s.ignoredUsers(ctx, userID)
		if err != nil {
			return ClientEvent{}, err
		}
		if hiddenByIgnore(ignored, ev) {
			return ClientEvent{}, mxerr.NotFound("Event not found")
		}
	}
	ce, err := s.clientEvent(ctx, v, ev)
	if err != nil {
		return ClientEvent{}, err
	}
	ce.Unsigned["membership"] = v.membershipAt(ev)
	return ce, nil
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
	return s.clientEvents(ctx, nil, evs)
}

// StateEvent returns one state event the user may read; 404 M_NOT_FOUND
// when the room has no such state (at the point the user may read).
func (s *Server) StateEvent(ctx context.Context, userID, roomID, typ, stateKey string) (ClientEvent, error) {
	depth, err := s.readableStateDepth(ctx, userID, roomID)
	if err != nil {
		return ClientEvent{}, err
	}
	ev, err := s.db.StateEventAt(ctx, roomID, typ, stateKey, depth)
	if errors.Is(err, storage.ErrNotFound) {
		return ClientEvent{}, mxerr.NotFound("The room has no state %s with key %q", typ, stateKey)
	}
	if err != nil {
		return ClientEvent{}, err
	}
	return s.clientEvent(ctx, nil, ev)
}

// readableStateDepth is viewer.stateDepth for the user; 403 for unknown
// rooms.
func (s *Server) readableStateDepth(ctx context.Context, userID, roomID string) (int64, error) {
	_, v, err := s.view(ctx, roomID, userID)
	if err != nil {
		return 0, err
	}
	return v.stateDepth(v.worldReadable())
}

// Members returns the room's member events the user may see (current for
// members, as of leaving for former members, or as of the at token when
// the user could see the room then), keeping those whose membership is
// membership (if set) and is not notMembership (if set), as Synapse does.
func (s *Server) Members(ctx context.Context, userID, roomID, atToken, membership, notMembership string) ([]ClientEvent, error) {
	info, v, err := s.view(ctx, roomID, userID)
	if err != nil {
		return nil, err
	}
	depth, err := v.stateDepth(v.worldReadable())
	if err != nil {
		return nil, err
	}
	if atToken != "" {
		d, err := s.resolveToken(ctx, roomID, atToken)
		if err != nil {
			return nil, err
		}
		d = min(d, info.LatestDepth)
		if d <= 0 {
			return []ClientEvent{}, nil // before the room began
		}
		if !v.canSeeStateAt(d) {
			return nil, mxerr.Forbidden("You may not see the room's members at that point")
		}
		depth = d
	}
	evs, err := s.db.RoomMembers(ctx, roomID, depth)
	if err != nil {
		return nil, err
	}
	kept := []storage.Event{}
	for _, ev := range evs {
		m := membershipOf(ev)
		if (membership != "" && m != membership) || (notMembership != "" && m == notMembership) {
			continue
		}
		kept = append(kept, ev)
	}
	return s.clientEvents(ctx, nil, kept)
}

// JoinedMember is one entry of GET /joined_members.
type JoinedMember struct {
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// JoinedMembers returns the joined members with their room profiles; only
// current members may ask (403 otherwise, unknown rooms included).
func (s *Server) JoinedMembers(ctx context.Context, userID, roomID string) (map[string]JoinedMember, error) {
	own, err := s.db.StateEventAt(ctx, roomID, spec.MRoomMember, userID, 0)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && membershipOf(own) != spec.Join) {
		return nil, forbiddenNotMember()
	}
	if err != nil {
		return nil, err
	}
	evs, err := s.db.RoomMembers(ctx, roomID, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]JoinedMember{}
	for _, ev := range evs {
		var pdu struct {
			Content struct {
				Membership  string `json:"membership"`
				DisplayName any    `json:"displayname"`
				AvatarURL   any    `json:"avatar_url"`
			} `json:"content"`
		}
		if json.Unmarshal(ev.JSON, &pdu) != nil || pdu.Content.Membership != spec.Join || ev.StateKey == nil {
			continue
		}
		m := JoinedMember{}
		m.DisplayName, _ = pdu.Content.DisplayName.(string)
		m.AvatarURL, _ = pdu.Content.AvatarURL.(string)
		out[*ev.StateKey] = m
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
// the event at that depth (t0 is before the room's first event). /messages
// and /members also take "s" + a global stream position, the form /sync's
// prev_batch takes: the point right after the room's last event at or
// before that position.
func parseToken(tok string) (int64, error) {
	d, err := strconv.ParseInt(strings.TrimPrefix(tok, "t"), 10, 64)
	if !strings.HasPrefix(tok, "t") || err != nil || d < 0 {
		return 0, mxerr.InvalidParam("Invalid pagination token %q", tok)
	}
	return d, nil
}

func formatToken(depth int64) string { return "t" + strconv.FormatInt(depth, 10) }

// PaginationToken is the /messages token of the point right after the
// event at depth (for timelines built outside the room server).
func PaginationToken(depth int64) string { return formatToken(depth) }

// resolveToken turns a pagination or sync token into a depth of the room.
func (s *Server) resolveToken(ctx context.Context, roomID, tok string) (int64, error) {
	if rest, ok := strings.CutPrefix(tok, "s"); ok {
		// A /sync token (syncapi's Token) starts with its stream position;
		// what follows the first "_" is for /sync alone.
		rest, _, _ = strings.Cut(rest, "_")
		pos, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || pos < 0 {
			return 0, mxerr.InvalidParam("Invalid pagination token %q", tok)
		}
		return s.db.DepthAtStream(ctx, roomID, pos)
	}
	return parseToken(tok)
}
