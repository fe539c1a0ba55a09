package clientapi_test

import (
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// A room ID of room version 12 and later: "!" and 43 characters of unpadded
// URL-safe base64, no server name.
const confV12Room = "!xWg2_D8Jaa3XRJr-7OTYtQ3tjcPyObWUV0MxG_I4lMo"

func TestAccountDataRoundTrip(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		global := func(typ string) string {
			return "/_matrix/client/v3/user/" + confEsc(alice.ID) + "/account_data/" + confEsc(typ)
		}
		inRoom := func(room, typ string) string {
			return "/_matrix/client/v3/user/" + confEsc(alice.ID) + "/rooms/" + confEsc(room) + "/account_data/" + confEsc(typ)
		}

		confExpectError(t, "unset global", s.Do("GET", global("org.example.settings"), alice.Token, nil), 404, "M_NOT_FOUND")
		confExpectError(t, "unset room", s.Do("GET", inRoom("!r:aula.test", "m.tag"), alice.Token, nil), 404, "M_NOT_FOUND")

		content := `{"theme":"dark","nested":{"list":[1,2.5,"<b>&</b>",null,true],"empty":{}},"unicode":"żółw 🐢","big":9007199254740991}`
		r := s.Do("PUT", global("org.example.settings"), alice.Token, content).Expect(t, 200, "")
		confJSONEq(t, r.Body, `{}`)
		r = s.Do("GET", global("org.example.settings"), alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, content)
		if !strings.Contains(string(r.Body), "<b>&</b>") || !strings.Contains(string(r.Body), "9007199254740991") {
			t.Errorf("content altered: %s", r.Body)
		}
		// r0 serves the same data.
		confJSONEq(t, s.Do("GET", "/_matrix/client/r0/user/"+confEsc(alice.ID)+"/account_data/org.example.settings",
			alice.Token, nil).Expect(t, 200, "").Body, content)

		// Replacing replaces the whole object; {} is a valid value.
		s.Do("PUT", global("org.example.settings"), alice.Token, `{"theme":"light"}`).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", global("org.example.settings"), alice.Token, nil).Expect(t, 200, "").Body, `{"theme":"light"}`)
		s.Do("PUT", global("org.example.settings"), alice.Token, `{}`).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", global("org.example.settings"), alice.Token, nil).Expect(t, 200, "").Body, `{}`)

		// Types clients use.
		direct := `{"@bob:aula.test":["!dm:aula.test"]}`
		s.Do("PUT", global("m.direct"), alice.Token, direct).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", global("m.direct"), alice.Token, nil).Expect(t, 200, "").Body, direct)
		ignored := `{"ignored_users":{"@spam:aula.test":{}}}`
		s.Do("PUT", global("m.ignored_user_list"), alice.Token, ignored).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", global("m.ignored_user_list"), alice.Token, nil).Expect(t, 200, "").Body, ignored)

		// Per room: separate per room and from global data, no fallback.
		for _, room := range []string{"!r:aula.test", "!other:aula.test", confV12Room} {
			tags := `{"tags":{"m.favourite":{"order":0.5}},"room":"` + room + `"}`
			s.Do("PUT", inRoom(room, "m.tag"), alice.Token, tags).Expect(t, 200, "")
			confJSONEq(t, s.Do("GET", inRoom(room, "m.tag"), alice.Token, nil).Expect(t, 200, "").Body, tags)
		}
		confExpectError(t, "room type is not global", s.Do("GET", global("m.tag"), alice.Token, nil), 404, "M_NOT_FOUND")
		confExpectError(t, "global type is not per room", s.Do("GET", inRoom("!r:aula.test", "m.direct"), alice.Token, nil), 404, "M_NOT_FOUND")

		// The server-managed types can be read: m.push_rules is the user's
		// push rules, m.fully_read exists once a read marker is set.
		r = s.Do("GET", global("m.push_rules"), alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, r.Body, string(s.Do("GET", "/_matrix/client/v3/pushrules/", alice.Token, nil).Expect(t, 200, "").Body))
		confExpectError(t, "unset m.fully_read", s.Do("GET", inRoom("!r:aula.test", "m.fully_read"), alice.Token, nil), 404, "M_NOT_FOUND")

		// Type names up to 255 bytes.
		long := "org.example." + strings.Repeat("x", 255-len("org.example."))
		s.Do("PUT", global(long), alice.Token, `{"ok":true}`).Expect(t, 200, "")
		confJSONEq(t, s.Do("GET", global(long), alice.Token, nil).Expect(t, 200, "").Body, `{"ok":true}`)
		confExpectError(t, "long type", s.Do("PUT", global(long+"x"), alice.Token, `{}`), 400, "M_INVALID_PARAM")
	})
}

func TestAccountDataErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		global := func(user, typ string) string {
			return "/_matrix/client/v3/user/" + confEsc(user) + "/account_data/" + confEsc(typ)
		}
		inRoom := func(user, room, typ string) string {
			return "/_matrix/client/v3/user/" + confEsc(user) + "/rooms/" + confEsc(room) + "/account_data/" + confEsc(typ)
		}

		// Bob's data is Bob's alone, even when it exists.
		s.Do("PUT", global(bob.ID, "org.example.secret"), bob.Token, `{"pin":1234}`).Expect(t, 200, "")
		s.Do("PUT", inRoom(bob.ID, "!r:aula.test", "org.example.secret"), bob.Token, `{"pin":1234}`).Expect(t, 200, "")
		for _, p := range []string{
			global(bob.ID, "org.example.secret"),
			global(bob.ID, "org.example.unset"),
			inRoom(bob.ID, "!r:aula.test", "org.example.secret"),
			global("@nobody:aula.test", "org.example.secret"),
		} {
			confExpectError(t, "GET "+p, s.Do("GET", p, alice.Token, nil), 403, "M_FORBIDDEN")
			confExpectError(t, "PUT "+p, s.Do("PUT", p, alice.Token, `{"pin":0}`), 403, "M_FORBIDDEN")
			// Permission is checked before the body.
			confExpectError(t, "PUT bad body "+p, s.Do("PUT", p, alice.Token, `not json`), 403, "M_FORBIDDEN")
		}
		confJSONEq(t, s.Do("GET", global(bob.ID, "org.example.secret"), bob.Token, nil).Expect(t, 200, "").Body, `{"pin":1234}`)

		// Types the server manages: 405 M_BAD_JSON, global and per room,
		// whatever the body.
		for _, typ := range []string{"m.fully_read", "m.push_rules"} {
			for _, p := range []string{global(alice.ID, typ), inRoom(alice.ID, "!r:aula.test", typ)} {
				confExpectError(t, "PUT "+p, s.Do("PUT", p, alice.Token, `{"event_id":"$e"}`), 405, "M_BAD_JSON")
				confExpectError(t, "PUT bad body "+p, s.Do("PUT", p, alice.Token, `[]`), 405, "M_BAD_JSON")
			}
		}
		// Other m.* types are the clients' to set.
		s.Do("PUT", global(alice.ID, "m.fully_read.not"), alice.Token, `{}`).Expect(t, 200, "")

		// The content must be a JSON object.
		for _, body := range []string{`[]`, `"x"`, `1`, `null`, `true`} {
			confExpectError(t, "body "+body, s.Do("PUT", global(alice.ID, "org.example.x"), alice.Token, body), 400, "M_BAD_JSON")
			confExpectError(t, "room body "+body, s.Do("PUT", inRoom(alice.ID, "!r:aula.test", "org.example.x"), alice.Token, body), 400, "M_BAD_JSON")
		}
		for _, body := range []string{``, `{`, `{'a':1}`, `{"a":1,}`} {
			confExpectError(t, "body "+body, s.Do("PUT", global(alice.ID, "org.example.x"), alice.Token, body), 400, "M_NOT_JSON")
		}
		confExpectError(t, "nothing stored", s.Do("GET", global(alice.ID, "org.example.x"), alice.Token, nil), 404, "M_NOT_FOUND")

		// Room IDs are checked: 400 M_INVALID_PARAM.
		for _, room := range []string{
			"@alice:aula.test", "#alias:aula.test", "room", "!", "!abc:", "!abc", "!abc:bad server",
			confV12Room[:len(confV12Room)-1], confV12Room + "A", "!xWg2_D8Jaa3XRJr+7OTYtQ3tjcPyObWUV0MxG_I4lMo",
		} {
			confExpectError(t, "PUT room "+room, s.Do("PUT", inRoom(alice.ID, room, "m.tag"), alice.Token, `{}`), 400, "M_INVALID_PARAM")
			confExpectError(t, "GET room "+room, s.Do("GET", inRoom(alice.ID, room, "m.tag"), alice.Token, nil), 400, "M_INVALID_PARAM")
		}
		// Valid forms: server names with ports and IP literals, and v12 IDs.
		for _, room := range []string{"!a:aula.test:8448", "!a:127.0.0.1", "!a:[::1]:8448", confV12Room} {
			s.Do("PUT", inRoom(alice.ID, room, "m.tag"), alice.Token, `{"tags":{}}`).Expect(t, 200, "")
			confJSONEq(t, s.Do("GET", inRoom(alice.ID, room, "m.tag"), alice.Token, nil).Expect(t, 200, "").Body, `{"tags":{}}`)
		}
	})
}

