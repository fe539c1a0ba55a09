package clientapi_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// Helpers of the relations and threads tests carry an "rl" prefix.

// rlPath is a /v1 room endpoint: rlPath(room, "relations", id) percent-
// encodes every part.
func rlPath(roomID string, parts ...string) string {
	p := "/_matrix/client/v1/rooms/" + confEsc(roomID)
	for _, part := range parts {
		p += "/" + confEsc(part)
	}
	return p
}

// rlPage is a /relations or /threads answer. The pointers tell absent keys
// from empty ones.
type rlPage struct {
	Chunk          []rmEvent `json:"chunk"`
	NextBatch      *string   `json:"next_batch"`
	PrevBatch      *string   `json:"prev_batch"`
	RecursionDepth *int      `json:"recursion_depth"`
}

// rlGet calls a relations or threads endpoint and expects 200 with a chunk.
func rlGet(t *testing.T, s *apitest.Server, u apitest.User, path string, q url.Values) rlPage {
	t.Helper()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	r := s.Do("GET", path, u.Token, nil).Expect(t, 200, "")
	var p rlPage
	rmDecode(t, r, &p)
	if p.Chunk == nil {
		t.Fatalf("GET %s: no chunk: %s", path, r.Body)
	}
	return p
}

// rlRelations calls GET /relations/{eventId}[/relType[/eventType]].
func rlRelations(t *testing.T, s *apitest.Server, u apitest.User, roomID, eventID string, q url.Values, filter ...string) rlPage {
	t.Helper()
	return rlGet(t, s, u, rlPath(roomID, append([]string{"relations", eventID}, filter...)...), q)
}

// rlThreads calls GET /threads.
func rlThreads(t *testing.T, s *apitest.Server, u apitest.User, roomID string, q url.Values) rlPage {
	t.Helper()
	return rlGet(t, s, u, rlPath(roomID, "threads"), q)
}

// rlRel is an m.relates_to value.
func rlRel(relType, parent string) map[string]string {
	return map[string]string{"rel_type": relType, "event_id": parent}
}

// rlReply sends a message in the thread of root.
func rlReply(t *testing.T, s *apitest.Server, u apitest.User, roomID, root, body string) string {
	t.Helper()
	return s.Send(u, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": body, "m.relates_to": rlRel("m.thread", root)})
}

// rlEdit sends an edit of target with the new body.
func rlEdit(t *testing.T, s *apitest.Server, u apitest.User, roomID, target, body string) string {
	t.Helper()
	return s.Send(u, roomID, "m.room.message", map[string]any{
		"msgtype": "m.text", "body": "* " + body,
		"m.new_content": map[string]string{"msgtype": "m.text", "body": body},
		"m.relates_to":  rlRel("m.replace", target),
	})
}

// rlReact sends an m.reaction to target.
func rlReact(t *testing.T, s *apitest.Server, u apitest.User, roomID, target, key string) string {
	t.Helper()
	return s.Send(u, roomID, "m.reaction", map[string]any{"m.relates_to": map[string]string{"rel_type": "m.annotation", "event_id": target, "key": key}})
}

// rlRelations returns unsigned["m.relations"] of e (nil if absent).
func rlBundle(e rmEvent) map[string]any {
	m, _ := e.Unsigned["m.relations"].(map[string]any)
	return m
}

// rlThreadSummary is an m.thread aggregation.
type rlThreadSummary struct {
	LatestEvent             rmEvent `json:"latest_event"`
	Count                   int     `json:"count"`
	CurrentUserParticipated bool    `json:"current_user_participated"`
}

// rlSub decodes one aggregation of e into v and reports whether it is there.
func rlSub(t *testing.T, e rmEvent, relType string, v any) bool {
	t.Helper()
	agg, ok := rlBundle(e)[relType]
	if !ok {
		return false
	}
	raw, _ := json.Marshal(agg)
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s aggregation of %s: %v: %s", relType, e.EventID, err, raw)
	}
	return true
}

// rlThread returns the m.thread aggregation of e, failing if it is missing.
func rlThread(t *testing.T, e rmEvent) rlThreadSummary {
	t.Helper()
	var ts rlThreadSummary
	if !rlSub(t, e, "m.thread", &ts) {
		t.Fatalf("event %s has no m.thread aggregation: %v", e.EventID, e.Unsigned)
	}
	return ts
}

