package syncapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/mxerr"
)

func ptr[T any](v T) *T { return &v }

// v12 is a room ID of room version 12: "!" and 43 URL-safe base64 characters.
const v12 = "!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_"

func TestParseFilterValid(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Filter
	}{
		{"empty", `{}`, Filter{}},
		{"whitespace", " \n{ }\t", Filter{}},
		{
			// matrix-rust-sdk FilterDefinition::with_lazy_loading (Element X),
			// and matrix-js-sdk with lazyLoadMembers but no thread support.
			"lazy loading on state",
			`{"room":{"state":{"lazy_load_members":true}}}`,
			Filter{Room: RoomFilter{State: RoomEventFilter{LazyLoadMembers: true}}},
		},
		{
			// matrix-js-sdk default sync filter (Element Web, Cinny).
			"element web sync filter",
			`{"room":{"timeline":{"unread_thread_notifications":true},"state":{"lazy_load_members":true}}}`,
			Filter{Room: RoomFilter{
				Timeline: RoomEventFilter{UnreadThreadNotifications: true},
				State:    RoomEventFilter{LazyLoadMembers: true},
			}},
		},
		{
			// matrix-js-sdk initial sync, sent inline with initialSyncLimit.
			"element web initial inline filter",
			`{"room":{"timeline":{"unread_thread_notifications":true,"limit":20},"state":{"lazy_load_members":true}}}`,
			Filter{Room: RoomFilter{
				Timeline: RoomEventFilter{EventFilter: EventFilter{Limit: ptr(20)}, UnreadThreadNotifications: true},
				State:    RoomEventFilter{LazyLoadMembers: true},
			}},
		},
		{
			"timeline with threads and lazy loading",
			`{"room":{"timeline":{"unread_thread_notifications":true,"lazy_load_members":true}}}`,
			Filter{Room: RoomFilter{Timeline: RoomEventFilter{UnreadThreadNotifications: true, LazyLoadMembers: true}}},
		},
		{
			"unstable MSC3773 name",
			`{"room":{"timeline":{"org.matrix.msc3773.unread_thread_notifications":true}}}`,
			Filter{Room: RoomFilter{Timeline: RoomEventFilter{UnreadThreadNotifications: true}}},
		},
		{
			// matrix-js-sdk syncLeftRooms.
			"left rooms",
			`{"room":{"timeline":{"limit":1},"include_leave":true}}`,
			Filter{Room: RoomFilter{IncludeLeave: true, Timeline: RoomEventFilter{EventFilter: EventFilter{Limit: ptr(1)}}}},
		},
		{
			// matrix-js-sdk thread panel: relation filters are not in the
			// spec's filter, so they are ignored.
			"element thread panel",
			`{"room":{"timeline":{"related_by_rel_types":["m.thread"],"related_by_senders":["@alice:example.org"]}}}`,
			Filter{},
		},
		{
			"redundant members and contains_url",
			`{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true},"timeline":{"contains_url":false}}}`,
			Filter{Room: RoomFilter{
				State:    RoomEventFilter{LazyLoadMembers: true, IncludeRedundantMembers: true},
				Timeline: RoomEventFilter{ContainsURL: ptr(false)},
			}},
		},
		{
			"spec example",
			`{"room":{"state":{"types":["m.room.*"],"not_rooms":["!726s6s6q:example.com"]},
			"timeline":{"limit":10,"types":["m.room.message"],"not_rooms":["!726s6s6q:example.com"],"not_senders":["@spam:example.com"]},
			"ephemeral":{"types":["m.receipt","m.typing"],"not_rooms":["!726s6s6q:example.com"],"not_senders":["@spam:example.com"]}},
			"presence":{"types":["m.presence"],"not_senders":["@alice:example.com"]},
			"event_format":"client","event_fields":["type","content","sender"]}`,
			Filter{
				EventFields: []string{"type", "content", "sender"},
				EventFormat: "client",
				Presence:    EventFilter{Types: []string{"m.presence"}, NotSenders: []string{"@alice:example.com"}},
				Room: RoomFilter{
					State: RoomEventFilter{EventFilter: EventFilter{Types: []string{"m.room.*"}}, NotRooms: []string{"!726s6s6q:example.com"}},
					Timeline: RoomEventFilter{
						EventFilter: EventFilter{Limit: ptr(10), Types: []string{"m.room.message"}, NotSenders: []string{"@spam:example.com"}},
						NotRooms:    []string{"!726s6s6q:example.com"},
					},
					Ephemeral: RoomEventFilter{
						EventFilter: EventFilter{Types: []string{"m.receipt", "m.typing"}, NotSenders: []string{"@spam:example.com"}},
						NotRooms:    []string{"!726s6s6q:example.com"},
					},
				},
			},
		},
		{
			"zero limits and room lists",
			`{"room":{"timeline":{"limit":20},"state":{"not_types":["m.room.member"]},"ephemeral":{"limit":0,"not_types":["*"]},
			"include_leave":false,"rooms":["!dee:pik-test"],"not_rooms":["!gee:pik-test"],"account_data":{"limit":0,"types":["*"]}}}`,
			Filter{Room: RoomFilter{
				Rooms:       []string{"!dee:pik-test"},
				NotRooms:    []string{"!gee:pik-test"},
				Timeline:    RoomEventFilter{EventFilter: EventFilter{Limit: ptr(20)}},
				State:       RoomEventFilter{EventFilter: EventFilter{NotTypes: []string{"m.room.member"}}},
				Ephemeral:   RoomEventFilter{EventFilter: EventFilter{Limit: ptr(0), NotTypes: []string{"*"}}},
				AccountData: RoomEventFilter{EventFilter: EventFilter{Limit: ptr(0), Types: []string{"*"}}},
			}},
		},
		{
			"empty lists stay empty",
			`{"presence":{"types":[]},"account_data":{"senders":[]},"room":{"rooms":[],"timeline":{"rooms":[]}},"event_fields":[]}`,
			Filter{
				EventFields: []string{},
				Presence:    EventFilter{Types: []string{}},
				AccountData: EventFilter{Senders: []string{}},
				Room:        RoomFilter{Rooms: []string{}, Timeline: RoomEventFilter{Rooms: []string{}}},
			},
		},
		{
			"null reads as absent",
			`{"event_fields":null,"event_format":null,"presence":null,"room":{"rooms":null,"timeline":{"limit":null,"types":null,"contains_url":null}}}`,
			Filter{},
		},
		{
			"unknown keys ignored at every level",
			`{"org.matrix.msc9999.future":true,"Room":"x","presence":{"future":1,"Limit":-1},
			"room":{"future":[1],"timeline":{"future":{},"TYPES":"x","rooms_":3}}}`,
			Filter{},
		},
		{
			"federation format and escaped field paths",
			`{"event_format":"federation","event_fields":["content.m\\.relates_to"]}`,
			Filter{EventFormat: "federation", EventFields: []string{`content.m\.relates_to`}},
		},
		{
			"integral limits in other spellings",
			`{"presence":{"limit":10.0},"account_data":{"limit":1e2},"room":{"timeline":{"limit":-0},"state":{"limit":99999999999999999999}}}`,
			Filter{
				Presence:    EventFilter{Limit: ptr(10)},
				AccountData: EventFilter{Limit: ptr(100)},
				Room: RoomFilter{
					Timeline: RoomEventFilter{EventFilter: EventFilter{Limit: ptr(0)}},
					State:    RoomEventFilter{EventFilter: EventFilter{Limit: ptr(MaxLimit)}},
				},
			},
		},
		{
			"room and user ID forms",
			`{"room":{"rooms":["` + v12 + `","!a:127.0.0.1:8448","!a:[::1]","!:example.org"],
			"timeline":{"senders":["@alice:example.org","@Old=Style:[2001:db8::1]:443","@:x"]}}}`,
			Filter{Room: RoomFilter{
				Rooms:    []string{v12, "!a:127.0.0.1:8448", "!a:[::1]", "!:example.org"},
				Timeline: RoomEventFilter{EventFilter: EventFilter{Senders: []string{"@alice:example.org", "@Old=Style:[2001:db8::1]:443", "@:x"}}},
			}},
		},
		{"duplicate keys: last wins", `{"event_format":"bad","event_format":"client"}`, Filter{EventFormat: "client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFilter([]byte(tt.json))
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", *got, tt.want)
			}
			// Marshalling keeps the meaning, empty lists included.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseFilter(b)
			if err != nil {
				t.Fatalf("reparse %s: %v", b, err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip through %s changed the filter", b)
			}
		})
	}
}

