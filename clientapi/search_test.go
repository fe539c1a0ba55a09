package clientapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// srAnswer is search_categories.room_events of a /search answer.
type srAnswer struct {
	Count   *int `json:"count"`
	Results []struct {
		Rank    float64 `json:"rank"`
		Result  rmEvent `json:"result"`
		Context *struct {
			Start        string                       `json:"start"`
			End          string                       `json:"end"`
			EventsBefore []rmEvent                    `json:"events_before"`
			EventsAfter  []rmEvent                    `json:"events_after"`
			ProfileInfo  map[string]map[string]string `json:"profile_info"`
		} `json:"context"`
	} `json:"results"`
	Highlights []string             `json:"highlights"`
	State      map[string][]rmEvent `json:"state"`
	Groups     map[string]map[string]struct {
		Order     int      `json:"order"`
		Results   []string `json:"results"`
		NextBatch string   `json:"next_batch"`
	} `json:"groups"`
	NextBatch string `json:"next_batch"`
}

// srSearch runs POST /search with the room_events criteria and expects 200.
func srSearch(t *testing.T, s *apitest.Server, u apitest.User, criteria map[string]any, nextBatch string) srAnswer {
	t.Helper()
	path := "/_matrix/client/v3/search"
	if nextBatch != "" {
		path += "?next_batch=" + url.QueryEscape(nextBatch)
	}
	r := s.Do("POST", path, u.Token, map[string]any{"search_categories": map[string]any{"room_events": criteria}}).Expect(t, 200, "")
	var body struct {
		SearchCategories struct {
			RoomEvents *srAnswer `json:"room_events"`
		} `json:"search_categories"`
	}
	rmDecode(t, r, &body)
	a := body.SearchCategories.RoomEvents
	if a == nil || a.Count == nil || a.Results == nil || a.Highlights == nil {
		t.Fatalf("search answer without room_events, count, results or highlights: %s", r.Body)
	}
	return *a
}

// ids lists the event IDs of the results.
func (a srAnswer) ids() []string {
	out := []string{}
	for _, r := range a.Results {
		out = append(out, r.Result.EventID)
	}
	return out
}

// srAll pages through a search with next_batch and returns every result's
// event ID, checking that count stays the number of results.
func srAll(t *testing.T, s *apitest.Server, u apitest.User, criteria map[string]any, nextBatch string) []string {
	t.Helper()
	var all []string
	for range 100 {
		a := srSearch(t, s, u, criteria, nextBatch)
		all = append(all, a.ids()...)
		if a.NextBatch == "" {
			return all
		}
		nextBatch = a.NextBatch
	}
	t.Fatalf("search pagination never ended")
	return nil
}

func srSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSearch(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(alice.ID)+"/displayname", alice.Token, map[string]string{"displayname": "Alice A."}).Expect(t, 200, "")
		room := s.CreateRoom(alice, map[string]any{"name": "Fox den", "topic": "about foxes"})
		other := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, other, bob)
		m1 := s.SendText(alice, room, "The quick brown fox")
		m2 := s.SendText(bob, room, "a lazy dog")
		m3 := s.SendText(bob, room, "fox and dog are friends")
		m4 := s.SendText(alice, other, "a fox in the other room")
		img := s.Send(alice, other, "m.room.message", map[string]string{"msgtype": "m.image", "body": "a fox picture", "url": "mxc://aula.test/fox"})
		s.SendText(alice, room, "last words")
		name := rmStateEventID(t, s, alice, room, "m.room.name")
		topic := rmStateEventID(t, s, alice, room, "m.room.topic")

		// Every key by default: messages, the room name and the topic.
		a := srSearch(t, s, bob, map[string]any{"search_term": "fox"}, "")
		if want := []string{m1, m3, m4, img, name, topic}; !srSameSet(a.ids(), want) || *a.Count != len(want) {
			t.Fatalf("fox: %v (count %d), want %v", a.ids(), *a.Count, want)
		}
		for i, r := range a.Results {
			if r.Rank <= 0 || (i > 0 && r.Rank > a.Results[i-1].Rank) {
				t.Errorf("rank order: result %d has rank %v after %v", i, r.Rank, a.Results[max(i-1, 0)].Rank)
			}
			if r.Result.RoomID == "" || r.Result.Sender == "" || r.Result.Content == nil || r.Result.Unsigned["membership"] == nil {
				t.Errorf("result not a full client event: %+v", r.Result)
			}
			if r.Context != nil {
				t.Errorf("context without event_context: %+v", r.Context)
			}
		}
		if !slices.Contains(a.Highlights, "fox") || !slices.Contains(a.Highlights, "foxes") {
			t.Errorf("highlights %v, want fox and foxes (stemmed)", a.Highlights)
		}
		if a.NextBatch != "" || a.Groups != nil || a.State != nil {
			t.Errorf("unasked-for next_batch, groups or state: %+v", a)
		}

		// Keys, words (ANDed, last one a prefix), order.
		a = srSearch(t, s, bob, map[string]any{"search_term": "fox", "keys": []string{"content.body"}, "order_by": "recent"}, "")
		rmEqual(t, "recent bodies", a.ids(), []string{img, m4, m3, m1})
		a = srSearch(t, s, bob, map[string]any{"search_term": "fox", "keys": []string{"content.name", "content.topic"}}, "")
		if !srSameSet(a.ids(), []string{name, topic}) {
			t.Errorf("names and topics: %v", a.ids())
		}
		a = srSearch(t, s, bob, map[string]any{"search_term": "DOG fri"}, "")
		rmEqual(t, "dog fri", a.ids(), []string{m3})

		// The filter.
		for _, tc := range []struct {
			filter map[string]any
			want   []string
		}{
			{map[string]any{"rooms": []string{other}}, []string{m4, img}},
			{map[string]any{"not_rooms": []string{other}}, []string{m1, m3, name, topic}},
			{map[string]any{"senders": []string{bob.ID}}, []string{m3}},
			{map[string]any{"not_senders": []string{alice.ID}}, []string{m3}},
			{map[string]any{"types": []string{"m.room.n*"}}, []string{name}},
			{map[string]any{"not_types": []string{"m.room.message"}}, []string{name, topic}},
			{map[string]any{"contains_url": true}, []string{img}},
			{map[string]any{"rooms": []string{}}, []string{}},
		} {
			a = srSearch(t, s, bob, map[string]any{"search_term": "fox", "filter": tc.filter}, "")
			if !srSameSet(a.ids(), tc.want) {
				t.Errorf("filter %v: %v, want %v", tc.filter, a.ids(), tc.want)
			}
		}

		// Pagination, in both orders: every result once, count the total.
		for _, order := range []string{"rank", "recent"} {
			criteria := map[string]any{"search_term": "fox", "order_by": order, "filter": map[string]any{"limit": 2}}
			first := srSearch(t, s, bob, criteria, "")
			if len(first.Results) != 2 || first.NextBatch == "" || *first.Count != 6 {
				t.Fatalf("%s page 1: %d results, count %d, next_batch %q", order, len(first.Results), *first.Count, first.NextBatch)
			}
			all := srAll(t, s, bob, criteria, "")
			if len(all) != 6 || !srSameSet(all, []string{m1, m3, m4, img, name, topic}) {
				t.Errorf("%s pages: %v", order, all)
			}
			second := srSearch(t, s, bob, criteria, first.NextBatch)
			if *second.Count != 6 {
				t.Errorf("%s page 2 count %d", order, *second.Count)
			}
			// A token of the other order is refused.
			other := map[string]any{"search_term": "fox", "order_by": map[string]string{"rank": "recent", "recent": "rank"}[order]}
			s.Do("POST", "/_matrix/client/v3/search?next_batch="+url.QueryEscape(first.NextBatch), bob.Token,
				map[string]any{"search_categories": map[string]any{"room_events": other}}).Expect(t, 400, "M_INVALID_PARAM")
		}

		// A limit of 0 counts.
		a = srSearch(t, s, bob, map[string]any{"search_term": "fox", "filter": map[string]any{"limit": 0}}, "")
		if len(a.Results) != 0 || *a.Count != 6 || a.NextBatch != "" {
			t.Errorf("limit 0: %+v", a)
		}

		// Groups, and paging within one.
		criteria := map[string]any{"search_term": "fox", "order_by": "recent", "keys": []string{"content.body"},
			"filter": map[string]any{"limit": 1}, "groupings": map[string]any{"group_by": []map[string]string{{"key": "room_id"}, {"key": "sender"}}}}
		a = srSearch(t, s, bob, criteria, "")
		g, ok := a.Groups["room_id"][other]
		if !ok || !slices.Equal(g.Results, []string{img}) || g.Order != 0 || g.NextBatch == "" {
			t.Fatalf("room group: %+v", a.Groups)
		}
		if sg := a.Groups["sender"][alice.ID]; !slices.Equal(sg.Results, []string{img}) {
			t.Errorf("sender group: %+v", a.Groups)
		}
		rmEqual(t, "the other room's results", srAll(t, s, bob, criteria, g.NextBatch), []string{m4})
		rmEqual(t, "alice's results", srAll(t, s, bob, criteria, a.Groups["sender"][alice.ID].NextBatch), []string{m4, m1})
		criteria["order_by"] = "rank"
		a = srSearch(t, s, bob, criteria, "")
		for _, group := range []string{"room_id", "sender"} {
			for key, g := range a.Groups[group] {
				got := append(slices.Clone(g.Results), srAll(t, s, bob, criteria, g.NextBatch)...)
				var want []string
				for _, id := range []string{m1, m3, m4, img} {
					ev := rmGetEvent(t, s, bob, map[string]string{m1: room, m3: room, m4: other, img: other}[id], id)
					if (group == "room_id" && ev.RoomID == key) || (group == "sender" && ev.Sender == key) {
						want = append(want, id)
					}
				}
				if !srSameSet(got, want) {
					t.Errorf("rank group %s %s paged: %v, want %v", group, key, got, want)
				}
			}
		}

		// Context, profiles and state.
		a = srSearch(t, s, bob, map[string]any{"search_term": "lazy", "include_state": true,
			"event_context": map[string]any{"before_limit": 1, "after_limit": 2, "include_profile": true}}, "")
		if len(a.Results) != 1 || a.Results[0].Context == nil {
			t.Fatalf("lazy with context: %+v", a)
		}
		c := a.Results[0].Context
		rmEqual(t, "events_before", rmIDs(c.EventsBefore), []string{m1})
		rmEqual(t, "events_after", rmIDs(c.EventsAfter), []string{m3, rmMessages(t, s, bob, room, url.Values{"dir": {"b"}, "limit": {"1"}}).Chunk[0].EventID})
		if c.ProfileInfo[alice.ID]["displayname"] != "Alice A." || c.ProfileInfo[bob.ID] == nil {
			t.Errorf("profile_info: %v", c.ProfileInfo)
		}
		p := rmMessages(t, s, bob, room, url.Values{"dir": {"b"}, "limit": {"1"}, "from": {c.Start}})
		if len(p.Chunk) != 1 || p.Chunk[0].EventID == m1 || p.Chunk[0].EventID == m2 {
			t.Errorf("/messages from context start: %+v", p.Chunk)
		}
		if st := a.State[room]; len(st) == 0 || !slices.ContainsFunc(st, func(e rmEvent) bool { return e.Type == "m.room.create" }) {
			t.Errorf("state: %v", a.State)
		}
		a = srSearch(t, s, bob, map[string]any{"search_term": "lazy", "event_context": map[string]any{}}, "")
		if c := a.Results[0].Context; c == nil || len(c.EventsBefore) != 5 || len(c.EventsAfter) != 2 || c.ProfileInfo != nil {
			t.Errorf("default event_context: %+v", c)
		}

		// Terms that are query syntax to the engines are words.
		for _, term := range []string{`"`, `*`, `fox*`, `' OR 1=1 --`, `NEAR(fox`, `fox:*`, `fox & !dog`, `-dog`, `"fox" OR "dog"`, "fox\x00", `\`, ``, `   `} {
			srSearch(t, s, bob, map[string]any{"search_term": term}, "")
		}
		if a := srSearch(t, s, bob, map[string]any{"search_term": "fox NEAR dog"}, ""); len(a.Results) != 0 {
			t.Errorf("NEAR is a word, and no event has it: %v", a.ids())
		}
		if a := srSearch(t, s, bob, map[string]any{"search_term": "-fox dog"}, ""); !slices.Equal(a.ids(), []string{m3}) {
			t.Errorf("-fox is the word fox: %v", a.ids())
		}
	})
}

// rmStateEventID returns the event ID of the room's current state event of
// the type (empty state key).
func rmStateEventID(t *testing.T, s *apitest.Server, u apitest.User, roomID, typ string) string {
	t.Helper()
	for _, e := range rmStateList(t, s, u, roomID) {
		if e.Type == typ && e.StateKey != nil && *e.StateKey == "" {
			return e.EventID
		}
	}
	t.Fatalf("room %s has no %s", roomID, typ)
	return ""
}

func TestSearchErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		const path = "/_matrix/client/v3/search"
		cat := func(re any) map[string]any {
			return map[string]any{"search_categories": map[string]any{"room_events": re}}
		}
		for _, tc := range []struct {
			body    any
			errcode string
		}{
			{`{`, "M_NOT_JSON"},
			{`[]`, "M_BAD_JSON"},
			{map[string]any{}, "M_BAD_JSON"},
			{cat(map[string]any{}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": 1}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "order_by": "oldest"}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "keys": []string{"content.msgtype"}}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "keys": "content.body"}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "groupings": map[string]any{"group_by": []map[string]string{{"key": "type"}}}}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "filter": map[string]any{"rooms": "!a:b"}}), "M_BAD_JSON"},
			{cat(map[string]any{"search_term": "x", "event_context": map[string]any{"before_limit": -1}}), "M_BAD_JSON"},
		} {
			r := s.Do("POST", path, alice.Token, tc.body)
			if r.Status != 400 || r.Errcode() != tc.errcode {
				t.Errorf("%v: %d %s, want 400 %s", tc.body, r.Status, r.Body, tc.errcode)
			}
		}
		for _, tok := range []string{"nope", "e30", "eyJvIjoicmFuayIsImYiOi0xfQ"} {
			s.Do("POST", path+"?next_batch="+tok, alice.Token, cat(map[string]any{"search_term": "x"})).Expect(t, 400, "M_INVALID_PARAM")
		}
		s.Do("POST", path, "", cat(map[string]any{"search_term": "x"})).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("GET", path, alice.Token, nil).Expect(t, 405, "M_UNRECOGNIZED")
		// Other categories than room_events: nothing to answer.
		r := s.Do("POST", path, alice.Token, map[string]any{"search_categories": map[string]any{}}).Expect(t, 200, "")
		if string(r.Body) != "{\"search_categories\":{}}\n" {
			t.Errorf("no categories: %s", r.Body)
		}
		// No rooms: no results.
		if a := srSearch(t, s, alice, map[string]any{"search_term": "x"}, ""); len(a.Results) != 0 || *a.Count != 0 {
			t.Errorf("search without rooms: %+v", a)
		}
	})
}

// TestSearchVisibility checks that a search finds only what the user may
// see: the history visibility rules, left and forgotten rooms, redactions,
// ignored users and encrypted rooms.
func TestSearchVisibility(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		carol := s.Register("carol", "pw")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "initial_state": []map[string]any{
			{"type": "m.room.history_visibility", "state_key": "", "content": map[string]string{"history_visibility": "joined"}},
		}})
		s.SendText(alice, room, "secret before bob")
		rmInviteJoin(t, s, alice, room, bob)
		during := s.SendText(alice, room, "secret while bob is here")
		redacted := s.SendText(alice, room, "secret soon redacted")
		s.Leave(bob, room)
		s.SendText(alice, room, "secret after bob left")

		search := func(u apitest.User) srAnswer {
			t.Helper()
			return srSearch(t, s, u, map[string]any{"search_term": "secret", "event_context": map[string]any{"before_limit": 10, "after_limit": 10}}, "")
		}
		if a := search(alice); *a.Count != 4 {
			t.Errorf("alice: %v", a.ids())
		}
		// Bob left: he still finds what he saw, with no context he could
		// not see, and the count does not tell of the rest.
		a := search(bob)
		if !srSameSet(a.ids(), []string{during, redacted}) || *a.Count != 2 {
			t.Errorf("bob: %v count %d", a.ids(), *a.Count)
		}
		for _, r := range a.Results {
			for _, e := range append(r.Context.EventsBefore, r.Context.EventsAfter...) {
				if b, _ := e.Content["body"].(string); b == "secret before bob" || b == "secret after bob left" {
					t.Errorf("context shows bob %q", b)
				}
			}
		}
		if a := search(carol); len(a.Results) != 0 || *a.Count != 0 {
			t.Errorf("carol, never in the room: %v", a.ids())
		}
		// Redacted events are gone for everyone.
		rmRedact(t, s, alice, room, redacted, map[string]any{})
		if a := search(bob); !slices.Equal(a.ids(), []string{during}) {
			t.Errorf("bob after the redaction: %v", a.ids())
		}
		if a := search(alice); *a.Count != 3 || slices.Contains(a.ids(), redacted) {
			t.Errorf("alice after the redaction: %v", a.ids())
		}
		// A forgotten room is not searched.
		s.Do("POST", rmRoom(room, "forget"), bob.Token, map[string]any{}).Expect(t, 200, "")
		if a := search(bob); len(a.Results) != 0 {
			t.Errorf("bob after forgetting: %v", a.ids())
		}

		// Ignored users' events are left out.
		shared := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, shared, carol)
		s.SendText(alice, shared, "hello carol")
		mine := s.SendText(carol, shared, "hello alice")
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(carol.ID)+"/account_data/m.ignored_user_list", carol.Token,
			map[string]any{"ignored_users": map[string]any{alice.ID: map[string]any{}}}).Expect(t, 200, "")
		if a := srSearch(t, s, carol, map[string]any{"search_term": "hello"}, ""); !slices.Equal(a.ids(), []string{mine}) {
			t.Errorf("carol ignoring alice: %v", a.ids())
		}

		// Encrypted rooms have nothing to find.
		enc := s.CreateRoom(alice, map[string]any{"initial_state": []map[string]any{
			{"type": "m.room.encryption", "state_key": "", "content": map[string]string{"algorithm": "m.megolm.v1.aes-sha2"}},
		}})
		s.Send(alice, enc, "m.room.encrypted", map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "hello", "session_id": "s", "sender_key": "k", "device_id": "D"})
		if a := srSearch(t, s, alice, map[string]any{"search_term": "hello", "filter": map[string]any{"rooms": []string{enc}}}, ""); len(a.Results) != 0 {
			t.Errorf("encrypted room: %v", a.ids())
		}
	})
}

// TestSearchManyResults pages through more hits than one page.
func TestSearchManyResults(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		room := s.CreateRoom(alice, nil)
		var want []string
		for i := range 25 {
			want = append(want, s.SendText(alice, room, fmt.Sprintf("note number %d", i)))
		}
		slices.Reverse(want)
		got := srAll(t, s, alice, map[string]any{"search_term": "note", "order_by": "recent"}, "")
		rmEqual(t, "recent pages", got, want)
		a := srSearch(t, s, alice, map[string]any{"search_term": "note"}, "")
		if len(a.Results) != 10 || *a.Count != 25 || a.NextBatch == "" {
			t.Errorf("first rank page: %d results, count %d, next_batch %q", len(a.Results), *a.Count, a.NextBatch)
		}
	})
}

// TestSearchUpgradedRoom checks that a search in a room covers the rooms it
// was upgraded from, as Synapse's does.
func TestSearchUpgradedRoom(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		old := s.CreateRoom(alice, nil)
		before := s.SendText(alice, old, "words before the upgrade")
		r := s.Do("POST", rmRoom(old, "upgrade"), alice.Token, map[string]string{"new_version": "11"}).Expect(t, 200, "")
		room := r.String("replacement_room")
		after := s.SendText(alice, room, "words after the upgrade")
		s.SendText(alice, s.CreateRoom(alice, nil), "words elsewhere")
		a := srSearch(t, s, alice, map[string]any{"search_term": "words", "filter": map[string]any{"rooms": []string{room}}}, "")
		if !srSameSet(a.ids(), []string{before, after}) {
			t.Errorf("search in the upgraded room: %v, want %v", a.ids(), []string{before, after})
		}
	})
}