// rlReplace returns the m.replace aggregation of e, or nil.
func rlReplace(t *testing.T, e rmEvent) *rmEvent {
	t.Helper()
	var ev rmEvent
	if !rlSub(t, e, "m.replace", &ev) {
		return nil
	}
	return &ev
}

// rlRefs returns the event IDs in e's m.reference aggregation.
func rlRefs(t *testing.T, e rmEvent) []string {
	t.Helper()
	var agg struct {
		Chunk []map[string]any `json:"chunk"`
	}
	out := []string{}
	if !rlSub(t, e, "m.reference", &agg) {
		return out
	}
	for _, c := range agg.Chunk {
		if len(c) != 1 {
			t.Errorf("m.reference entry %v: want only event_id", c)
		}
		id, _ := c["event_id"].(string)
		out = append(out, id)
	}
	return out
}

func TestRelationsPagination(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		root := s.SendText(alice, room, "root")
		t1 := rlReply(t, s, bob, room, root, "one")
		r1 := rlReact(t, s, alice, room, root, "👍")
		s.SendText(alice, room, "unrelated")
		t2 := rlReply(t, s, alice, room, root, "two")
		ref := s.Send(bob, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", root)})
		r2 := rlReact(t, s, bob, room, t1, "🎉") // relates to t1, not to root

		// Default: dir=b, newest first, everything in one page; no
		// next_batch, prev_batch or recursion_depth.
		all := rlRelations(t, s, alice, room, root, nil)
		rmEqual(t, "all relations", rmIDs(all.Chunk), []string{ref, t2, r1, t1})
		if all.NextBatch != nil || all.PrevBatch != nil || all.RecursionDepth != nil {
			t.Errorf("single page: next_batch %v prev_batch %v recursion_depth %v", all.NextBatch, all.PrevBatch, all.RecursionDepth)
		}
		if all.Chunk[1].Content["body"] != "two" || all.Chunk[1].Sender != alice.ID || all.Chunk[1].RoomID != room || all.Chunk[1].Type != "m.room.message" {
			t.Errorf("chunk event not served in full: %+v", all.Chunk[1])
		}
		if all.Chunk[1].Unsigned["membership"] != "join" {
			t.Errorf("chunk event's unsigned.membership: %v", all.Chunk[1].Unsigned)
		}

		// Pages of two backwards.
		p1 := rlRelations(t, s, alice, room, root, url.Values{"limit": {"2"}})
		rmEqual(t, "page 1", rmIDs(p1.Chunk), []string{ref, t2})
		if p1.NextBatch == nil || p1.PrevBatch != nil {
			t.Fatalf("page 1: next_batch %v prev_batch %v", p1.NextBatch, p1.PrevBatch)
		}
		p2 := rlRelations(t, s, alice, room, root, url.Values{"limit": {"2"}, "from": {*p1.NextBatch}})
		rmEqual(t, "page 2", rmIDs(p2.Chunk), []string{r1, t1})
		if p2.NextBatch != nil {
			t.Errorf("last page has next_batch %q", *p2.NextBatch)
		}
		if p2.PrevBatch == nil || *p2.PrevBatch != *p1.NextBatch {
			t.Errorf("page 2: prev_batch %v, want the from token %q", p2.PrevBatch, *p1.NextBatch)
		}

		// Forwards, oldest first.
		f1 := rlRelations(t, s, alice, room, root, url.Values{"dir": {"f"}, "limit": {"3"}})
		rmEqual(t, "forward page 1", rmIDs(f1.Chunk), []string{t1, r1, t2})
		if f1.NextBatch == nil {
			t.Fatal("forward page 1: no next_batch")
		}
		f2 := rlRelations(t, s, alice, room, root, url.Values{"dir": {"f"}, "limit": {"3"}, "from": {*f1.NextBatch}})
		rmEqual(t, "forward page 2", rmIDs(f2.Chunk), []string{ref})
		if f2.NextBatch != nil {
			t.Errorf("forward last page has next_batch")
		}
		// to stops the walk: backwards from the end down to the point
		// after t1.
		first := rlRelations(t, s, alice, room, root, url.Values{"dir": {"f"}, "limit": {"1"}})
		rmEqual(t, "first child", rmIDs(first.Chunk), []string{t1})
		to := rlRelations(t, s, alice, room, root, url.Values{"to": {*first.NextBatch}})
		rmEqual(t, "backwards to a token", rmIDs(to.Chunk), []string{ref, t2, r1})
		// A /messages token works as from.
		msgs := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"2"}})
		fromMsgs := rlRelations(t, s, alice, room, root, url.Values{"from": {*msgs.End}})
		rmEqual(t, "from a /messages token", rmIDs(fromMsgs.Chunk), []string{t2, r1, t1}) // ref and r2 are the newest two events
		// limit=0 is an empty page.
		if z := rlRelations(t, s, alice, room, root, url.Values{"limit": {"0"}}); len(z.Chunk) != 0 || z.NextBatch != nil {
			t.Errorf("limit 0: %v next_batch %v", rmIDs(z.Chunk), z.NextBatch)
		}

		// Filters by relation type and event type.
		rmEqual(t, "m.thread", rmIDs(rlRelations(t, s, alice, room, root, nil, "m.thread").Chunk), []string{t2, t1})
		rmEqual(t, "m.annotation/m.reaction", rmIDs(rlRelations(t, s, alice, room, root, nil, "m.annotation", "m.reaction").Chunk), []string{r1})
		rmEqual(t, "m.thread/m.reaction", rmIDs(rlRelations(t, s, alice, room, root, nil, "m.thread", "m.reaction").Chunk), []string{})
		rmEqual(t, "unknown rel_type", rmIDs(rlRelations(t, s, alice, room, root, nil, "org.example.none").Chunk), []string{})

		// recurse follows relations of relations; recursion_depth is there
		// exactly when recurse was given.
		rec := rlRelations(t, s, alice, room, root, url.Values{"recurse": {"true"}})
		rmEqual(t, "recursive", rmIDs(rec.Chunk), []string{r2, ref, t2, r1, t1})
		if rec.RecursionDepth == nil || *rec.RecursionDepth < 3 {
			t.Errorf("recurse=true: recursion_depth %v, want at least 3", rec.RecursionDepth)
		}
		flat := rlRelations(t, s, alice, room, root, url.Values{"recurse": {"false"}})
		rmEqual(t, "recurse=false", rmIDs(flat.Chunk), []string{ref, t2, r1, t1})
		if flat.RecursionDepth == nil || *flat.RecursionDepth != 1 {
			t.Errorf("recurse=false: recursion_depth %v, want 1", flat.RecursionDepth)
		}
		// Filters apply to every level: r2 is an annotation of a thread
		// reply, reached through t1, which is not an annotation.
		rmEqual(t, "recursive annotations", rmIDs(rlRelations(t, s, alice, room, root, url.Values{"recurse": {"true"}}, "m.annotation").Chunk), []string{r1})
		rmEqual(t, "recursive annotations of t1", rmIDs(rlRelations(t, s, alice, room, t1, url.Values{"recurse": {"true"}}, "m.annotation").Chunk), []string{r2})

		// Relations of an event without any, and a reaction's own page.
		rmEqual(t, "no children", rmIDs(rlRelations(t, s, alice, room, ref, nil).Chunk), []string{})
	})
}

func TestRelationsErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		other := s.CreateRoom(alice, nil)
		root := s.SendText(alice, room, "root")
		rlReply(t, s, alice, room, root, "reply")
		elsewhere := s.SendText(alice, other, "in another room")

		for _, tc := range []struct {
			name, path, token string
			status            int
			errcode           string
		}{
			{"unknown event", rlPath(room, "relations", "$nosuch"), alice.Token, 404, "M_NOT_FOUND"},
			{"event of another room", rlPath(room, "relations", elsewhere), alice.Token, 404, "M_NOT_FOUND"},
			{"not a member", rlPath(room, "relations", root), carol.Token, 404, "M_NOT_FOUND"},
			{"not a member, with rel_type", rlPath(room, "relations", root, "m.thread"), carol.Token, 404, "M_NOT_FOUND"},
			{"unknown room", rlPath("!nosuch:aula.test", "relations", root), alice.Token, 404, "M_NOT_FOUND"},
			{"bad room ID", rlPath("nosuch", "relations", root), alice.Token, 400, "M_INVALID_PARAM"},
			{"bad dir", rlPath(room, "relations", root) + "?dir=x", alice.Token, 400, "M_INVALID_PARAM"},
			{"negative limit", rlPath(room, "relations", root) + "?limit=-1", alice.Token, 400, "M_INVALID_PARAM"},
			{"limit not a number", rlPath(room, "relations", root) + "?limit=ten", alice.Token, 400, "M_INVALID_PARAM"},
			{"bad recurse", rlPath(room, "relations", root) + "?recurse=yes", alice.Token, 400, "M_INVALID_PARAM"},
			{"bad from", rlPath(room, "relations", root) + "?from=nonsense", alice.Token, 400, "M_INVALID_PARAM"},
			{"bad to", rlPath(room, "relations", root) + "?to=nonsense", alice.Token, 400, "M_INVALID_PARAM"},
			{"no token", rlPath(room, "relations", root), "", 401, "M_MISSING_TOKEN"},
			{"too many parts", rlPath(room, "relations", root, "m.thread", "m.room.message", "x"), alice.Token, 404, "M_UNRECOGNIZED"},
			{"v3 is not a relations path", rmRoom(room, "relations", root), alice.Token, 404, "M_UNRECOGNIZED"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s.Do("GET", tc.path, tc.token, nil).Expect(t, tc.status, tc.errcode)
			})
		}
		s.Do("POST", rlPath(room, "relations", root), alice.Token, map[string]any{}).Expect(t, 405, "M_UNRECOGNIZED")
	})
}