func TestFilters(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		post := func(u apitest.User, filter string) string {
			t.Helper()
			r := s.Do("POST", "/_matrix/client/v3/user/"+confEsc(u.ID)+"/filter", u.Token, filter).Expect(t, 200, "")
			id, ok := r.JSON["filter_id"].(string)
			if !ok || id == "" || strings.HasPrefix(id, "{") || len(r.JSON) != 1 {
				t.Fatalf("bad answer to POST filter: %s", r.Body)
			}
			return id
		}
		get := func(u apitest.User, id string) *apitest.Response {
			return s.Do("GET", "/_matrix/client/v3/user/"+confEsc(u.ID)+"/filter/"+confEsc(id), u.Token, nil)
		}

		// The filters real clients upload, and the spec's example. GET must
		// give back the same JSON: matrix-js-sdk compares it with what it
		// would upload and uploads again when they differ.
		filters := map[string]string{
			// matrix-js-sdk (Element Web, Cinny) sync filter, lazy loading on.
			"js-sdk sync": `{"room":{"timeline":{"unread_thread_notifications":true},"state":{"lazy_load_members":true}}}`,
			// matrix-js-sdk before v1.4 servers: the MSC3773 name.
			"js-sdk sync msc3773": `{"room":{"timeline":{"org.matrix.msc3773.unread_thread_notifications":true},"state":{"lazy_load_members":true}}}`,
			// matrix-js-sdk left rooms.
			"js-sdk left rooms": `{"room":{"timeline":{"limit":1},"include_leave":true}}`,
			// Element Web thread panel, all threads and my threads.
			"threads all":      `{"room":{"timeline":{"related_by_rel_types":["m.thread"]}}}`,
			"threads mine":     `{"room":{"timeline":{"related_by_rel_types":["m.thread"],"related_by_senders":["` + alice.ID + `"]}}}`,
			"threads unstable": `{"room":{"timeline":{"io.element.relation_types":["m.thread"],"io.element.relation_senders":["` + alice.ID + `"]}}}`,
			// Element Web file panel.
			"files": `{"room":{"timeline":{"contains_url":true,"types":["m.room.message"]}}}`,
			// matrix-rust-sdk / ruma (Element X) lazy-loading filter.
			"rust-sdk lazy":           `{"room":{"state":{"lazy_load_members":true}}}`,
			"rust-sdk lazy redundant": `{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true},"timeline":{"limit":20}}}`,
			// Empty filter.
			"empty": `{}`,
			// The spec's example.
			"spec": `{"room":{"state":{"types":["m.room.*"],"not_rooms":["!726s6s6q:example.com"]},
				"timeline":{"limit":10,"types":["m.room.message"],"not_rooms":["!726s6s6q:example.com"],"not_senders":["@spam:example.com"]},
				"ephemeral":{"types":["m.receipt","m.typing"],"not_rooms":["!726s6s6q:example.com"],"not_senders":["@spam:example.com"]}},
				"presence":{"types":["m.presence"],"not_senders":["@alice:example.com"]},
				"event_format":"client","event_fields":["type","content","sender"]}`,
			// Every field, with null, v12 room IDs and unknown keys.
			"everything": `{"event_fields":[],"event_format":"federation","presence":{"limit":0,"senders":[]},
				"account_data":{"not_types":["*"]},"org.example.future":{"x":1},
				"room":{"rooms":["` + confV12Room + `"],"not_rooms":null,"include_leave":false,
				"account_data":{"limit":5},"ephemeral":{"types":[]},
				"state":{"lazy_load_members":false,"senders":["@a:b.example"],"contains_url":null},
				"timeline":{"limit":1e2,"not_types":["m.room.member"]}}}`,
		}
		ids := map[string]string{}
		for name, f := range filters {
			id := post(alice, f)
			if prev, dup := ids[id]; dup {
				t.Errorf("filters %q and %q share ID %s", name, prev, id)
			}
			ids[id] = name
			confJSONEq(t, get(alice, id).Expect(t, 200, "").Body, f)
		}

		// An identical filter reuses its ID (Element uploads its filter at
		// every start); the same filter from another user does not.
		sync := filters["js-sdk sync"]
		id := post(alice, sync)
		if again := post(alice, sync); again != id {
			t.Errorf("identical filter got a new ID: %s, then %s", id, again)
		}
		// Whitespace differences are the same filter.
		if again := post(alice, "  {\"room\": {\"timeline\": {\"unread_thread_notifications\": true},\n \"state\": {\"lazy_load_members\": true}}}  "); again != id {
			t.Errorf("identical filter with other whitespace got a new ID: %s, then %s", id, again)
		}
		bobID := post(bob, sync)
		confJSONEq(t, get(bob, bobID).Expect(t, 200, "").Body, sync)

		// Other users' filters: 403, whether or not the ID exists.
		confExpectError(t, "GET bob's filter", s.Do("GET", "/_matrix/client/v3/user/"+confEsc(bob.ID)+"/filter/"+bobID, alice.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "GET bob's unknown filter", s.Do("GET", "/_matrix/client/v3/user/"+confEsc(bob.ID)+"/filter/9999", alice.Token, nil), 403, "M_FORBIDDEN")
		confExpectError(t, "POST as bob", s.Do("POST", "/_matrix/client/v3/user/"+confEsc(bob.ID)+"/filter", alice.Token, `{}`), 403, "M_FORBIDDEN")
		confExpectError(t, "POST as nobody", s.Do("POST", "/_matrix/client/v3/user/"+confEsc("@nobody:aula.test")+"/filter", alice.Token, `{}`), 403, "M_FORBIDDEN")

		// Unknown IDs: 404 M_NOT_FOUND (matrix-js-sdk then uploads anew).
		for _, unknown := range []string{"9999", "abc", "-1", "{}", "1.0", "01x"} {
			confExpectError(t, "GET filter "+unknown, get(alice, unknown), 404, "M_NOT_FOUND")
		}

		// Invalid filters: 400 M_BAD_JSON (or M_NOT_JSON), nothing stored.
		for _, bad := range []string{
			`[]`, `"filter"`, `null`,
			`{"room":[]}`,
			`{"room":{"timeline":{"limit":-1}}}`,
			`{"room":{"timeline":{"limit":"10"}}}`,
			`{"room":{"timeline":{"limit":1.5}}}`,
			`{"room":{"rooms":"!r:aula.test"}}`,
			`{"room":{"rooms":["not-a-room"]}}`,
			`{"room":{"state":{"senders":["alice"]}}}`,
			`{"room":{"include_leave":"yes"}}`,
			`{"room":{"timeline":{"types":[1]}}}`,
			`{"event_format":"xml"}`,
			`{"event_fields":"content.body"}`,
			`{"presence":{"not_senders":["@bad"]}}`,
			`{"room":{"state":{"lazy_load_members":"true"}}}`,
		} {
			confExpectError(t, "filter "+bad, s.Do("POST", "/_matrix/client/v3/user/"+confEsc(alice.ID)+"/filter", alice.Token, bad), 400, "M_BAD_JSON")
		}
		for _, bad := range []string{``, `{`, `{"room":}`} {
			confExpectError(t, "filter "+bad, s.Do("POST", "/_matrix/client/v3/user/"+confEsc(alice.ID)+"/filter", alice.Token, bad), 400, "M_NOT_JSON")
		}
	})
}
