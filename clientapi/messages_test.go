package clientapi_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// rmFilter is a /messages query with a filter.
func rmFilter(dir, filter string) url.Values {
	return url.Values{"dir": {dir}, "filter": {filter}, "limit": {"100"}}
}

// rmReversed returns a reversed copy.
func rmReversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestMessagesPagination(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		setup := rmAll(t, s, alice, room, "f", 100) // create, member, power levels, ...
		if len(setup) == 0 || setup[0].Type != "m.room.create" {
			t.Fatalf("history does not start with the create event: %+v", setup)
		}
		var bodies []string
		for i := range 25 {
			bodies = append(bodies, fmt.Sprintf("m%02d", i))
			s.SendText(alice, room, bodies[i])
		}
		all := rmAll(t, s, alice, room, "f", 1000)
		if len(all) != len(setup)+25 {
			t.Fatalf("got %d events, want %d", len(all), len(setup)+25)
		}
		rmEqual(t, "setup unchanged", rmIDs(all[:len(setup)]), rmIDs(setup))
		rmEqual(t, "messages in order", rmBodies(all), bodies)

		// dir=b without from: newest first, in pages; start is a token, end
		// leads on; the last page has no end.
		p1 := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"10"}})
		rmEqual(t, "page 1", rmBodies(p1.Chunk), rmReversed(bodies[15:]))
		if p1.Start == "" || p1.End == nil {
			t.Fatalf("page 1: start %q end %v", p1.Start, p1.End)
		}
		p2 := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"10"}, "from": {*p1.End}})
		rmEqual(t, "page 2", rmBodies(p2.Chunk), rmReversed(bodies[5:15]))
		if p2.Start != *p1.End {
			t.Errorf("start = %q, want the from token %q", p2.Start, *p1.End)
		}
		p3 := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"100"}, "from": {*p2.End}})
		rmEqual(t, "page 3", rmIDs(p3.Chunk), rmReversed(rmIDs(all[:len(setup)+5])))
		if p3.End != nil {
			t.Errorf("end = %q at the start of the room, want none", *p3.End)
		}
		// A page that ends exactly at the first event also has no end.
		exact := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {fmt.Sprint(len(setup) + 5)}, "from": {*p2.End}})
		if len(exact.Chunk) != len(setup)+5 || exact.End != nil {
			t.Errorf("exact last page: %d events, end %v", len(exact.Chunk), exact.End)
		}

		// dir=f from a dir=b end token continues forwards from that point.
		f := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"3"}, "from": {*p1.End}})
		rmEqual(t, "forward from end", rmBodies(f.Chunk), bodies[15:18])
		// dir=f reaching the newest event: no end.
		fEnd := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"100"}, "from": {*p1.End}})
		rmEqual(t, "forward to the end", rmBodies(fEnd.Chunk), bodies[15:])
		if fEnd.End != nil {
			t.Errorf("dir=f at the newest event: end %q, want none", *fEnd.End)
		}
		// dir=f without from starts at the create event.
		fStart := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"2"}})
		rmEqual(t, "forward from the start", rmIDs(fStart.Chunk), rmIDs(all[:2]))
		if fStart.End == nil || fStart.Start == "" {
			t.Errorf("dir=f from the start: start %q end %v", fStart.Start, fStart.End)
		}

		// to: stop at a token, in both directions.
		between := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"100"}, "to": {*p2.End}})
		rmEqual(t, "b to", rmBodies(between.Chunk), rmReversed(bodies[5:]))
		if between.End != nil {
			t.Errorf("reaching to: end %q, want none", *between.End)
		}
		fwd := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"100"}, "from": {*p2.End}, "to": {*p1.End}})
		rmEqual(t, "f from to", rmBodies(fwd.Chunk), bodies[5:15])
		short := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"4"}, "from": {*p2.End}, "to": {*p1.End}})
		rmEqual(t, "f from to, limited", rmBodies(short.Chunk), bodies[5:9])
		if short.End == nil {
			t.Error("limited before to: no end")
		}

		// limit: 0 returns nothing but an end to go on from; the default
		// is 10; more than 1000 is capped.
		zero := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"0"}})
		if len(zero.Chunk) != 0 || zero.End == nil {
			t.Errorf("limit=0: %d events, end %v", len(zero.Chunk), zero.End)
		}
		if n := len(rmMessages(t, s, alice, room, url.Values{"dir": {"b"}}).Chunk); n != 10 {
			t.Errorf("default limit gave %d events", n)
		}
		if n := len(rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "limit": {"5000"}}).Chunk); n != len(all) {
			t.Errorf("limit=5000 gave %d events", n)
		}
		// A token past the end: dir=b starts at the newest event, dir=f
		// finds nothing and has no end.
		far := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"1"}, "from": {"t999999"}})
		rmEqual(t, "from the future", rmBodies(far.Chunk), []string{"m24"})
		if far.Start != "t999999" {
			t.Errorf("start = %q, want the from token", far.Start)
		}
		none := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "from": {"t999999"}})
		if len(none.Chunk) != 0 || none.End != nil {
			t.Errorf("dir=f from the future: %d events, end %v", len(none.Chunk), none.End)
		}
		// A /sync-style stream token: the point after the room's last event
		// at that position.
		pos, err := s.App.DB.StreamPosition(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s.SendText(alice, room, "later")
		sp := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"1"}, "from": {fmt.Sprintf("s%d", pos)}})
		rmEqual(t, "from a stream token", rmBodies(sp.Chunk), []string{"m24"})
		sf := rmMessages(t, s, alice, room, url.Values{"dir": {"f"}, "from": {fmt.Sprintf("s%d", pos)}})
		rmEqual(t, "forward from a stream token", rmBodies(sf.Chunk), []string{"later"})
	})
}

func TestMessagesErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		s.SendText(alice, room, "hello")
		get := func(u apitest.User, roomID, query string) *apitest.Response {
			return s.Do("GET", rmRoom(roomID, "messages")+"?"+query, u.Token, nil)
		}
		confExpectError(t, "no dir", get(alice, room, ""), 400, "M_MISSING_PARAM")
		confExpectError(t, "no dir", get(alice, room, "limit=3"), 400, "M_MISSING_PARAM")
		confExpectError(t, "bad dir", get(alice, room, "dir=x"), 400, "M_INVALID_PARAM")
		confExpectError(t, "bad dir", get(alice, room, "dir=B"), 400, "M_INVALID_PARAM")
		for _, l := range []string{"-1", "abc", "1.5", "99999999999999999999"} {
			confExpectError(t, "limit="+l, get(alice, room, "dir=b&limit="+l), 400, "M_INVALID_PARAM")
		}
		for _, tok := range []string{"garbage", "t", "t-3", "tx", "s", "s-1", "12", "t1_2"} {
			confExpectError(t, "from="+tok, get(alice, room, "dir=b&from="+url.QueryEscape(tok)), 400, "M_INVALID_PARAM")
			confExpectError(t, "to="+tok, get(alice, room, "dir=f&to="+url.QueryEscape(tok)), 400, "M_INVALID_PARAM")
		}
		confExpectError(t, "filter not JSON", get(alice, room, "dir=b&filter="+url.QueryEscape("{nope")), 400, "M_NOT_JSON")
		confExpectError(t, "filter not an object", get(alice, room, "dir=b&filter="+url.QueryEscape("[1]")), 400, "M_BAD_JSON")
		confExpectError(t, "filter with bad types", get(alice, room, "dir=b&filter="+url.QueryEscape(`{"types":"m.room.message"}`)), 400, "M_BAD_JSON")
		// Not a member; an unknown room; no token.
		confExpectError(t, "non-member", get(bob, room, "dir=b"), 403, "M_FORBIDDEN")
		s.Invite(alice, room, bob)
		confExpectError(t, "invited", get(bob, room, "dir=b"), 403, "M_FORBIDDEN")
		confExpectError(t, "unknown room", get(alice, "!nowhere:aula.test", "dir=b"), 403, "M_FORBIDDEN")
		confExpectError(t, "no token", s.Do("GET", rmRoom(room, "messages")+"?dir=b", "", nil), 401, "M_MISSING_TOKEN")
	})
}

