package roomserver

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// RoomSummary describes a room to someone deciding whether to open or join
// it: the spec's RoomSummary, shared by GET /room_summary and the rooms of
// GET /hierarchy. Empty optional fields are left out.
type RoomSummary struct {
	RoomID           string   `json:"room_id"`
	Name             string   `json:"name,omitempty"`
	Topic            string   `json:"topic,omitempty"`
	AvatarURL        string   `json:"avatar_url,omitempty"`
	CanonicalAlias   string   `json:"canonical_alias,omitempty"`
	NumJoinedMembers int64    `json:"num_joined_members"`
	WorldReadable    bool     `json:"world_readable"`
	GuestCanJoin     bool     `json:"guest_can_join"`
	JoinRule         string   `json:"join_rule,omitempty"`
	RoomType         string   `json:"room_type,omitempty"`
	RoomVersion      string   `json:"room_version"`
	Encryption       string   `json:"encryption,omitempty"`
	AllowedRoomIDs   []string `json:"allowed_room_ids,omitempty"`
}

// SummaryResult is the answer of GET /room_summary: the room's summary and
// the requester's membership in it ("leave" when they have none).
type SummaryResult struct {
	RoomSummary
	Membership string `json:"membership"`
}

// Summary describes a room, given by ID or local alias, to a user who may
// see it: one who is joined or invited, or may join (a public room, or a
// restricted room whose allow rule they meet), or may knock, or any user
// when the room is world_readable — the rule the spec gives for the space
// hierarchy. Unknown rooms and rooms the user may not see are both
// 404 M_NOT_FOUND, so that room IDs cannot be probed.
func (s *Server) Summary(ctx context.Context, userID, roomIDOrAlias string) (SummaryResult, error) {
	roomID, err := s.ResolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return SummaryResult{}, err
	}
	pv := newPreviewer(s, userID)
	if err := pv.load(ctx, []string{roomID}); err != nil {
		return SummaryResult{}, err
	}
	p := pv.rooms[roomID]
	if p == nil || !pv.accessible(p) {
		return SummaryResult{}, mxerr.NotFound("Room not found or is not accessible")
	}
	sums, err := pv.summaries(ctx, []*roomPreview{p})
	if err != nil {
		return SummaryResult{}, err
	}
	membership := pv.member[roomID]
	if membership == "" {
		membership = spec.Leave
	}
	return SummaryResult{RoomSummary: sums[0], Membership: membership}, nil
}

// previewStateTypes are the state events a room's summary and its place in
// a space are read from.
var previewStateTypes = []string{
	spec.MRoomCreate, spec.MRoomJoinRules, spec.MRoomHistoryVisibility, spec.MRoomGuestAccess,
	spec.MRoomName, spec.MRoomTopic, spec.MRoomAvatar, spec.MRoomCanonicalAlias, spec.MRoomEncryption,
	spec.MSpaceChild,
}

// roomPreview is one room as its current state describes it.
type roomPreview struct {
	id       string
	summary  RoomSummary // without the member count
	allow    []string    // rooms whose members may join a restricted room
	children []spaceChild
}

// spaceChild is a valid m.space.child event of a room (one with a via).
type spaceChild struct {
	roomID    string
	order     string // "" when missing or invalid
	suggested bool
	stripped  StrippedChild
}

// StrippedChild is an m.space.child event in a hierarchy room's
// children_state: stripped state with the event's origin_server_ts.
type StrippedChild struct {
	Type           string          `json:"type"`
	StateKey       string          `json:"state_key"`
	Content        json.RawMessage `json:"content"`
	Sender         string          `json:"sender"`
	OriginServerTS int64           `json:"origin_server_ts"`
}

// isSpace reports whether the room is a space (room type m.space).
func (p *roomPreview) isSpace() bool { return p.summary.RoomType == spec.MSpace }

// previewer reads rooms for one user, keeping what it has read: the rooms
// and the user's membership in them and in the rooms their join rules
// name.
type previewer struct {
	s       *Server
	userID  string
	rooms   map[string]*roomPreview // nil value: the room is unknown
	member  map[string]string       // the user's membership, "" if none
	checked map[string]bool         // rooms whose membership has been read
}