func TestParseFilterInvalid(t *testing.T) {
	const bad, notJSON = "M_BAD_JSON", "M_NOT_JSON"
	tests := []struct {
		json, code, msg string // msg: part of the error message
	}{
		{``, notJSON, ""},
		{`   `, notJSON, ""},
		{`{`, notJSON, ""},
		{`{"room":}`, notJSON, ""},
		{`{"a":1}x`, notJSON, ""},
		{"{\"types\":[\"\xff\"]}", notJSON, ""},
		{`[]`, bad, "object"},
		{`"filter"`, bad, "object"},
		{`null`, bad, "object"},
		{`12`, bad, "object"},
		{`true`, bad, "object"},

		// Complement TestFilter (sytest "Check creating invalid filters returns 4xx").
		{`{"presence":"not_an_object"}`, bad, "presence"},
		{`{"room":{"timeline":"not_an_object"}}`, bad, "room.timeline"},
		{`{"room":{"state":"not_an_object"}}`, bad, "room.state"},
		{`{"room":{"ephemeral":"not_an_object"}}`, bad, "room.ephemeral"},
		{`{"room":{"account_data":"not_an_object"}}`, bad, "room.account_data"},
		{`{"room":{"timeline":{"rooms":"not_a_list"}}}`, bad, "room.timeline.rooms"},
		{`{"room":{"timeline":{"not_rooms":"not_a_list"}}}`, bad, "room.timeline.not_rooms"},
		{`{"room":{"timeline":{"senders":"not_a_list"}}}`, bad, "room.timeline.senders"},
		{`{"room":{"timeline":{"not_senders":"not_a_list"}}}`, bad, "room.timeline.not_senders"},
		{`{"room":{"timeline":{"types":"not_a_list"}}}`, bad, "room.timeline.types"},
		{`{"room":{"timeline":{"not_types":"not_a_list"}}}`, bad, "room.timeline.not_types"},
		{`{"room":{"timeline":{"types":[1]}}}`, bad, "room.timeline.types"},
		{`{"room":{"timeline":{"rooms":["not_a_room_id"]}}}`, bad, "not_a_room_id"},
		{`{"room":{"timeline":{"senders":["not_a_sender_id"]}}}`, bad, "not_a_sender_id"},

		// Synapse test_errors_on_invalid_filters.
		{`{"account_data":"Hello World"}`, bad, "account_data"},
		{`{"event_format":"other"}`, bad, "event_format"},
		{`{"room":{"not_rooms":["#foo:pik-test"]}}`, bad, "room.not_rooms"},
		{`{"presence":{"senders":["@bar;pik.test.com"]}}`, bad, "presence.senders"},

		// Wrong shapes elsewhere.
		{`{"room":"x"}`, bad, "room"},
		{`{"room":[]}`, bad, "room"},
		{`{"presence":[]}`, bad, "presence"},
		{`{"event_format":1}`, bad, "event_format"},
		{`{"event_format":"Client"}`, bad, "event_format"},
		{`{"event_format":""}`, bad, "event_format"},
		{`{"event_fields":"type"}`, bad, "event_fields"},
		{`{"event_fields":[1]}`, bad, "event_fields"},
		{`{"event_fields":[null]}`, bad, "event_fields"},
		{`{"event_fields":[["type"]]}`, bad, "event_fields"},
		{`{"presence":{"not_types":{"m.presence":true}}}`, bad, "presence.not_types"},
		{`{"account_data":{"types":[true]}}`, bad, "account_data.types"},
		{`{"room":{"include_leave":"true"}}`, bad, "room.include_leave"},
		{`{"room":{"include_leave":1}}`, bad, "room.include_leave"},
		{`{"room":{"state":{"lazy_load_members":"yes"}}}`, bad, "room.state.lazy_load_members"},
		{`{"room":{"state":{"include_redundant_members":0}}}`, bad, "include_redundant_members"},
		{`{"room":{"timeline":{"unread_thread_notifications":[]}}}`, bad, "unread_thread_notifications"},
		{`{"room":{"timeline":{"org.matrix.msc3773.unread_thread_notifications":"1"}}}`, bad, "msc3773"},
		{`{"room":{"timeline":{"contains_url":0}}}`, bad, "contains_url"},

		// Limits: non-negative integers only.
		{`{"room":{"timeline":{"limit":-1}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":1.5}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":1e-3}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":-1e400}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":"10"}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":true}}}`, bad, "room.timeline.limit"},
		{`{"room":{"timeline":{"limit":[10]}}}`, bad, "room.timeline.limit"},
		{`{"presence":{"limit":-5}}`, bad, "presence.limit"},
		{`{"account_data":{"limit":{}}}`, bad, "account_data.limit"},
		{`{"room":{"ephemeral":{"limit":-0.5}}}`, bad, "room.ephemeral.limit"},

		// IDs.
		{`{"room":{"rooms":["!short"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["` + v12 + `="]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:exa mple.org"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:example..org"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:example.org:"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:example.org:123456"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:[::1"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:[example.org]"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["!abc:[fe80::1%eth0]"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":["abc:example.org"]}}`, bad, "room.rooms"},
		{`{"room":{"rooms":[""]}}`, bad, "room.rooms"},
		{`{"room":{"state":{"not_rooms":["@alice:example.org"]}}}`, bad, "room.state.not_rooms"},
		{`{"room":{"timeline":{"senders":["@alice"]}}}`, bad, "room.timeline.senders"},
		{`{"room":{"timeline":{"not_senders":["alice:example.org"]}}}`, bad, "room.timeline.not_senders"},
		{`{"presence":{"senders":["@alice:example.org:port"]}}`, bad, "presence.senders"},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			f, err := ParseFilter([]byte(tt.json))
			if err == nil {
				t.Fatalf("ParseFilter accepted it: %#v", f)
			}
			if f != nil {
				t.Errorf("filter %#v returned with error", f)
			}
			e, ok := mxerr.As(err)
			if !ok {
				t.Fatalf("error %v is not an *mxerr.Error", err)
			}
			if e.Status != http.StatusBadRequest || e.Code != tt.code {
				t.Errorf("got %d %s (%s), want 400 %s", e.Status, e.Code, e.Msg, tt.code)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not mention %q", e.Msg, tt.msg)
			}
		})
	}
}

