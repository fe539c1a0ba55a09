package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Relation types with server-side behaviour (client-server API,
// "Forming relationships between events" and the modules it lists).
const (
	relThread     = "m.thread"
	relReplace    = "m.replace"
	relReference  = "m.reference"
	relAnnotation = "m.annotation"
)

// recursionLevels is how deep GET /relations?recurse=true follows
// relations; the spec asks for at least 3.
const recursionLevels = 3

// relation reads the rel_type and parent event ID of an event's
// content."m.relates_to"; ok is false unless both are non-empty strings
// (the spec ignores relations that do not match the schema).
func relation(content json.RawMessage) (relType, parent string, ok bool) {
	var c struct {
		RelatesTo struct {
			RelType any `json:"rel_type"`
			EventID any `json:"event_id"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(content, &c) != nil {
		return "", "", false
	}
	relType, ok1 := c.RelatesTo.RelType.(string)
	parent, ok2 := c.RelatesTo.EventID.(string)
	if !ok1 || !ok2 || relType == "" || parent == "" {
		return "", "", false
	}
	return relType, parent, true
}

// eventRelation is relation for a stored event.
func eventRelation(ev storage.Event) (relType, parent string, ok bool) {
	var pdu struct {
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(ev.JSON, &pdu) != nil {
		return "", "", false
	}
	return relation(pdu.Content)
}

// checkRelation applies the spec's rule for a new event that relates to
// another ("Validation of m.thread relationships"): a thread cannot start
// from an event that is itself a relation (400 M_UNKNOWN, as the spec
// says). Other relations are not checked: one to an unknown event or an
// event of another room is stored and ignored wherever relations are read
// (the spec: relations that break the rules "are simply ignored"), and
// answering differently for those would tell a client which event IDs
// exist in rooms it is not in. The send path calls it before storing an
// event.
func (s *Server) checkRelation(ctx context.Context, roomID string, content json.RawMessage) error {
	relType, parent, ok := relation(content)
	if !ok || relType != relThread {
		return nil
	}
	_, _, err := s.db.RelationOf(ctx, parent)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ev, err := s.db.Event(ctx, parent)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != roomID) {
		return nil
	}
	if err != nil {
		return err
	}
	return mxerr.Unknown("Cannot start a thread from an event with a relation")
}

// ignoredUsers returns the users in the user's m.ignored_user_list.
func (s *Server) ignoredUsers(ctx context.Context, userID string) (map[string]bool, error) {
	raw, err := s.db.AccountData(ctx, userID, "", "m.ignored_user_list")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c struct {
		IgnoredUsers map[string]json.RawMessage `json:"ignored_users"`
	}
	_ = json.Unmarshal(raw, &c) // malformed lists ignore no one
	out := make(map[string]bool, len(c.IgnoredUsers))
	for u := range c.IgnoredUsers {
		out[u] = true
	}
	return out, nil
}

// ThreadSummary is the m.thread bundled aggregation of a thread root.
type ThreadSummary struct {
	LatestEvent             ClientEvent `json:"latest_event"`
	Count                   int         `json:"count"`
	CurrentUserParticipated bool        `json:"current_user_participated"`
}

// EventRef is an entry of the m.reference aggregation's chunk.
type EventRef struct {
	EventID string `json:"event_id"`
}

// ReferenceChunk is the m.reference bundled aggregation.
type ReferenceChunk struct {
	Chunk []EventRef `json:"chunk"`
}

// addBundles puts the bundled aggregations (client-server API,
// "Aggregations of child events") of each event into its
// unsigned["m.relations"], as v's user may see them: m.replace (the most
// recent valid edit, in full), m.thread (the latest reply with its own
// aggregations, the number of replies and whether the user took part) and
// m.reference (the referencing event IDs). Only children the user may see
// count, and none from users they ignore. State events, edits and
// annotations get none (as the spec says for state events and Synapse does
// for the others). out[i] is evs[i] formatted. With threads false no
// m.thread aggregation is made: that is for the latest events of threads,
// which cannot be roots.
func (s *Server) addBundles(ctx context.Context, v *viewer, evs []storage.Event, out []ClientEvent, threads bool) error {
	var candidates []string
	var unredacted []string
	byID := map[string]storage.Event{}
	roomID := ""
	for _, ev := range evs {
		if ev.StateKey != nil {
			continue
		}
		if relType, _, ok := eventRelation(ev); ok && (relType == relReplace || relType == relAnnotation) {
			continue
		}
		if roomID == "" {
			roomID = ev.RoomID
		} else if ev.RoomID != roomID {
			continue // callers format one room at a time
		}
		if _, dup := byID[ev.EventID]; dup {
			continue
		}
		byID[ev.EventID] = ev
		candidates = append(candidates, ev.EventID)
		if ev.RedactedBy == "" {
			unredacted = append(unredacted, ev.EventID)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	ignored, err := v.ignored, error(nil)
	if !v.ignoredKnown {
		ignored, err = s.ignoredUsers(ctx, v.userID)
	}
	if err != nil {
		return err
	}
	// A related event counts if the user may see it and does not ignore
	// its sender. Relation rows carry no state key: the few state events
	// that relate to others are judged like messages, which never shows
	// more than canSee would.
	counts := func(id, typ, sender string, depth int64) bool {
		return !ignored[sender] && v.canSee(storage.Event{EventID: id, Type: typ, Depth: depth})
	}

	relTypes := []string{relReference}
	if threads {
		relTypes = append(relTypes, relThread)
	}
	children, err := s.db.Children(ctx, roomID, candidates, relTypes)
	if err != nil {
		return err
	}
	type thread struct {
		latest       string
		count        int
		participated bool
	}
	threadOf := map[string]*thread{}
	refs := map[string][]EventRef{}
	for _, c := range children { // oldest first
		switch c.RelType {
		case relThread:
			t := threadOf[c.Parent]
			if t == nil {
				t = &thread{}
				threadOf[c.Parent] = t
			}
			if c.Sender == v.userID {
				t.participated = true // the user knows what they sent
			}
			if counts(c.EventID, c.Type, c.Sender, c.Depth) {
				t.count++
				t.latest = c.EventID
			}
		case relReference:
			if counts(c.EventID, c.Type, c.Sender, c.Depth) {
				refs[c.Parent] = append(refs[c.Parent], EventRef{EventID: c.EventID})
			}
		}
	}

	// The spec does not bundle edits with redacted events (Edits skips
	// them too); of the edits that pass its checks, the first one the user
	// may see is the most recent.
	edits, err := s.db.Edits(ctx, roomID, unredacted)
	if err != nil {
		return err
	}
	replace := map[string]ClientEvent{}
	for _, ed := range edits {
		if _, done := replace[ed.Original]; done || !validEdit(ed.Event) || ignored[ed.Event.Sender] || !v.canSee(ed.Event) {
			continue
		}
		replace[ed.Original] = ToClientEvent(ed.Event, nil)
	}

	// The latest replies of threads, formatted as events of their own,
	// with their own aggregations.
	var latestIDs []string
	for _, t := range threadOf {
		if t.count > 0 {
			latestIDs = append(latestIDs, t.latest)
		}
	}
	latest := map[string]ClientEvent{}
	if len(latestIDs) > 0 {
		found, err := s.db.EventsByID(ctx, latestIDs)
		if err != nil {
			return err
		}
		var list []storage.Event
		for _, id := range latestIDs {
			if ev, ok := found[id]; ok {
				list = append(list, ev)
			}
		}
		formatted, err := s.formatEvents(ctx, v, list, false)
		if err != nil {
			return err
		}
		for _, ce := range formatted {
			latest[ce.EventID] = ce
		}
	}

	for i := range out {
		id := out[i].EventID
		if _, ok := byID[id]; !ok {
			continue
		}
		rels := map[string]any{}
		if ce, ok := replace[id]; ok {
			rels[relReplace] = ce
		}
		if r := refs[id]; len(r) > 0 {
			rels[relReference] = ReferenceChunk{Chunk: r}
		}
		if t := threadOf[id]; t != nil && t.count > 0 {
			if ce, ok := latest[t.latest]; ok {
				rels[relThread] = ThreadSummary{
					LatestEvent:             ce,
					Count:                   t.count,
					CurrentUserParticipated: t.participated || byID[id].Sender == v.userID,
				}
			}
		}
		if len(rels) > 0 {
			out[i].Unsigned["m.relations"] = rels
		}
	}
	return nil
}

// validEdit checks what Edits leaves to the caller: a replacement must
// carry m.new_content (an object). Encrypted edits carry it inside the
// ciphertext, where the server cannot look.
func validEdit(ev storage.Event) bool {
	if ev.Type == "m.room.encrypted" {
		return true
	}
	var pdu struct {
		Content struct {
			NewContent json.RawMessage `json:"m.new_content"`
		} `json:"content"`
	}
	if json.Unmarshal(ev.JSON, &pdu) != nil {
		return false
	}
	var obj map[string]json.RawMessage
	return len(pdu.Content.NewContent) > 0 && json.Unmarshal(pdu.Content.NewContent, &obj) == nil && obj != nil
}

// RelationsRequest is GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]].
type RelationsRequest struct {
	UserID    string
	RoomID    string
	EventID   string
	RelType   string // optional
	EventType string // optional, only with RelType
	From      string // pagination token; empty: the newest (dir=b) or oldest (dir=f) child
	To        string // optional token to stop at
	Forward   bool   // dir=f; the default is dir=b
	Limit     int
	Recurse   *bool // the recurse parameter, if given
}

// RelationsResponse is the answer of GET /relations.
type RelationsResponse struct {
	Chunk          []ClientEvent `json:"chunk"`
	NextBatch      string        `json:"next_batch,omitempty"`
	PrevBatch      string        `json:"prev_batch,omitempty"`
	RecursionDepth *int          `json:"recursion_depth,omitempty"`
}

// Relations pages through the events that relate to an event, as the user
// may see them, with their bundled aggregations. Tokens are those of
// /messages (positions between events, or a sync position): dir=b returns
// the children at or before from, newest first; dir=f those after from,
// oldest first; to bounds the walk. An unknown parent, or one the user may
// not see, is 404 M_NOT_FOUND. The edits of a redacted parent are left out,
// as they would reveal its content.
func (s *Server) Relations(ctx context.Context, req RelationsRequest) (*RelationsResponse, error) {
	parent, err := s.db.Event(ctx, req.EventID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && parent.RoomID != req.RoomID) {
		return nil, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return nil, err
	}
	info, v, err := s.view(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !v.canSee(parent) {
		return nil, mxerr.NotFound("Event not found")
	}
	resp := &RelationsResponse{Chunk: []ClientEvent{}, PrevBatch: req.From}
	levels := 1
	if req.Recurse != nil {
		if *req.Recurse {
			levels = recursionLevels
		}
		resp.RecursionDepth = &levels
	}
	// The walk covers the depths (lo, hi].
	lo, hi := int64(0), v.maxVisibleDepth(info.LatestDepth)
	if req.From != "" {
		from, err := s.resolveToken(ctx, req.RoomID, req.From)
		if err != nil {
			return nil, err
		}
		if req.Forward {
			lo = from
		} else {
			hi = min(hi, from)
		}
	}
	if req.To != "" {
		to, err := s.resolveToken(ctx, req.RoomID, req.To)
		if err != nil {
			return nil, err
		}
		if req.Forward {
			hi = min(hi, to)
		} else {
			lo = max(lo, to)
		}
	}
	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	q := storage.RelationsQuery{RoomID: req.RoomID, EventID: req.EventID, RelType: req.RelType, EventType: req.EventType, Levels: levels, Backwards: !req.Forward}
	keep := func(ev storage.Event) bool {
		if ignored[ev.Sender] || !v.canSee(ev) {
			return false
		}
		if parent.RedactedBy != "" {
			if relType, p, _ := eventRelation(ev); relType == relReplace && p == parent.EventID {
				return false
			}
		}
		return true
	}
	picked, next, err := page(lo, hi, req.Forward, req.Limit, keep, func(lo, hi int64, n int) ([]storage.Event, error) {
		q.After, q.Before, q.Limit = lo, hi+1, n
		return s.db.Relations(ctx, q)
	})
	if err != nil {
		return nil, err
	}
	if resp.Chunk, err = s.clientEvents(ctx, v, picked); err != nil {
		return nil, err
	}
	for i := range resp.Chunk {
		resp.Chunk[i].Unsigned["membership"] = v.membershipAt(picked[i])
	}
	if next >= 0 {
		resp.NextBatch = formatToken(next)
	}
	return resp, nil
}

// page walks events with depths in (lo, hi] newest first (oldest first
// when forward), fetching them in batches with fetch(lo, hi, n) (in the
// same order), and keeps up to limit of those keep accepts. next is the
// token position to continue from, or -1 when nothing is left. At most
// maxScan events are looked at.
func page(lo, hi int64, forward bool, limit int, keep func(storage.Event) bool,
	fetch func(lo, hi int64, n int) ([]storage.Event, error)) (picked []storage.Event, next int64, err error) {
	if limit <= 0 || lo >= hi {
		return nil, -1, nil
	}
	cursor := func() int64 {
		if forward {
			return lo
		}
		return hi
	}
	// Batches double, so that a long run of events that are not kept
	// costs a few queries, not one per page's worth.
	scanned, size := 0, max(limit+1, 20)
	for {
		n := min(size, maxScan-scanned+1)
		size *= 2
		batch, err := fetch(lo, hi, n)
		if err != nil {
			return nil, 0, err
		}
		for i, ev := range batch {
			if forward {
				lo = ev.Depth
			} else {
				hi = ev.Depth - 1
			}
			scanned++
			if keep(ev) {
				picked = append(picked, ev)
			}
			if len(picked) >= limit || scanned >= maxScan {
				if i+1 < len(batch) {
					return picked, cursor(), nil
				}
				// The page ends with the batch: look whether anything is left.
				if lo >= hi {
					return picked, -1, nil
				}
				more, err := fetch(lo, hi, 1)
				if err != nil {
					return nil, 0, err
				}
				if len(more) == 0 {
					return picked, -1, nil
				}
				return picked, cursor(), nil
			}
		}
		if len(batch) < n || lo >= hi {
			return picked, -1, nil
		}
	}
}

// ThreadsRequest is GET /rooms/{roomId}/threads.
type ThreadsRequest struct {
	UserID       string
	RoomID       string
	Participated bool   // include=participated
	From         string // next_batch of an earlier page
	Limit        int
}

// ThreadsResponse is the answer of GET /threads.
type ThreadsResponse struct {
	Chunk     []ClientEvent `json:"chunk"`
	NextBatch string        `json:"next_batch,omitempty"`
}

// Threads lists the thread roots of a room the user may see, the thread
// with the latest reply first, each with its bundled aggregations. A
// thread counts only when the user may see at least one reply in it. A
// root sent by a user the requester ignores is served redacted, as the
// spec says. Users who may not read the room get 403 M_FORBIDDEN (unknown
// rooms too).
func (s *Server) Threads(ctx context.Context, req ThreadsRequest) (*ThreadsResponse, error) {
	info, v, err := s.view(ctx, req.RoomID, req.UserID)
	if err != nil {
		return nil, err
	}
	if !v.mayRead() {
		return nil, forbiddenNotMember()
	}
	through := info.LatestDepth
	if req.From != "" {
		if through, err = s.resolveToken(ctx, req.RoomID, req.From); err != nil {
			return nil, err
		}
	}
	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	participant := ""
	if req.Participated {
		participant = req.UserID
	}
	resp := &ThreadsResponse{Chunk: []ClientEvent{}}
	scanned, size := 0, max(req.Limit+1, 20) // batches double, as in page
	for len(resp.Chunk) < req.Limit && through > 0 {
		n := min(size, maxScan-scanned+1)
		size *= 2
		batch, err := s.db.Threads(ctx, req.RoomID, through, participant, n)
		if err != nil {
			return nil, err
		}
		roots, err := s.threadRoots(ctx, v, info, batch, ignored)
		if err != nil {
			return nil, err
		}
		for i, t := range batch {
			through = t.LatestDepth - 1
			scanned++
			if ce, ok := roots[t.RootID]; ok {
				resp.Chunk = append(resp.Chunk, ce)
			}
			if len(resp.Chunk) >= req.Limit || scanned >= maxScan {
				if i+1 < len(batch) {
					resp.NextBatch = formatToken(through)
				} else if more, err := s.db.Threads(ctx, req.RoomID, through, participant, 1); err != nil {
					return nil, err
				} else if len(more) > 0 && through > 0 {
					resp.NextBatch = formatToken(through)
				}
				return resp, nil
			}
		}
		if len(batch) < n {
			break
		}
	}
	return resp, nil
}

// threadRoots formats the roots of a batch of threads that the user may see
// and that are valid roots (events of the room, not state, not relations
// themselves) with at least one reply the user may see, keyed by event ID.
func (s *Server) threadRoots(ctx context.Context, v *viewer, info storage.RoomInfo, batch []storage.Thread, ignored map[string]bool) (map[string]ClientEvent, error) {
	ids := make([]string, 0, len(batch))
	for _, t := range batch {
		ids = append(ids, t.RootID)
	}
	found, err := s.db.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	var evs []storage.Event
	for _, id := range ids {
		ev, ok := found[id]
		if !ok || ev.RoomID != info.RoomID || ev.StateKey != nil || !v.canSee(ev) {
			continue
		}
		if _, _, isRelation := eventRelation(ev); isRelation {
			continue
		}
		evs = append(evs, ev)
	}
	formatted, err := s.clientEvents(ctx, v, evs)
	if err != nil {
		return nil, err
	}
	out := map[string]ClientEvent{}
	for i, ce := range formatted {
		rels, _ := ce.Unsigned["m.relations"].(map[string]any)
		if _, ok := rels[relThread]; !ok {
			continue
		}
		if ignored[ce.Sender] && evs[i].RedactedBy == "" {
			if ce, err = s.redactedForIgnorer(info, evs[i], rels); err != nil {
				return nil, err
			}
		}
		ce.Unsigned["membership"] = v.membershipAt(evs[i])
		out[ce.EventID] = ce
	}
	return out, nil
}

// redactedForIgnorer serves an event as redacted (the room version's
// redaction algorithm, no redacted_because), keeping its aggregations.
func (s *Server) redactedForIgnorer(info storage.RoomInfo, ev storage.Event, rels map[string]any) (ClientEvent, error) {
	ver, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersion(info.Version))
	if err != nil {
		return ClientEvent{}, fmt.Errorf("roomserver: room %s has unknown version %q: %w", info.RoomID, info.Version, err)
	}
	redacted, err := redactJSON(ver, ev.JSON)
	if err != nil {
		return ClientEvent{}, err
	}
	ev.JSON = redacted
	ce := ToClientEvent(ev, nil)
	delete(rels, relReplace) // no edits of a redacted event
	ce.Unsigned["m.relations"] = rels
	return ce, nil
}