func newPreviewer(s *Server, userID string) *previewer {
	return &previewer{s: s, userID: userID, rooms: map[string]*roomPreview{}, member: map[string]string{}, checked: map[string]bool{}}
}

// load reads the rooms among ids that have not been read yet, with their
// state, and the user's membership in them and in the rooms their join
// rules allow: three queries however many rooms there are.
func (pv *previewer) load(ctx context.Context, ids []string) error {
	var need []string
	for _, id := range ids {
		if _, done := pv.rooms[id]; !done {
			pv.rooms[id] = nil // unknown until read below
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	versions, err := pv.s.db.RoomVersions(ctx, need)
	if err != nil {
		return err
	}
	var known []string
	for _, id := range need {
		if v, ok := versions[id]; ok {
			pv.rooms[id] = &roomPreview{id: id, summary: RoomSummary{RoomID: id, RoomVersion: v}}
			known = append(known, id)
		}
	}
	evs, err := pv.s.db.CurrentStateOfTypes(ctx, known, previewStateTypes)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if p := pv.rooms[ev.RoomID]; p != nil {
			p.apply(ev)
		}
	}
	var members []string
	for _, id := range known {
		p := pv.rooms[id]
		slices.SortFunc(p.children, compareChildren)
		for _, r := range append([]string{id}, p.allow...) {
			if !pv.checked[r] {
				pv.checked[r] = true
				members = append(members, r)
			}
		}
	}
	got, err := pv.s.db.MembershipsIn(ctx, pv.userID, members)
	if err != nil {
		return err
	}
	for _, r := range members {
		pv.member[r] = got[r]
	}
	return nil
}

// apply reads one current state event into the preview.
func (p *roomPreview) apply(ev storage.Event) {
	var f pduFields
	if json.Unmarshal(ev.JSON, &f) != nil || ev.StateKey == nil {
		return
	}
	sum := &p.summary
	if ev.Type == spec.MSpaceChild {
		if c, ok := parseSpaceChild(ev, f); ok {
			p.children = append(p.children, c)
		}
		return
	}
	if *ev.StateKey != "" {
		return
	}
	var c struct {
		Type              any   `json:"type"`
		JoinRule          any   `json:"join_rule"`
		Allow             []any `json:"allow"`
		HistoryVisibility any   `json:"history_visibility"`
		GuestAccess       any   `json:"guest_access"`
		Name              any   `json:"name"`
		Topic             any   `json:"topic"`
		TopicBlock        any   `json:"m.topic"`
		URL               any   `json:"url"`
		Alias             any   `json:"alias"`
		Algorithm         any   `json:"algorithm"`
	}
	_ = json.Unmarshal(f.Content, &c) // wrong types leave fields nil
	str := func(v any) string { s, _ := v.(string); return s }
	switch ev.Type {
	case spec.MRoomCreate:
		sum.RoomType = str(c.Type)
	case spec.MRoomJoinRules:
		sum.JoinRule = str(c.JoinRule)
		if sum.JoinRule == spec.Restricted || sum.JoinRule == spec.KnockRestricted {
			p.allow = allowedRooms(c.Allow)
			sum.AllowedRoomIDs = p.allow
		}
	case spec.MRoomHistoryVisibility:
		sum.WorldReadable = str(c.HistoryVisibility) == visWorldReadable
	case spec.MRoomGuestAccess:
		sum.GuestCanJoin = str(c.GuestAccess) == "can_join"
	case spec.MRoomName:
		sum.Name = str(c.Name)
	case spec.MRoomTopic:
		sum.Topic = plainTopic(c.TopicBlock, str(c.Topic))
	case spec.MRoomAvatar:
		sum.AvatarURL = str(c.URL)
	case spec.MRoomCanonicalAlias:
		sum.CanonicalAlias = str(c.Alias)
	case spec.MRoomEncryption:
		sum.Encryption = str(c.Algorithm)
	}
}

// allowedRooms lists the room IDs of the m.room_membership conditions of
// a restricted join rule's allow list.
func allowedRooms(allow []any) []string {
	var ids []string
	for _, a := range allow {
		cond, _ := a.(map[string]any)
		id, _ := cond["room_id"].(string)
		if cond["type"] == spec.MRoomMembership && id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// plainTopic is the text/plain representation in an m.topic content block
// (spec v1.15), or else the topic field.
func plainTopic(block any, topic string) string {
	b, _ := block.(map[string]any)
	texts, _ := b["m.text"].([]any)
	for _, t := range texts {
		m, _ := t.(map[string]any)
		body, _ := m["body"].(string)
		mime, hasMime := m["mimetype"].(string)
		if body != "" && (!hasMime || mime == "text/plain") {
			return body
		}
	}
	return topic
}

// parseSpaceChild reads an m.space.child event. Children without a valid
// via (a non-empty list of strings) are not part of the space: that is how
// a child is removed, by emptying or redacting the event.
func parseSpaceChild(ev storage.Event, f pduFields) (spaceChild, bool) {
	var c struct {
		Via       []any `json:"via"`
		Order     any   `json:"order"`
		Suggested any   `json:"suggested"`
	}
	if json.Unmarshal(f.Content, &c) != nil || len(c.Via) == 0 {
		return spaceChild{}, false
	}
	for _, v := range c.Via {
		if _, ok := v.(string); !ok {
			return spaceChild{}, false
		}
	}
	order, _ := c.Order.(string)
	if !validOrder(order) {
		order = ""
	}
	suggested, _ := c.Suggested.(bool)
	return spaceChild{
		roomID:    *ev.StateKey,
		order:     order,
		suggested: suggested,
		stripped: StrippedChild{
			Type: ev.Type, StateKey: *ev.StateKey, Content: f.Content, Sender: ev.Sender, OriginServerTS: f.OriginServerTS,
		},
	}, true
}

// validOrder checks an m.space.child order: 1 to 50 characters from \x20
// to \x7E.
func validOrder(o string) bool {
	if o == "" || len(o) > 50 {
		return false
	}
	return !strings.ContainsFunc(o, func(r rune) bool { return r < 0x20 || r > 0x7E })
}

// compareChildren is the spec's order of a space's children: those with a
// valid order first, by order; then by the timestamp of the m.space.child
// event; then by room ID.
func compareChildren(a, b spaceChild) int {
	if (a.order == "") != (b.order == "") {
		if a.order != "" {
			return -1
		}
		return 1
	}
	return cmp.Or(
		strings.Compare(a.order, b.order),
		cmp.Compare(a.stripped.OriginServerTS, b.stripped.OriginServerTS),
		strings.Compare(a.roomID, b.roomID),
	)
}

// accessible reports whether the user may see the room in a summary or a
// space hierarchy (client-server API, GET /hierarchy): they are joined or
// invited; or the room is public, knockable (knock, knock_restricted) or
// world_readable; or it is restricted and the user is joined to one of the
// rooms its join rule allows. Every room version aula serves has knocking
// and restricted rooms.
func (pv *previewer) accessible(p *roomPreview) bool {
	switch p.summary.JoinRule {
	case spec.Public, spec.Knock, spec.KnockRestricted:
		return true
	}
	if p.summary.WorldReadable {
		return true
	}
	switch pv.member[p.id] {
	case spec.Join, spec.Invite:
		return true
	}
	if p.summary.JoinRule == spec.Restricted {
		for _, id := range p.allow {
			if pv.member[id] == spec.Join {
				return true
			}
		}
	}
	return false
}

// summaries completes the summaries of the rooms with their joined member
// counts, read in one query.
func (pv *previewer) summaries(ctx context.Context, rooms []*roomPreview) ([]RoomSummary, error) {
	ids := make([]string, len(rooms))
	for i, p := range rooms {
		ids[i] = p.id
	}
	counts, err := pv.s.db.JoinedMemberCounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]RoomSummary, len(rooms))
	for i, p := range rooms {
		out[i] = p.summary
		out[i].NumJoinedMembers = counts[p.id]
	}
	return out, nil
}