// Children the user may not see are not listed, and do not count in the
// aggregations.
func TestRelationsHistoryVisibility(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		room := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
			{"type": "m.room.history_visibility", "state_key": "", "content": map[string]string{"history_visibility": "joined"}},
		}})
		old := s.SendText(alice, room, "before bob")
		oldReply := rlReply(t, s, alice, room, old, "also before bob")
		rmInviteJoin(t, s, alice, room, bob)
		root := s.SendText(alice, room, "root")
		seen := rlReply(t, s, alice, room, root, "bob sees this")
		seenRef := s.Send(alice, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", root)})
		lateToOld := rlReply(t, s, alice, room, old, "to an old root, while bob is here")
		s.Leave(bob, room)
		unseen := rlReply(t, s, alice, room, root, "after bob left")
		s.Send(alice, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", root)})
		edit := rlEdit(t, s, alice, room, root, "edited after bob left")

		// Bob cannot see the old root, so its relations are 404 for him,
		// even though he saw one of its replies.
		s.Do("GET", rlPath(room, "relations", old), bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		rmEqual(t, "alice sees all", rmIDs(rlRelations(t, s, alice, room, old, nil).Chunk), []string{lateToOld, oldReply})

		// Of the root's children, bob sees those sent while he was there.
		rmEqual(t, "bob's view", rmIDs(rlRelations(t, s, bob, room, root, nil).Chunk), []string{seenRef, seen})
		rmEqual(t, "bob's view, forwards", rmIDs(rlRelations(t, s, bob, room, root, url.Values{"dir": {"f"}}).Chunk), []string{seen, seenRef})
		rmEqual(t, "alice's view", rmIDs(rlRelations(t, s, alice, room, root, nil, "m.thread").Chunk), []string{unseen, seen})

		// The aggregations bob gets leave out what he cannot see: the
		// later reply, reference and edit.
		e := rmGetEvent(t, s, bob, room, root)
		th := rlThread(t, e)
		if th.Count != 1 || th.LatestEvent.EventID != seen || th.CurrentUserParticipated {
			t.Errorf("bob's thread summary: count %d latest %s participated %v", th.Count, th.LatestEvent.EventID, th.CurrentUserParticipated)
		}
		rmEqual(t, "bob's references", rlRefs(t, e), []string{seenRef})
		if r := rlReplace(t, e); r != nil {
			t.Errorf("bob sees an edit sent after he left: %s", r.EventID)
		}
		a := rmGetEvent(t, s, alice, room, root)
		if th := rlThread(t, a); th.Count != 2 || th.LatestEvent.EventID != unseen || !th.CurrentUserParticipated {
			t.Errorf("alice's thread summary: count %d latest %s participated %v", th.Count, th.LatestEvent.EventID, th.CurrentUserParticipated)
		}
		if r := rlReplace(t, a); r == nil || r.EventID != edit {
			t.Errorf("alice's m.replace: %+v, want %s", r, edit)
		}

		// Dave, never in the room, sees nothing.
		s.Do("GET", rlPath(room, "relations", root), dave.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", rlPath(room, "threads"), dave.Token, nil).Expect(t, 403, "M_FORBIDDEN")

		// Bob's thread list: the root's thread (with what he saw) and the
		// old root is not listed, though he saw a reply to it.
		bt := rlThreads(t, s, bob, room, nil)
		rmEqual(t, "bob's threads", rmIDs(bt.Chunk), []string{root})
		if th := rlThread(t, bt.Chunk[0]); th.Count != 1 || th.LatestEvent.EventID != seen {
			t.Errorf("bob's listed thread: count %d latest %s", th.Count, th.LatestEvent.EventID)
		}
		rmEqual(t, "alice's threads", rmIDs(rlThreads(t, s, alice, room, nil).Chunk), []string{root, old})
	})
}

func TestBundledAggregations(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, carol)

		// Edits: the most recent valid one is bundled in full.
		orig := s.SendText(alice, room, "original")
		e1 := rlEdit(t, s, alice, room, orig, "first edit")
		e2 := rlEdit(t, s, alice, room, orig, "second edit")
		rlEdit(t, s, bob, room, orig, "someone else's edit")  // another sender
		s.Send(alice, room, "m.room.message", map[string]any{ // no m.new_content
			"msgtype": "m.text", "body": "* no new content", "m.relates_to": rlRel("m.replace", orig),
		})
		s.Send(alice, room, "m.sticker", map[string]any{ // another type
			"body": "sticker", "m.new_content": map[string]string{"body": "x"}, "m.relates_to": rlRel("m.replace", orig),
		})
		rlEdit(t, s, alice, room, e2, "an edit of an edit")
		ev := rmGetEvent(t, s, carol, room, orig)
		if ev.Content["body"] != "original" {
			t.Errorf("the original's content was replaced: %v", ev.Content)
		}
		rep := rlReplace(t, ev)
		if rep == nil {
			t.Fatalf("no m.replace in %v", ev.Unsigned)
		}
		if rep.EventID != e2 || rep.Sender != alice.ID || rep.Type != "m.room.message" || rep.RoomID != room || rep.OriginServerTS == 0 {
			t.Errorf("m.replace is not the latest valid edit in full: %+v", rep)
		}
		if nc, _ := rep.Content["m.new_content"].(map[string]any); nc["body"] != "second edit" {
			t.Errorf("m.replace content: %v", rep.Content)
		}
		// Edits get no aggregations of their own.
		if b := rlBundle(rmGetEvent(t, s, alice, room, e2)); b != nil {
			t.Errorf("an edit has aggregations: %v", b)
		}
		// Redacting the latest edit falls back to the one before.
		rmRedact(t, s, alice, room, e2, map[string]any{})
		if rep := rlReplace(t, rmGetEvent(t, s, alice, room, orig)); rep == nil || rep.EventID != e1 {
			t.Errorf("after redacting the latest edit: %+v, want %s", rep, e1)
		}

		// Threads: the latest reply in full with its own aggregations, the
		// count, and whether the reader took part.
		root := s.SendText(alice, room, "thread root")
		rlReply(t, s, bob, room, root, "bob 1")
		b2 := rlReply(t, s, bob, room, root, "bob 2")
		b2edit := rlEdit(t, s, bob, room, b2, "bob 2, edited")
		for _, tc := range []struct {
			u            apitest.User
			participated bool
		}{{alice, true}, {bob, true}, {carol, false}} {
			th := rlThread(t, rmGetEvent(t, s, tc.u, room, root))
			if th.Count != 2 || th.CurrentUserParticipated != tc.participated {
				t.Errorf("%s: count %d participated %v, want 2 %v", tc.u.ID, th.Count, th.CurrentUserParticipated, tc.participated)
			}
			if th.LatestEvent.EventID != b2 || th.LatestEvent.Content["body"] != "bob 2" || th.LatestEvent.Sender != bob.ID || th.LatestEvent.RoomID != room {
				t.Errorf("%s: latest_event %+v", tc.u.ID, th.LatestEvent)
			}
			if r := rlReplace(t, th.LatestEvent); r == nil || r.EventID != b2edit {
				t.Errorf("%s: latest_event without its edit: %v", tc.u.ID, th.LatestEvent.Unsigned)
			}
		}
		// Carol joins in; a redacted reply no longer counts.
		c1 := rlReply(t, s, carol, room, root, "carol 1")
		if th := rlThread(t, rmGetEvent(t, s, carol, room, root)); th.Count != 3 || !th.CurrentUserParticipated || th.LatestEvent.EventID != c1 {
			t.Errorf("after carol's reply: %+v", th)
		}
		rmRedact(t, s, carol, room, c1, map[string]any{})
		if th := rlThread(t, rmGetEvent(t, s, carol, room, root)); th.Count != 2 || th.CurrentUserParticipated || th.LatestEvent.EventID != b2 {
			t.Errorf("after redacting carol's reply: count %d participated %v latest %s", th.Count, th.CurrentUserParticipated, th.LatestEvent.EventID)
		}

		// References: the IDs, oldest first.
		target := s.SendText(alice, room, "referenced")
		ref1 := s.Send(bob, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", target)})
		ref2 := s.Send(carol, room, "m.room.message", map[string]any{"body": "see", "msgtype": "m.text", "m.relates_to": rlRel("m.reference", target)})
		rmEqual(t, "references", rlRefs(t, rmGetEvent(t, s, alice, room, target)), []string{ref1, ref2})

		// The same aggregations in /messages, /context and /relations.
		page := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"100"}})
		found := map[string]rmEvent{}
		for _, e := range page.Chunk {
			found[e.EventID] = e
		}
		if rep := rlReplace(t, found[orig]); rep == nil || rep.EventID != e1 {
			t.Errorf("/messages: m.replace of the original: %v", found[orig].Unsigned)
		}
		if th := rlThread(t, found[root]); th.Count != 2 || th.LatestEvent.EventID != b2 {
			t.Errorf("/messages: thread %+v", th)
		}
		rmEqual(t, "/messages references", rlRefs(t, found[target]), []string{ref1, ref2})
		var ctx struct {
			Event rmEvent `json:"event"`
		}
		rmDecode(t, s.Do("GET", rmRoom(room, "context", root)+"?limit=2", alice.Token, nil).Expect(t, 200, ""), &ctx)
		if th := rlThread(t, ctx.Event); th.Count != 2 {
			t.Errorf("/context: thread %+v", th)
		}
		rels := rlRelations(t, s, alice, room, root, nil, "m.thread")
		if r := rlReplace(t, rels.Chunk[0]); rels.Chunk[0].EventID != b2 || r == nil || r.EventID != b2edit {
			t.Errorf("/relations: the reply's edit is not bundled: %+v", rels.Chunk[0])
		}

		// Events without children have no m.relations; neither do state
		// events, even when something relates to them.
		plain := s.SendText(alice, room, "plain")
		if b := rlBundle(rmGetEvent(t, s, alice, room, plain)); b != nil {
			t.Errorf("plain event: %v", b)
		}
		topic := rmPutState(t, s, alice, room, "m.room.topic", "", map[string]string{"topic": "t"})
		s.Send(alice, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", topic)})
		if b := rlBundle(rmGetEvent(t, s, alice, room, topic)); b != nil {
			t.Errorf("state event with aggregations: %v", b)
		}

		// Redacting the original drops its m.replace (and /relations no
		// longer lists its edits) but keeps other children.
		rlReply(t, s, bob, room, orig, "a reply to the original")
		rmRedact(t, s, alice, room, orig, map[string]any{})
		red := rmGetEvent(t, s, alice, room, orig)
		if rep := rlReplace(t, red); rep != nil {
			t.Errorf("redacted event with m.replace %s", rep.EventID)
		}
		if th := rlThread(t, red); th.Count != 1 {
			t.Errorf("redacted root's thread: %+v", th)
		}
		for _, e := range rlRelations(t, s, alice, room, orig, nil).Chunk {
			if e.Type == "m.room.message" && e.Content["m.new_content"] != nil {
				t.Errorf("/relations of a redacted event lists its edit %s", e.EventID)
			}
		}
		rmEqual(t, "m.replace of a redacted event", rmIDs(rlRelations(t, s, alice, room, orig, nil, "m.replace").Chunk), []string{})
	})
}

