package clientapi_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// hierarchyPage is a decoded GET /hierarchy answer.
type hierarchyPage struct {
	Rooms []struct {
		RoomID           string   `json:"room_id"`
		Name             string   `json:"name"`
		Topic            string   `json:"topic"`
		CanonicalAlias   string   `json:"canonical_alias"`
		NumJoinedMembers *int     `json:"num_joined_members"`
		WorldReadable    *bool    `json:"world_readable"`
		GuestCanJoin     *bool    `json:"guest_can_join"`
		JoinRule         string   `json:"join_rule"`
		RoomType         string   `json:"room_type"`
		RoomVersion      string   `json:"room_version"`
		Encryption       string   `json:"encryption"`
		AllowedRoomIDs   []string `json:"allowed_room_ids"`
		ChildrenState    []struct {
			Type           string         `json:"type"`
			StateKey       string         `json:"state_key"`
			Content        map[string]any `json:"content"`
			Sender         string         `json:"sender"`
			OriginServerTS int64          `json:"origin_server_ts"`
		} `json:"children_state"`
	} `json:"rooms"`
	NextBatch string `json:"next_batch"`
}

// ids lists the page's room IDs in order.
func (p hierarchyPage) ids() []string {
	out := []string{}
	for _, r := range p.Rooms {
		out = append(out, r.RoomID)
	}
	return out
}

// getHierarchy fetches one page of a space's hierarchy as u.
func getHierarchy(t *testing.T, s *apitest.Server, u apitest.User, roomID, query string) hierarchyPage {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(roomID)+"/hierarchy?"+query, u.Token, nil).Expect(t, 200, "")
	var p hierarchyPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("hierarchy: %v; body: %s", err, r.Body)
	}
	if p.Rooms == nil {
		t.Fatalf("hierarchy without rooms: %s", r.Body)
	}
	return p
}

// addSpaceChild makes child a child of space with the given content.
func addSpaceChild(t *testing.T, s *apitest.Server, u apitest.User, space, child string, content map[string]any) {
	t.Helper()
	s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(space)+"/state/m.space.child/"+url.PathEscape(child), u.Token, content).Expect(t, 200, "")
}

// childContent is m.space.child content with a via and the given extra keys.
func childContent(extra map[string]any) map[string]any {
	c := map[string]any{"via": []string{apitest.ServerName}}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// spaceFixture is a small space tree built by alice, seen by bob:
//
//	S (space, bob joined)
//	├─ A        order "a"; bob joined; encrypted, named, with a topic
//	├─ Sub      order "b", suggested; a space, bob joined
//	│  ├─ B     order "1"; restricted to members of Sub
//	│  ├─ S     order "2"; a cycle back to the root
//	│  └─ Deep  order "3", suggested; a space bob is only invited to
//	│     └─ D1 suggested; a knock room
//	├─ P        a private room bob is not in (invisible to him)
//	├─ K        suggested; a knock room
//	├─ X        content without via (not a child at all)
//	└─ !unknown:aula.test, a room that does not exist
type spaceFixture struct {
	alice, bob, carol                     apitest.User
	S, A, Sub, B, Deep, D1, P, K, X, Gone string
}

func newSpaceFixture(t *testing.T, s *apitest.Server) spaceFixture {
	t.Helper()
	f := spaceFixture{alice: s.Register("alice", "pw"), bob: s.Register("bob", "pw"), carol: s.Register("carol", "pw")}
	space := map[string]any{"type": "m.space"}
	knock := []map[string]any{{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}
	f.S = s.CreateRoom(f.alice, map[string]any{"name": "Uni", "room_alias_name": "uni", "creation_content": space, "invite": []string{f.bob.ID}})
	f.A = s.CreateRoom(f.alice, map[string]any{"name": "Room A", "topic": "All about A", "invite": []string{f.bob.ID},
		"initial_state": []map[string]any{{"type": "m.room.encryption", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}}})
	f.Sub = s.CreateRoom(f.alice, map[string]any{"name": "Faculty", "creation_content": space, "invite": []string{f.bob.ID}})
	f.B = s.CreateRoom(f.alice, map[string]any{"name": "Room B", "initial_state": []map[string]any{{"type": "m.room.join_rules",
		"content": map[string]any{"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": f.Sub}}}}}})
	f.Deep = s.CreateRoom(f.alice, map[string]any{"name": "Deep", "creation_content": space, "invite": []string{f.bob.ID}})
	f.D1 = s.CreateRoom(f.alice, map[string]any{"name": "Knock D1", "initial_state": knock})
	f.P = s.CreateRoom(f.alice, map[string]any{"name": "Private"})
	f.K = s.CreateRoom(f.alice, map[string]any{"name": "Knock K", "initial_state": knock})
	f.X = s.CreateRoom(f.alice, map[string]any{"name": "Not a child"})
	f.Gone = "!unknown:" + apitest.ServerName
	for _, id := range []string{f.S, f.A, f.Sub} {
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(id)+"/join", f.bob.Token, map[string]any{}).Expect(t, 200, "")
	}

	addSpaceChild(t, s, f.alice, f.S, f.A, childContent(map[string]any{"order": "a"}))
	addSpaceChild(t, s, f.alice, f.S, f.Sub, childContent(map[string]any{"order": "b", "suggested": true}))
	addSpaceChild(t, s, f.alice, f.S, f.P, childContent(nil))
	addSpaceChild(t, s, f.alice, f.S, f.K, childContent(map[string]any{"suggested": true, "order": "\u00e9"})) // invalid order: ordered by time
	addSpaceChild(t, s, f.alice, f.S, f.X, map[string]any{"suggested": true})
	addSpaceChild(t, s, f.alice, f.S, f.Gone, childContent(nil))
	addSpaceChild(t, s, f.alice, f.Sub, f.S, childContent(map[string]any{"order": "2"}))
	addSpaceChild(t, s, f.alice, f.Sub, f.Deep, childContent(map[string]any{"order": "3", "suggested": true}))
	addSpaceChild(t, s, f.alice, f.Sub, f.B, childContent(map[string]any{"order": "1"}))
	addSpaceChild(t, s, f.alice, f.Deep, f.D1, childContent(map[string]any{"suggested": true}))
	return f
}

