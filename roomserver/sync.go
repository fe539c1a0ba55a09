package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/storage"
)

// SyncRoomRequest asks for one room's part of a /sync response. Positions
// are of the global stream; the room server turns them into depths of the
// room (its history is a single chain: every event follows the one before).
type SyncRoomRequest struct {
	UserID   string
	DeviceID string
	RoomID   string
	Since    int64 // what the client has seen; 0: nothing
	Upto     int64 // sync up to here: now, or the user's leave for a room they left
	// FullState asks for the whole state rather than the changes since Since.
	FullState bool
	// StateAfter (MSC4222) asks for the state at the end of the timeline,
	// including changes the timeline shows, rather than at its start.
	StateAfter bool
	Limit      int                    // timeline events at most
	Match      func(ClientEvent) bool // the timeline filter; nil keeps all
	// LazyMembers sends only the member events the timeline needs (its
	// senders, and on full-state syncs the user), plus the heroes' when
	// a summary names them.
	LazyMembers bool
	// Summary asks for the room summary (heroes and member counts) when it
	// may have changed: on full-state syncs and when members changed.
	Summary bool
	Ignored map[string]bool // users whose non-state events are hidden
}

// SyncRoom is one room's part of a /sync response.
type SyncRoom struct {
	Timeline  []ClientEvent
	Limited   bool
	PrevBatch string
	// State is the state before the timeline (changes since Since unless
	// FullState), or after it with StateAfter.
	State   []ClientEvent
	Summary *SyncSummary
}

// SyncSummary is the summary of a room in /sync. Heroes are named only
// for rooms without a name or canonical alias, as Synapse does.
type SyncSummary struct {
	Heroes  []string `json:"m.heroes,omitempty"`
	Joined  int      `json:"m.joined_member_count"`
	Invited int      `json:"m.invited_member_count"`
}

// maxHeroes is how many heroes a summary names (the spec's number).
const maxHeroes = 5

// SyncRoom computes a room's timeline and state for a /sync response. The
// timeline holds the newest events after Since up to Upto that the user
// may see and the filter keeps, oldest first; it is limited when older
// events in that range were left out. PrevBatch is a /messages token
// right before the timeline.
func (s *Server) SyncRoom(ctx context.Context, req SyncRoomRequest) (*SyncRoom, error) {
	v, err := s.newViewer(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	v.ignored, v.ignoredKnown = req.Ignored, true
	hi, err := s.db.DepthAtStream(ctx, req.RoomID, req.Upto)
	if err != nil {
		return nil, err
	}
	var lo int64
	if req.Since > 0 {
		if lo, err = s.db.DepthAtStream(ctx, req.RoomID, req.Since); err != nil {
			return nil, err
		}
	}
	lo = min(lo, hi)

	// Walk back from the end, as /messages does, until the page is full.
	pos := hi
	var picked []storage.Event
	for scanned := 0; pos > lo && len(picked) < req.Limit && scanned < maxScan; {
		n := min(max(req.Limit-len(picked), 20), maxScan-scanned)
		batch, err := s.db.RoomEvents(ctx, req.RoomID, lo, pos+1, true, n)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			pos = lo
			break
		}
		for _, ev := range batch {
			if len(picked) >= req.Limit {
				break
			}
			scanned++
			pos = ev.Depth - 1
			if v.canSee(ev) && !hiddenByIgnore(req.Ignored, ev) && (req.Match == nil || req.Match(ToClientEvent(ev, nil))) {
				picked = append(picked, ev)
			}
		}
	}
	slices.Reverse(picked)
	out := &SyncRoom{Limited: pos > lo, PrevBatch: formatToken(pos)}
	if out.Timeline, err = s.clientEvents(ctx, v, picked); err != nil {
		return nil, err
	}
	if err := s.addTxnIDs(ctx, req, picked, out.Timeline); err != nil {
		return nil, err
	}
	for i := range out.Timeline {
		out.Timeline[i].Unsigned["membership"] = v.membershipAt(picked[i])
	}

	state, at, err := s.syncState(ctx, req, picked, lo, hi, out.Limited)
	if err != nil {
		return nil, err
	}
	// The summary changes only with membership: Synapse sends it on
	// full-state syncs and when members joined or left in between.
	full := req.FullState || req.Since == 0
	if req.Summary && (full || hasMember(picked) || (out.Limited && hasMember(state))) {
		// A full state at the end of the timeline holds the room's name
		// and alias as they are now; otherwise they are read.
		complete := full && at == hi
		if out.Summary, err = s.syncSummary(ctx, req, at, complete, picked, state, &state); err != nil {
			return nil, err
		}
	}
	if out.State, err = s.clientEvents(ctx, nil, state); err != nil {
		return nil, err
	}
	for i := range out.State {
		out.State[i].Unsigned["membership"] = v.membershipAt(state[i])
	}
	return out, nil
}