// Users a reader ignores do not count in aggregations, and thread roots
// they sent are served redacted in /threads.
func TestRelationsIgnoredUsers(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, carol)
		root := s.SendText(alice, room, "root")
		a1 := rlReply(t, s, alice, room, root, "alice 1")
		b1 := rlReply(t, s, bob, room, root, "bob 1")
		ref := s.Send(bob, room, "org.example.note", map[string]any{"m.relates_to": rlRel("m.reference", root)})
		bobRoot := s.SendText(bob, room, "bob's root")
		rlReply(t, s, alice, room, bobRoot, "alice replies to bob")

		s.Do("PUT", "/_matrix/client/v3/user/"+confEsc(carol.ID)+"/account_data/m.ignored_user_list", carol.Token,
			map[string]any{"ignored_users": map[string]any{bob.ID: map[string]any{}}}).Expect(t, 200, "")
		e := rmGetEvent(t, s, carol, room, root)
		if th := rlThread(t, e); th.Count != 1 || th.LatestEvent.EventID != a1 {
			t.Errorf("carol, ignoring bob: count %d latest %s", th.Count, th.LatestEvent.EventID)
		}
		rmEqual(t, "carol's references", rlRefs(t, e), []string{})
		rmEqual(t, "carol's relations", rmIDs(rlRelations(t, s, carol, room, root, nil).Chunk), []string{a1})
		// Alice ignores no one.
		if th := rlThread(t, rmGetEvent(t, s, alice, room, root)); th.Count != 2 || th.LatestEvent.EventID != b1 {
			t.Errorf("alice: count %d latest %s", th.Count, th.LatestEvent.EventID)
		}
		rmEqual(t, "alice's references", rlRefs(t, rmGetEvent(t, s, alice, room, root)), []string{ref})

		list := rlThreads(t, s, carol, room, nil)
		rmEqual(t, "carol's threads", rmIDs(list.Chunk), []string{bobRoot, root})
		if body, ok := list.Chunk[0].Content["body"]; ok {
			t.Errorf("root of an ignored user served with body %v", body)
		}
		if th := rlThread(t, list.Chunk[0]); th.Count != 1 {
			t.Errorf("ignored user's root lost its aggregation: %+v", th)
		}
		if list := rlThreads(t, s, alice, room, nil); list.Chunk[0].Content["body"] != "bob's root" {
			t.Errorf("alice gets bob's root redacted: %v", list.Chunk[0].Content)
		}
	})
}