func TestSpaceHierarchy(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		f := newSpaceFixture(t, s)
		names := map[string]string{f.S: "S", f.A: "A", f.Sub: "Sub", f.B: "B", f.Deep: "Deep", f.D1: "D1", f.P: "P", f.K: "K", f.X: "X", f.Gone: "Gone"}
		short := func(ids []string) []string {
			out := []string{}
			for _, id := range ids {
				out = append(out, names[id])
			}
			return out
		}
		expect := func(what string, got []string, want ...string) {
			t.Helper()
			if !reflect.DeepEqual(short(got), want) {
				t.Errorf("%s: got %v, want %v", what, short(got), want)
			}
		}

		// The whole tree, depth-first in the spec's order of children, each
		// room once (the cycle Sub → S ends), without the private room, the
		// unknown room and the child without via.
		full := getHierarchy(t, s, f.bob, f.S, "")
		expect("full walk", full.ids(), "S", "A", "Sub", "B", "Deep", "D1", "K")
		if full.NextBatch != "" {
			t.Errorf("one page has next_batch %q", full.NextBatch)
		}
		root := full.Rooms[0]
		var kids []string
		for i, c := range root.ChildrenState {
			kids = append(kids, c.StateKey)
			if c.Type != "m.space.child" || c.Sender != f.alice.ID || c.OriginServerTS == 0 || c.Content["via"] == nil {
				t.Errorf("children_state entry %+v", c)
			}
			// Children without a valid order follow by timestamp, then ID.
			if prev := root.ChildrenState[max(i-1, 0)]; i > 2 && (prev.OriginServerTS > c.OriginServerTS ||
				prev.OriginServerTS == c.OriginServerTS && prev.StateKey > c.StateKey) {
				t.Errorf("children_state out of order at %d: %v", i, short(kids))
			}
		}
		// children_state lists every valid child, visible or not: first
		// those with an order, by order.
		if len(kids) != 5 || kids[0] != f.A || kids[1] != f.Sub {
			t.Errorf("children_state of S: %v", short(kids))
		}
		if rest := short(kids[2:]); !slices.Contains(rest, "P") || !slices.Contains(rest, "K") || !slices.Contains(rest, "Gone") {
			t.Errorf("children_state of S: %v", short(kids))
		}
		if root.Name != "Uni" || root.RoomType != "m.space" || root.CanonicalAlias != "#uni:aula.test" || root.JoinRule != "invite" ||
			root.RoomVersion == "" || root.NumJoinedMembers == nil || *root.NumJoinedMembers != 2 ||
			root.WorldReadable == nil || *root.WorldReadable || root.GuestCanJoin == nil {
			t.Errorf("root summary %+v", root)
		}
		a := full.Rooms[1]
		if a.Name != "Room A" || a.Topic != "All about A" || a.Encryption != "m.megolm.v1.aes-sha2" || a.RoomType != "" ||
			a.ChildrenState == nil || len(a.ChildrenState) != 0 {
			t.Errorf("room A %+v", a)
		}
		if b := full.Rooms[3]; b.JoinRule != "restricted" || !reflect.DeepEqual(b.AllowedRoomIDs, []string{f.Sub}) {
			t.Errorf("room B %+v", b)
		}

		// The spec's example of ordering children: by valid order, then by
		// the child event's timestamp (children need not exist for that).
		ordered := s.CreateRoom(f.alice, map[string]any{"creation_content": map[string]any{"type": "m.space"}})
		for _, c := range []struct{ id, order string }{{"!b:x", " "}, {"!a:x", "aaaa"}, {"!e:x", ""}, {"!c:x", "first"}, {"!d:x", ""}, {"!f:x", "\x7f"}} {
			content := childContent(nil)
			if c.order != "" {
				content["order"] = c.order
			}
			addSpaceChild(t, s, f.alice, ordered, c.id, content)
			time.Sleep(2 * time.Millisecond) // distinct timestamps
		}
		kids = nil
		for _, c := range getHierarchy(t, s, f.alice, ordered, "").Rooms[0].ChildrenState {
			kids = append(kids, c.StateKey)
		}
		if want := []string{"!b:x", "!a:x", "!c:x", "!e:x", "!d:x", "!f:x"}; !reflect.DeepEqual(kids, want) {
			t.Errorf("children ordered %v, want %v", kids, want)
		}

		// max_depth: 0 is the root alone, 1 its children.
		expect("max_depth=0", getHierarchy(t, s, f.bob, f.S, "max_depth=0").ids(), "S")
		expect("max_depth=1", getHierarchy(t, s, f.bob, f.S, "max_depth=1").ids(), "S", "A", "Sub", "K")
		expect("max_depth=2", getHierarchy(t, s, f.bob, f.S, "max_depth=2").ids(), "S", "A", "Sub", "B", "Deep", "K")

		// suggested_only follows only suggested children and lists only
		// them in children_state.
		sugg := getHierarchy(t, s, f.bob, f.S, "suggested_only=true")
		expect("suggested_only", sugg.ids(), "S", "Sub", "Deep", "D1", "K")
		kids = nil
		for _, c := range sugg.Rooms[0].ChildrenState {
			kids = append(kids, c.StateKey)
		}
		expect("suggested children_state of S", kids, "Sub", "K")

		// Another root: the cycle goes the other way round.
		expect("from Sub", getHierarchy(t, s, f.bob, f.Sub, "").ids(), "Sub", "B", "S", "A", "K", "Deep", "D1")

		// Pagination: pages of two add up to the whole walk; a token can
		// be used again; rooms added before the last room of a page do not
		// shift the next page.
		var all []string
		var tokens []string
		for q := "limit=2"; ; {
			p := getHierarchy(t, s, f.bob, f.S, q)
			if len(p.Rooms) > 2 {
				t.Fatalf("page of %d rooms with limit=2", len(p.Rooms))
			}
			all = append(all, p.ids()...)
			if p.NextBatch == "" {
				break
			}
			tokens = append(tokens, p.NextBatch)
			q = "limit=2&from=" + url.QueryEscape(p.NextBatch)
		}
		expect("paginated", all, "S", "A", "Sub", "B", "Deep", "D1", "K")
		if len(tokens) != 3 {
			t.Errorf("got %d next_batch tokens, want 3", len(tokens))
		}
		again := getHierarchy(t, s, f.bob, f.S, "limit=2&from="+url.QueryEscape(tokens[0]))
		expect("page 2 again", again.ids(), "Sub", "B")
		// Changing suggested_only or max_depth, or a token of another root
		// or of no one, is 400 M_INVALID_PARAM.
		base := "/_matrix/client/v1/rooms/" + url.PathEscape(f.S) + "/hierarchy?limit=2&from=" + url.QueryEscape(tokens[0])
		s.Do("GET", base+"&suggested_only=true", f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", base+"&max_depth=1", f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(f.Sub)+"/hierarchy?from="+url.QueryEscape(tokens[0]), f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(f.S)+"/hierarchy?from=garbage", f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		// A new first child does not repeat A on the second page.
		newRoom := s.CreateRoom(f.alice, map[string]any{"name": "New", "invite": []string{f.bob.ID}})
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(newRoom)+"/join", f.bob.Token, map[string]any{}).Expect(t, 200, "")
		addSpaceChild(t, s, f.alice, f.S, newRoom, childContent(map[string]any{"order": "0"}))
		names[newRoom] = "New"
		expect("page 2 after an insert", getHierarchy(t, s, f.bob, f.S, "limit=2&from="+url.QueryEscape(tokens[0])).ids(), "Sub", "B")
		expect("walk after an insert", getHierarchy(t, s, f.bob, f.S, "max_depth=1").ids(), "S", "New", "A", "Sub", "K")

		// Removing a child (content without via) takes it out of the walk.
		addSpaceChild(t, s, f.alice, f.S, newRoom, map[string]any{})
		expect("walk after a removal", getHierarchy(t, s, f.bob, f.S, "max_depth=1").ids(), "S", "A", "Sub", "K")

		// Bad parameters.
		sp := "/_matrix/client/v1/rooms/" + url.PathEscape(f.S) + "/hierarchy"
		for _, q := range []string{"limit=0", "limit=-1", "limit=x", "max_depth=-1", "max_depth=x", "suggested_only=yes"} {
			s.Do("GET", sp+"?"+q, f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		}
		s.Do("GET", "/_matrix/client/v1/rooms/nonsense/hierarchy", f.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", sp, "", nil).Expect(t, 401, "M_MISSING_TOKEN")

		// A root the user may not see, or that does not exist, is 403.
		s.Do("GET", sp, f.carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(f.Gone)+"/hierarchy", f.bob.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(f.P)+"/hierarchy", f.bob.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		// A room that is not a space is its own hierarchy.
		expect("a plain room", getHierarchy(t, s, f.bob, f.A, "").ids(), "A")
		// Bob sees Deep as an invitee; a stranger sees only the knock room
		// below it, and none of the rest.
		expect("Deep as invitee", getHierarchy(t, s, f.bob, f.Deep, "").ids(), "Deep", "D1")
		s.Do("GET", "/_matrix/client/v1/rooms/"+url.PathEscape(f.Deep)+"/hierarchy", f.carol.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		expect("knock room as stranger", getHierarchy(t, s, f.carol, f.D1, "").ids(), "D1")

		// Leaving Sub hides B (restricted to Sub's members) from bob.
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(f.Sub)+"/leave", f.bob.Token, map[string]any{}).Expect(t, 200, "")
		expect("after leaving Sub", getHierarchy(t, s, f.bob, f.S, "").ids(), "S", "A", "K")
		if got := getHierarchy(t, s, f.alice, f.S, "").ids(); !slices.Contains(got, f.P) || !slices.Contains(got, f.B) {
			t.Errorf("alice's walk %v lacks her own rooms", short(got))
		}
	})
}

func TestRoomSummary(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		f := newSpaceFixture(t, s)
		pub := s.CreateRoom(f.alice, map[string]any{"preset": "public_chat", "name": "Public", "room_alias_name": "pub"})
		wr := s.CreateRoom(f.alice, map[string]any{"name": "Readable", "initial_state": []map[string]any{
			{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}})
		summary := func(u apitest.User, target string) *apitest.Response {
			t.Helper()
			return s.Do("GET", "/_matrix/client/v1/room_summary/"+url.PathEscape(target), u.Token, nil)
		}
		check := func(r *apitest.Response, roomID, membership string, want map[string]any) {
			t.Helper()
			r.Expect(t, 200, "")
			if r.String("room_id") != roomID || r.String("membership") != membership {
				t.Errorf("summary of %s: %s", roomID, r.Body)
			}
			if _, ok := r.JSON["children_state"]; ok {
				t.Errorf("summary has children_state: %s", r.Body)
			}
			for k, v := range want {
				if !reflect.DeepEqual(r.JSON[k], v) {
					t.Errorf("summary of %s: %s = %v, want %v; body %s", roomID, k, r.JSON[k], v, r.Body)
				}
			}
		}

		// A joined room: everything a client shows in a preview.
		check(summary(f.bob, f.A), f.A, "join", map[string]any{
			"name": "Room A", "topic": "All about A", "encryption": "m.megolm.v1.aes-sha2", "num_joined_members": 2.0,
			"join_rule": "invite", "world_readable": false, "room_version": s.Config.Rooms.DefaultVersion,
		})
		// guest_can_join follows m.room.guest_access (always forbidden: no guests).
		if g, ok := summary(f.bob, f.A).JSON["guest_can_join"].(bool); !ok || g {
			t.Errorf("guest_can_join of A is %v", g)
		}
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(f.A)+"/state/m.room.guest_access/", f.alice.Token, map[string]string{"guest_access": "forbidden"}).Expect(t, 200, "")
		check(summary(f.bob, f.A), f.A, "join", map[string]any{"guest_can_join": false})
		// An invited room (a space), by ID.
		check(summary(f.bob, f.Deep), f.Deep, "invite", map[string]any{"room_type": "m.space", "num_joined_members": 1.0})
		// A public room, by alias, for a stranger; also on both unstable paths.
		check(summary(f.carol, "#pub:aula.test"), pub, "leave", map[string]any{"join_rule": "public", "canonical_alias": "#pub:aula.test"})
		check(s.Do("GET", "/_matrix/client/unstable/im.nheko.summary/summary/"+url.PathEscape("#pub:aula.test"), f.carol.Token, nil), pub, "leave", nil)
		check(s.Do("GET", "/_matrix/client/unstable/im.nheko.summary/rooms/"+url.PathEscape(pub)+"/summary", f.carol.Token, nil), pub, "leave", nil)
		// A knock room, before and after knocking; a world_readable room.
		check(summary(f.carol, f.K), f.K, "leave", map[string]any{"join_rule": "knock"})
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(f.K), f.carol.Token, map[string]any{}).Expect(t, 200, "")
		check(summary(f.carol, f.K), f.K, "knock", nil)
		check(summary(f.carol, wr), wr, "leave", map[string]any{"world_readable": true})
		// The topic is the text/plain one of m.topic (spec v1.15) if any.
		wp := "/_matrix/client/v3/rooms/" + url.PathEscape(wr) + "/state/"
		s.Do("PUT", wp+"m.room.topic/", f.alice.Token, map[string]any{"topic": "fallback", "m.topic": map[string]any{
			"m.text": []map[string]any{{"mimetype": "text/html", "body": "<b>rich</b>"}, {"body": "plain"}}}}).Expect(t, 200, "")
		s.Do("PUT", wp+"m.room.avatar/", f.alice.Token, map[string]any{"url": "mxc://aula.test/abc"}).Expect(t, 200, "")
		check(summary(f.carol, wr), wr, "leave", map[string]any{"topic": "plain", "avatar_url": "mxc://aula.test/abc", "name": "Readable"})
		// A restricted room for a member of the allowed room, with the rule.
		check(summary(f.bob, f.B), f.B, "leave", map[string]any{"join_rule": "restricted", "allowed_room_ids": []any{f.Sub}})

		// Private rooms are 404 to those not in them, like unknown rooms
		// and aliases; the restricted room to those not in Sub.
		summary(f.carol, f.P).Expect(t, 404, "M_NOT_FOUND")
		summary(f.bob, f.P).Expect(t, 404, "M_NOT_FOUND")
		summary(f.carol, f.B).Expect(t, 404, "M_NOT_FOUND")
		summary(f.carol, f.S).Expect(t, 404, "M_NOT_FOUND")
		summary(f.carol, f.Gone).Expect(t, 404, "M_NOT_FOUND")
		summary(f.carol, "#nothing:aula.test").Expect(t, 404, "M_NOT_FOUND")
		summary(f.carol, "nonsense").Expect(t, 400, "M_INVALID_PARAM")
		// Bob is no longer in A after leaving: 404, like any private room.
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(f.A)+"/leave", f.bob.Token, map[string]any{}).Expect(t, 200, "")
		summary(f.bob, f.A).Expect(t, 404, "M_NOT_FOUND")
		// The alias of the invite-only space S is no way in for a stranger.
		summary(f.carol, "#uni:aula.test").Expect(t, 404, "M_NOT_FOUND")
		check(summary(f.alice, "#uni:aula.test"), f.S, "join", map[string]any{"num_joined_members": 2.0, "room_type": "m.space"})

		// aula asks for an access token, as the spec allows.
		s.Do("GET", "/_matrix/client/v1/room_summary/"+url.PathEscape(pub), "", nil).Expect(t, 401, "M_MISSING_TOKEN")
	})
}