func hasMember(evs []storage.Event) bool {
	return slices.ContainsFunc(evs, func(ev storage.Event) bool { return ev.Type == spec.MRoomMember })
}

// syncSummary computes the room summary. With lazy loading, the heroes'
// member events (at depth at) are added to *state unless the timeline or
// state already has them, so that clients can name the room.
func (s *Server) syncSummary(ctx context.Context, req SyncRoomRequest, at int64, stateComplete bool, timeline, state []storage.Event, out *[]storage.Event) (*SyncSummary, error) {
	ms, err := s.db.RoomMemberSummary(ctx, req.RoomID, req.UserID, maxHeroes)
	if err != nil {
		return nil, err
	}
	summary := &SyncSummary{Joined: ms.Joined, Invited: ms.Invited}
	var named bool
	if stateComplete {
		named = namedIn(state)
	} else {
		named, err = s.named(ctx, req.RoomID)
	}
	if err != nil || named {
		return summary, err
	}
	summary.Heroes = ms.First
	if summary.Heroes == nil {
		summary.Heroes = []string{}
	}
	if !req.LazyMembers || at <= 0 {
		return summary, nil
	}
	have := map[string]bool{}
	for _, list := range [][]storage.Event{timeline, state} {
		for _, ev := range list {
			if ev.Type == spec.MRoomMember && ev.StateKey != nil {
				have[*ev.StateKey] = true
			}
		}
	}
	var missing []string
	for _, h := range ms.First {
		if !have[h] {
			missing = append(missing, h)
		}
	}
	more, err := s.db.StateEventsAt(ctx, req.RoomID, spec.MRoomMember, missing, at)
	if err != nil {
		return nil, err
	}
	*out = append(*out, more...)
	return summary, nil
}

// namedIn reports whether state (a room's whole state) has a non-empty
// name or canonical alias.
func namedIn(state []storage.Event) bool {
	for _, ev := range state {
		if ev.StateKey == nil || *ev.StateKey != "" {
			continue
		}
		field := map[string]string{spec.MRoomName: "name", "m.room.canonical_alias": "alias"}[ev.Type]
		if field == "" {
			continue
		}
		var c map[string]any
		_ = json.Unmarshal(ToClientEvent(ev, nil).Content, &c)
		if v, _ := c[field].(string); v != "" {
			return true
		}
	}
	return false
}

// named reports whether the room has a non-empty name or canonical alias.
func (s *Server) named(ctx context.Context, roomID string) (bool, error) {
	var evs []storage.Event
	for _, typ := range []string{spec.MRoomName, "m.room.canonical_alias"} {
		ev, err := s.db.StateEventAt(ctx, roomID, typ, "", 0)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		evs = append(evs, ev)
	}
	return namedIn(evs), nil
}