func TestParseRoomEventFilter(t *testing.T) {
	// As Complement sends it to /messages.
	f, err := ParseRoomEventFilter([]byte(`{ "lazy_load_members" : true }`))
	if err != nil || !f.LazyLoadMembers {
		t.Fatalf("got %#v, %v", f, err)
	}
	f, err = ParseRoomEventFilter([]byte(`{"limit":5,"rooms":["!r:example.org"],"types":["m.room.message"],"contains_url":true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := RoomEventFilter{
		EventFilter: EventFilter{Limit: ptr(5), Types: []string{"m.room.message"}},
		Rooms:       []string{"!r:example.org"},
		ContainsURL: ptr(true),
	}
	if !reflect.DeepEqual(*f, want) {
		t.Fatalf("got %#v", *f)
	}
	for _, raw := range []string{`{"limit":-1}`, `{"rooms":"!r:example.org"}`, `[]`} {
		if _, err := ParseRoomEventFilter([]byte(raw)); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
	if _, err := ParseRoomEventFilter([]byte(`{`)); err == nil || err.(*mxerr.Error).Code != "M_NOT_JSON" {
		t.Errorf("got %v, want M_NOT_JSON", err)
	}
}

func TestMatchType(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.message", "M.ROOM.MESSAGE", false},
		{"m.room.*", "m.room.message", true},
		{"m.room.*", "m.room.", true},
		{"m.room.*", "m.room", false},
		{"m.room.*", "m.roomy.message", false},
		{"m.*", "m.room.message", true},
		{"*", "", true},
		{"*", "anything", true},
		{"**", "anything", true},
		{"*.message", "m.room.message", true},
		{"*.message", "m.room.messages", false},
		{"m.*.message", "m.room.message", true},
		{"m.*.message", "m.message", false},
		{"m.*.*", "m.a.b", true},
		{"m.*.*", "m.a", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"a*b*a", "abba", true},
		{"a*b*a", "aab", false},
		{"a*b", "ab*", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := matchType(tt.pattern, tt.s); got != tt.want {
			t.Errorf("matchType(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestEventFilterAllows(t *testing.T) {
	type check struct {
		typ, sender string
		want        bool
	}
	tests := []struct {
		name   string
		filter string
		checks []check
	}{
		{"absent lists allow all", `{}`, []check{
			{"m.room.message", "@a:x", true},
			{"anything", "", true},
		}},
		{"empty types allow none", `{"types":[]}`, []check{
			{"m.room.message", "@a:x", false},
			{"", "", false},
		}},
		{"empty senders allow none", `{"senders":[]}`, []check{
			{"m.room.message", "@a:x", false},
		}},
		{"empty not_ lists exclude none", `{"not_types":[],"not_senders":[]}`, []check{
			{"m.room.message", "@a:x", true},
		}},
		{"wildcard types", `{"types":["m.room.*","m.presence"]}`, []check{
			{"m.room.message", "@a:x", true},
			{"m.room.member", "@a:x", true},
			{"m.presence", "@a:x", true},
			{"m.typing", "@a:x", false},
		}},
		{"not_types wins over types", `{"types":["m.room.*"],"not_types":["m.room.member"]}`, []check{
			{"m.room.message", "@a:x", true},
			{"m.room.member", "@a:x", false},
		}},
		{"wildcard not_types", `{"not_types":["org.example.*"]}`, []check{
			{"org.example.custom", "@a:x", false},
			{"m.room.message", "@a:x", true},
		}},
		{"senders exact, no wildcard", `{"senders":["@a:x"]}`, []check{
			{"m.room.message", "@a:x", true},
			{"m.room.message", "@b:x", false},
			{"m.room.message", "", false},
		}},
		{"not_senders wins over senders", `{"senders":["@a:x","@b:x"],"not_senders":["@b:x"]}`, []check{
			{"m.room.message", "@a:x", true},
			{"m.room.message", "@b:x", false},
		}},
		{"types and senders both apply", `{"types":["m.room.message"],"senders":["@a:x"]}`, []check{
			{"m.room.message", "@a:x", true},
			{"m.room.topic", "@a:x", false},
			{"m.room.message", "@b:x", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter([]byte(`{"presence":` + tt.filter + `}`))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				if got := f.Presence.Allows(c.typ, c.sender); got != c.want {
					t.Errorf("Allows(%q, %q) = %v, want %v", c.typ, c.sender, got, c.want)
				}
			}
		})
	}
	var nilFilter *EventFilter
	if !nilFilter.Allows("m.room.message", "@a:x") {
		t.Error("nil filter blocks")
	}
}

func TestBlocksAll(t *testing.T) {
	tests := map[string]bool{
		`{}`:                         false,
		`{"types":["m.room.*"]}`:     false,
		`{"types":[]}`:               true,
		`{"senders":[]}`:             true,
		`{"not_types":["*"]}`:        true,
		`{"not_types":["**"]}`:       true,
		`{"not_types":["m.*"]}`:      false,
		`{"not_types":[""]}`:         false,
		`{"not_senders":[]}`:         false,
		`{"limit":0}`:                false,
		`{"types":["*"],"limit":10}`: false,
	}
	for raw, want := range tests {
		f, err := ParseRoomEventFilter([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.BlocksAll(); got != want {
			t.Errorf("%s: BlocksAll = %v, want %v", raw, got, want)
		}
	}
}

func TestRoomLists(t *testing.T) {
	const a, b = "!a:example.org", "!b:example.org"
	tests := []struct {
		name  string
		lists string
		aOK   bool
		bOK   bool
		other bool // for "!c:example.org"
	}{
		{"absent allows all", `{}`, true, true, true},
		{"null allows all", `{"rooms":null}`, true, true, true},
		{"empty allows none", `{"rooms":[]}`, false, false, false},
		{"listed only", `{"rooms":["` + a + `"]}`, true, false, false},
		{"not_rooms excludes", `{"not_rooms":["` + a + `"]}`, false, true, true},
		{"not_rooms wins", `{"rooms":["` + a + `","` + b + `"],"not_rooms":["` + a + `"]}`, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter([]byte(`{"room":` + tt.lists + `}`))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ParseRoomEventFilter([]byte(tt.lists))
			if err != nil {
				t.Fatal(err)
			}
			for _, rf := range []interface{ AllowsRoom(string) bool }{&f.Room, ref} {
				if rf.AllowsRoom(a) != tt.aOK || rf.AllowsRoom(b) != tt.bOK || rf.AllowsRoom("!c:example.org") != tt.other {
					t.Errorf("%T: got %v %v %v", rf, rf.AllowsRoom(a), rf.AllowsRoom(b), rf.AllowsRoom("!c:example.org"))
				}
			}
		})
	}
}

func TestAllowsEvent(t *testing.T) {
	f, err := ParseRoomEventFilter([]byte(`{"rooms":["!r:x"],"types":["m.room.message"],"contains_url":true}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		room, typ string
		hasURL    bool
		want      bool
	}{
		{"!r:x", "m.room.message", true, true},
		{"!r:x", "m.room.message", false, false},
		{"!s:x", "m.room.message", true, false},
		{"!r:x", "m.room.topic", true, false},
	}
	for _, tt := range tests {
		if got := f.AllowsEvent(tt.room, tt.typ, "@a:x", tt.hasURL); got != tt.want {
			t.Errorf("AllowsEvent(%q, %q, url=%v) = %v, want %v", tt.room, tt.typ, tt.hasURL, got, tt.want)
		}
	}
	f.ContainsURL = ptr(false)
	if f.AllowsEvent("!r:x", "m.room.message", "@a:x", true) || !f.AllowsEvent("!r:x", "m.room.message", "@a:x", false) {
		t.Error("contains_url false not applied")
	}
	f.ContainsURL = nil
	if !f.AllowsEvent("!r:x", "m.room.message", "@a:x", true) || !f.AllowsEvent("!r:x", "m.room.message", "@a:x", false) {
		t.Error("absent contains_url filtered")
	}
	var nilFilter *RoomEventFilter
	if !nilFilter.AllowsEvent("!r:x", "t", "@a:x", false) || !nilFilter.AllowsRoom("!r:x") {
		t.Error("nil filter blocks")
	}
}

func TestEffectiveLimit(t *testing.T) {
	tests := []struct {
		limit         *int
		def, max, out int
	}{
		{nil, 10, 100, 10},
		{ptr(20), 10, 100, 20},
		{ptr(500), 10, 100, 100},
		{ptr(0), 10, 100, 0},
		{ptr(MaxLimit), 10, 0, MaxLimit},
		{nil, 200, 100, 100},
	}
	for _, tt := range tests {
		f := EventFilter{Limit: tt.limit}
		if got := f.EffectiveLimit(tt.def, tt.max); got != tt.out {
			t.Errorf("limit %v: EffectiveLimit(%d, %d) = %d, want %d", tt.limit, tt.def, tt.max, got, tt.out)
		}
	}
	var nilFilter *EventFilter
	if got := nilFilter.EffectiveLimit(10, 5); got != 5 {
		t.Errorf("nil filter: %d", got)
	}
	// Promoted to the room filters.
	f, _ := ParseFilter([]byte(`{"room":{"timeline":{"limit":30}}}`))
	if got := f.Room.Timeline.EffectiveLimit(10, 50); got != 30 {
		t.Errorf("timeline: %d", got)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"room":{"timeline":{"unread_thread_notifications":true,"limit":20},"state":{"lazy_load_members":true}}}`,
		`{"room":{"rooms":[],"not_rooms":["!a:b"],"timeline":{"limit":1e400,"types":["m.*"],"contains_url":false}}}`,
		`{"presence":{"senders":["@a:[::1]:8448"],"not_types":["*"]},"event_format":"federation","event_fields":["a\\.b"]}`,
		`{"room":{"timeline":{"limit":-1}}}`,
		`{"room":"x"}`,
		`[]`,
		``,
		"{\"types\":[\"\xff\"]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		filter, err := ParseFilter(raw)
		if err != nil {
			e, ok := mxerr.As(err)
			if !ok || e.Status != http.StatusBadRequest || (e.Code != "M_BAD_JSON" && e.Code != "M_NOT_JSON") {
				t.Fatalf("unexpected error %#v", err)
			}
			if filter != nil {
				t.Fatal("filter returned with error")
			}
			return
		}
		// Exercise the helpers; none may panic.
		for _, ef := range []*EventFilter{&filter.Presence, &filter.AccountData, &filter.Room.Timeline.EventFilter} {
			if ef.Limit != nil && (*ef.Limit < 0 || *ef.Limit > MaxLimit) {
				t.Fatalf("limit %d out of range", *ef.Limit)
			}
			ef.Allows("m.room.message", "@a:x")
			ef.BlocksAll()
			ef.EffectiveLimit(10, 100)
		}
		filter.Room.AllowsRoom("!a:b")
		filter.Room.State.AllowsEvent("!a:b", "m.room.member", "@a:x", false)
		// A valid filter survives a round trip unchanged.
		b, err := json.Marshal(filter)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFilter(b)
		if err != nil {
			t.Fatalf("reparse %s: %v", b, err)
		}
		if !reflect.DeepEqual(again, filter) {
			t.Fatalf("round trip through %s changed the filter", b)
		}
	})
}