func TestMessagesFilter(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		rmInviteJoin(t, s, alice, room, bob)
		rmInviteJoin(t, s, alice, room, carol)
		s.SendText(alice, room, "a1")
		s.Send(bob, room, "m.room.message", map[string]string{"msgtype": "m.image", "body": "b-image", "url": "mxc://aula.test/img"})
		s.Send(bob, room, "org.example.ping", map[string]string{"body": "b-ping"})
		s.SendText(bob, room, "b2")
		s.Send(alice, room, "m.room.message", map[string]any{"msgtype": "m.file", "body": "a-badurl", "url": 5})
		s.SendText(alice, room, "a3")
		bodies := func(evs []rmEvent) []string {
			out := []string{}
			for _, e := range evs {
				if b := e.body(); b != "" {
					out = append(out, b)
				}
			}
			return out
		}
		cases := []struct {
			filter string
			want   []string
		}{
			{`{}`, []string{"a1", "b-image", "b-ping", "b2", "a-badurl", "a3"}},
			{`{"types":["m.room.message"]}`, []string{"a1", "b-image", "b2", "a-badurl", "a3"}},
			{`{"types":["org.*"]}`, []string{"b-ping"}},
			{`{"not_types":["m.room.message"]}`, []string{"b-ping"}},
			{`{"types":["m.room.*"],"not_types":["m.room.member"]}`, []string{"a1", "b-image", "b2", "a-badurl", "a3"}},
			{`{"senders":["` + bob.ID + `"]}`, []string{"b-image", "b-ping", "b2"}},
			{`{"not_senders":["` + bob.ID + `"]}`, []string{"a1", "a-badurl", "a3"}},
			{`{"senders":["` + carol.ID + `"]}`, []string{}},
			{`{"senders":[]}`, []string{}},
			{`{"contains_url":true}`, []string{"b-image"}}, // a url that is not a string does not count
			{`{"contains_url":false,"types":["m.room.message"]}`, []string{"a1", "b2", "a-badurl", "a3"}},
			{`{"rooms":["!elsewhere:aula.test"]}`, []string{}},
			{`{"not_rooms":["` + room + `"]}`, []string{}},
			{`{"rooms":["` + room + `"],"senders":["` + alice.ID + `"],"types":["m.room.message"]}`, []string{"a1", "a-badurl", "a3"}},
			{`{"unknown_key":1,"types":null}`, []string{"a1", "b-image", "b-ping", "b2", "a-badurl", "a3"}},
		}
		for _, tc := range cases {
			got := bodies(rmMessages(t, s, alice, room, rmFilter("f", tc.filter)).Chunk)
			rmEqual(t, "filter "+tc.filter, got, tc.want)
			back := bodies(rmMessages(t, s, carol, room, rmFilter("b", tc.filter)).Chunk)
			rmEqual(t, "filter dir=b "+tc.filter, back, rmReversed(tc.want))
		}
		// The filter's limit applies when the query has none; the query's
		// limit wins otherwise.
		p := rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "filter": {`{"limit":2,"types":["m.room.message"]}`}})
		rmEqual(t, "filter limit", bodies(p.Chunk), []string{"a3", "a-badurl"})
		if p.End == nil {
			t.Fatal("filter limit: no end")
		}
		p = rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"3"}, "filter": {`{"limit":2,"types":["m.room.message"]}`}})
		rmEqual(t, "query limit", bodies(p.Chunk), []string{"a3", "a-badurl", "b2"})
		// Paging with a filter goes on where the last page stopped.
		p = rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "limit": {"2"}, "from": {*p.End}, "filter": {`{"types":["m.room.message"]}`}})
		rmEqual(t, "next filtered page", bodies(p.Chunk), []string{"b-image", "a1"})

		// lazy_load_members: state holds the member events of the chunk's
		// senders (and only theirs).
		lazy := rmMessages(t, s, carol, room, rmFilter("b", `{"lazy_load_members":true,"senders":["`+bob.ID+`"]}`))
		var members []string
		for _, e := range lazy.State {
			if e.Type != "m.room.member" || e.StateKey == nil {
				t.Fatalf("lazy state has %+v", e)
			}
			members = append(members, *e.StateKey+":"+fmt.Sprint(e.Content["membership"]))
		}
		rmEqual(t, "lazy members", members, []string{bob.ID + ":join"})
		lazy = rmMessages(t, s, carol, room, rmFilter("f", `{"lazy_load_members":true,"types":["m.room.message"]}`))
		members = members[:0]
		for _, e := range lazy.State {
			members = append(members, *e.StateKey)
		}
		slices.Sort(members)
		want := []string{alice.ID, bob.ID}
		slices.Sort(want)
		rmEqual(t, "lazy members of two senders", members, want)
		// Without lazy loading there is no state.
		if p := rmMessages(t, s, carol, room, rmFilter("f", `{"types":["m.room.message"]}`)); len(p.State) != 0 {
			t.Errorf("state without lazy_load_members: %+v", p.State)
		}
		// Every event carries the requester's membership at that point.
		for _, e := range rmAll(t, s, carol, room, "f", 100) {
			if e.Unsigned["membership"] == nil {
				t.Errorf("event %s (%s) without unsigned.membership", e.EventID, e.Type)
			}
		}
	})
}

// A filter that matches nothing does not make a request walk the whole
// room: it returns an empty chunk with an end token to go on from.
func TestMessagesFilterScanBound(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		room := s.CreateRoom(alice, nil)
		for i := range 1100 {
			s.Do("PUT", rmRoom(room, "send", "m.room.message", fmt.Sprint("t", i)), alice.Token, map[string]string{"body": "x"}).Expect(t, 200, "")
		}
		p := rmMessages(t, s, alice, room, rmFilter("b", `{"types":["nothing.matches"]}`))
		if len(p.Chunk) != 0 || p.End == nil {
			t.Fatalf("chunk %d, end %v; want an empty chunk and an end", len(p.Chunk), p.End)
		}
		p = rmMessages(t, s, alice, room, url.Values{"dir": {"b"}, "from": {*p.End}, "filter": {`{"types":["nothing.matches"]}`}})
		if len(p.Chunk) != 0 || p.End != nil {
			t.Fatalf("second page: chunk %d, end %v; want the start of the room", len(p.Chunk), p.End)
		}
	})
}