// syncState picks the state events of a room's /sync entry (see
// SyncRoomRequest) for a timeline of the depths after lo up to hi.
func (s *Server) syncState(ctx context.Context, req SyncRoomRequest, timeline []storage.Event, lo, hi int64, limited bool) ([]storage.Event, int64, error) {
	full := req.FullState || req.Since == 0
	at := hi // StateAfter: the end of the timeline
	if !req.StateAfter && len(timeline) > 0 {
		at = timeline[0].Depth - 1 // right before the timeline
	}
	if at <= 0 {
		return nil, at, nil // before the room's first event there is no state
	}

	var members []string // the member events lazy loading sends
	if req.LazyMembers {
		seen := map[string]bool{}
		setInTimeline := map[string]bool{}
		for _, ev := range timeline {
			// With the state before the timeline, a sender whose member
			// event the timeline already showed needs no other; with the
			// state after it, every sender's is sent.
			if !seen[ev.Sender] && (req.StateAfter || !setInTimeline[ev.Sender]) {
				seen[ev.Sender] = true
				members = append(members, ev.Sender)
			}
			if ev.Type == spec.MRoomMember && ev.StateKey != nil {
				setInTimeline[*ev.StateKey] = true
			}
		}
		if full && !seen[req.UserID] {
			members = append(members, req.UserID)
		}
	}

	var evs []storage.Event
	var err error
	switch {
	case full:
		// With lazy loading, the members needed come in the same query.
		evs, err = s.db.StateChanges(ctx, req.RoomID, 0, at, members, !req.LazyMembers)
	case req.StateAfter || limited:
		// Every change since the last sync; lazy loading does not apply
		// to these (as in Synapse), so that no membership change is lost.
		evs, err = s.db.StateChanges(ctx, req.RoomID, lo, at, nil, true)
	}
	if err != nil {
		return nil, 0, err
	}
	if req.LazyMembers && len(members) > 0 && !full {
		more, err := s.db.StateEventsAt(ctx, req.RoomID, spec.MRoomMember, members, at)
		if err != nil {
			return nil, 0, err
		}
		have := make(map[string]bool, len(evs))
		for _, ev := range evs {
			have[ev.EventID] = true
		}
		for _, ev := range more {
			if !have[ev.EventID] {
				evs = append(evs, ev)
			}
		}
	}
	return evs, at, nil
}

// addTxnIDs sets unsigned.transaction_id on the events the requesting
// device sent, as the spec asks (only for the device that sent them).
func (s *Server) addTxnIDs(ctx context.Context, req SyncRoomRequest, evs []storage.Event, out []ClientEvent) error {
	var own []string
	for _, ev := range evs {
		if ev.Sender == req.UserID {
			own = append(own, ev.EventID)
		}
	}
	if len(own) == 0 || req.DeviceID == "" {
		return nil
	}
	txns, err := s.db.TxnIDs(ctx, req.UserID, req.DeviceID, own)
	if err != nil {
		return err
	}
	for i := range out {
		if txn, ok := txns[out[i].EventID]; ok {
			out[i].Unsigned["transaction_id"] = txn
		}
	}
	return nil
}

// IgnoredUsers returns the users the user ignores (m.ignored_user_list).
func (s *Server) IgnoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	return s.ignoredUsers(ctx, userID)
}

// StrippedEvent is a state event as invites and knocks show it (spec:
// StrippedStateEvent).
type StrippedEvent struct {
	Content  json.RawMessage `json:"content"`
	Sender   string          `json:"sender"`
	StateKey string          `json:"state_key"`
	Type     string          `json:"type"`
}

// strippedTypes are the state events an invited or knocking user sees, as
// the spec recommends, plus the room's encryption (as Synapse sends).
var strippedTypes = map[string]bool{
	spec.MRoomCreate: true, spec.MRoomName: true, "m.room.avatar": true, "m.room.topic": true,
	spec.MRoomJoinRules: true, "m.room.canonical_alias": true, "m.room.encryption": true,
}

// StrippedState returns the stripped state an invited or knocking user
// sees of a room: its name, avatar, topic, join rules, alias, encryption
// and creation, and the user's own member event.
func (s *Server) StrippedState(ctx context.Context, userID, roomID string) ([]StrippedEvent, error) {
	evs, err := s.db.CurrentState(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := []StrippedEvent{}
	for _, ev := range evs {
		if ev.StateKey == nil || !(strippedTypes[ev.Type] || (ev.Type == spec.MRoomMember && *ev.StateKey == userID)) {
			continue
		}
		ce := ToClientEvent(ev, nil)
		out = append(out, StrippedEvent{Content: ce.Content, Sender: ce.Sender, StateKey: *ev.StateKey, Type: ev.Type})
	}
	return out, nil
}