func TestThreadsList(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, carol)
		a := s.SendText(alice, room, "A")
		b := s.SendText(bob, room, "B")
		c := s.SendText(alice, room, "C")
		s.SendText(alice, room, "not a thread")
		rlReply(t, s, bob, room, a, "A1")
		rlReply(t, s, carol, room, b, "B1")
		rlReply(t, s, bob, room, c, "C1")
		a2 := rlReply(t, s, bob, room, a, "A2")

		// The thread with the latest reply first, each root with its
		// aggregation.
		all := rlThreads(t, s, alice, room, nil)
		rmEqual(t, "threads", rmIDs(all.Chunk), []string{a, c, b})
		if all.NextBatch != nil {
			t.Errorf("one page: next_batch %q", *all.NextBatch)
		}
		if th := rlThread(t, all.Chunk[0]); th.Count != 2 || th.LatestEvent.EventID != a2 || !th.CurrentUserParticipated {
			t.Errorf("thread A: %+v", th)
		}
		if all.Chunk[0].Content["body"] != "A" || all.Chunk[0].Sender != alice.ID || all.Chunk[0].RoomID != room {
			t.Errorf("root not served in full: %+v", all.Chunk[0])
		}
		if all.Chunk[0].Unsigned["membership"] != "join" {
			t.Errorf("root's unsigned.membership: %v", all.Chunk[0].Unsigned)
		}
		// Pages.
		p1 := rlThreads(t, s, alice, room, url.Values{"limit": {"2"}})
		rmEqual(t, "page 1", rmIDs(p1.Chunk), []string{a, c})
		if p1.NextBatch == nil {
			t.Fatal("page 1: no next_batch")
		}
		p2 := rlThreads(t, s, alice, room, url.Values{"limit": {"2"}, "from": {*p1.NextBatch}})
		rmEqual(t, "page 2", rmIDs(p2.Chunk), []string{b})
		if p2.NextBatch != nil {
			t.Errorf("last page: next_batch %q", *p2.NextBatch)
		}
		exact := rlThreads(t, s, alice, room, url.Values{"limit": {"3"}})
		if len(exact.Chunk) != 3 || exact.NextBatch != nil {
			t.Errorf("a page that ends with the last thread: %d threads, next_batch %v", len(exact.Chunk), exact.NextBatch)
		}
		// include=participated: the root's sender or a reply's.
		rmEqual(t, "carol took part in", rmIDs(rlThreads(t, s, carol, room, url.Values{"include": {"participated"}}).Chunk), []string{b})
		rmEqual(t, "bob took part in", rmIDs(rlThreads(t, s, bob, room, url.Values{"include": {"participated"}}).Chunk), []string{a, c, b})
		rmEqual(t, "carol: all", rmIDs(rlThreads(t, s, carol, room, url.Values{"include": {"all"}}).Chunk), []string{a, c, b})
		pp := rlThreads(t, s, carol, room, url.Values{"include": {"participated"}, "limit": {"1"}})
		if len(pp.Chunk) != 1 || pp.NextBatch != nil {
			t.Errorf("participated, limit 1: %v next_batch %v", rmIDs(pp.Chunk), pp.NextBatch)
		}
		// A new reply moves its thread to the front; a redacted last reply
		// ends a thread.
		b2 := rlReply(t, s, alice, room, b, "B2")
		rmEqual(t, "after a reply to B", rmIDs(rlThreads(t, s, alice, room, nil).Chunk), []string{b, a, c})
		rmRedact(t, s, alice, room, b2, map[string]any{})
		rmEqual(t, "after redacting it", rmIDs(rlThreads(t, s, alice, room, nil).Chunk), []string{a, c, b})
		cReplies := rlRelations(t, s, alice, room, c, nil, "m.thread")
		rmRedact(t, s, bob, room, cReplies.Chunk[0].EventID, map[string]any{})
		rmEqual(t, "after redacting C's only reply", rmIDs(rlThreads(t, s, alice, room, nil).Chunk), []string{a, b})

		// Errors.
		dave := s.Register("dave", "correct horse battery")
		for _, tc := range []struct {
			name, path, token string
			status            int
			errcode           string
		}{
			{"bad include", rlPath(room, "threads") + "?include=mine", alice.Token, 400, "M_INVALID_PARAM"},
			{"zero limit", rlPath(room, "threads") + "?limit=0", alice.Token, 400, "M_INVALID_PARAM"},
			{"negative limit", rlPath(room, "threads") + "?limit=-3", alice.Token, 400, "M_INVALID_PARAM"},
			{"bad from", rlPath(room, "threads") + "?from=xyz", alice.Token, 400, "M_INVALID_PARAM"},
			{"not a member", rlPath(room, "threads"), dave.Token, 403, "M_FORBIDDEN"},
			{"unknown room", rlPath("!nosuch:aula.test", "threads"), alice.Token, 403, "M_FORBIDDEN"},
			{"bad room ID", rlPath("nosuch", "threads"), alice.Token, 400, "M_INVALID_PARAM"},
			{"no token", rlPath(room, "threads"), "", 401, "M_MISSING_TOKEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s.Do("GET", tc.path, tc.token, nil).Expect(t, tc.status, tc.errcode)
			})
		}

		// A former member sees the threads they could see, as they were.
		s.Leave(carol, room)
		late := s.SendText(alice, room, "after carol left")
		rlReply(t, s, alice, room, late, "reply")
		rlReply(t, s, alice, room, a, "A3")
		left := rlThreads(t, s, carol, room, nil)
		rmEqual(t, "former member's threads", rmIDs(left.Chunk), []string{a, b})
		if th := rlThread(t, left.Chunk[0]); th.Count != 2 || th.LatestEvent.EventID != a2 {
			t.Errorf("former member's view of A: count %d latest %s", th.Count, th.LatestEvent.EventID)
		}
	})
}
