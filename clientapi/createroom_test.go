package clientapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// Helpers of the createRoom and membership tests carry an "mb" prefix.

// mbEvent is an event as a client receives it.
type mbEvent struct {
	Type     string         `json:"type"`
	StateKey *string        `json:"state_key"`
	Sender   string         `json:"sender"`
	RoomID   string         `json:"room_id"`
	EventID  string         `json:"event_id"`
	Content  map[string]any `json:"content"`
}

// key is "type" or "type/state_key" for state events with a key.
func (e mbEvent) key() string {
	if e.StateKey == nil || *e.StateKey == "" {
		return e.Type
	}
	return e.Type + "/" + *e.StateKey
}

// mbRoom returns the client API path of a room endpoint.
func mbRoom(roomID, suffix string) string {
	return "/_matrix/client/v3/rooms/" + confEsc(roomID) + suffix
}

// mbEvents returns the room's events, oldest first, as u sees them through
// GET /messages?dir=f.
func mbEvents(t *testing.T, s *apitest.Server, u apitest.User, roomID string) []mbEvent {
	t.Helper()
	r := s.Do("GET", mbRoom(roomID, "/messages?dir=f&limit=100"), u.Token, nil).Expect(t, 200, "")
	var body struct {
		Chunk []mbEvent `json:"chunk"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("decode /messages: %v: %s", err, r.Body)
	}
	return body.Chunk
}

// mbKeys returns the events' keys in order.
func mbKeys(evs []mbEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.key()
	}
	return out
}

// mbFind returns the last event with the key, failing the test if none.
func mbFind(t *testing.T, evs []mbEvent, key string) mbEvent {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].key() == key {
			return evs[i]
		}
	}
	t.Fatalf("no %s event among %v", key, mbKeys(evs))
	return mbEvent{}
}

// mbContentEq fails unless the event's content is the JSON value want.
func mbContentEq(t *testing.T, what string, content map[string]any, want string) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad test JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(content, w) {
		got, _ := json.Marshal(content)
		t.Errorf("%s: content\n  %s\nwant\n  %s", what, got, want)
	}
}

// mbState returns the content of one state event.
func mbState(t *testing.T, s *apitest.Server, u apitest.User, roomID, typ, stateKey string) map[string]any {
	t.Helper()
	r := s.Do("GET", mbRoom(roomID, "/state/"+confEsc(typ)+"/"+confEsc(stateKey)), u.Token, nil).Expect(t, 200, "")
	return r.JSON
}

// mbJoinedRooms returns GET /joined_rooms, sorted.
func mbJoinedRooms(t *testing.T, s *apitest.Server, u apitest.User) []string {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/joined_rooms", u.Token, nil).Expect(t, 200, "")
	var body struct {
		JoinedRooms []string `json:"joined_rooms"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.JoinedRooms == nil {
		t.Fatalf("joined_rooms: %v: %s", err, r.Body)
	}
	slices.Sort(body.JoinedRooms)
	return body.JoinedRooms
}

// mbExpectRooms fails unless u is joined to exactly the rooms.
func mbExpectRooms(t *testing.T, s *apitest.Server, u apitest.User, rooms ...string) {
	t.Helper()
	want := slices.Clone(rooms)
	if want == nil {
		want = []string{}
	}
	slices.Sort(want)
	if got := mbJoinedRooms(t, s, u); !slices.Equal(got, want) {
		t.Errorf("joined_rooms of %s = %v, want %v", u.ID, got, want)
	}
}

// mbPowerLevels is the default m.room.power_levels content of a room
// created by creator, as JSON; users is the JSON of its users map and
// invite its invite level.
func mbPowerLevels(users string, invite, tombstone int) string {
	return fmt.Sprintf(`{"users":%s,"users_default":0,"events":{"m.room.name":50,"m.room.power_levels":100,
		"m.room.history_visibility":100,"m.room.canonical_alias":50,"m.room.avatar":50,"m.room.tombstone":%d,
		"m.room.server_acl":100,"m.room.encryption":100},"events_default":0,"state_default":50,"ban":50,"kick":50,
		"redact":50,"invite":%d,"historical":100}`, users, tombstone, invite)
}

// mbStoredEvent returns an event's stored (federation) JSON.
func mbStoredEvent(t *testing.T, s *apitest.Server, eventID string) map[string]any {
	t.Helper()
	ev, err := s.App.DB.Event(context.Background(), eventID)
	if err != nil {
		t.Fatalf("stored event %s: %v", eventID, err)
	}
	var m map[string]any
	if err := json.Unmarshal(ev.JSON, &m); err != nil {
		t.Fatalf("stored event %s: %v", eventID, err)
	}
	return m
}

func TestCreateRoomDefaults(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{})
		if !strings.HasSuffix(roomID, ":"+apitest.ServerName) {
			t.Errorf("room version 11 room ID %q: want !opaque:%s", roomID, apitest.ServerName)
		}
		evs := mbEvents(t, s, alice, roomID)
		want := []string{"m.room.create", "m.room.member/" + alice.ID, "m.room.power_levels",
			"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access"}
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("events %v, want %v", mbKeys(evs), want)
		}
		for _, e := range evs {
			if e.Sender != alice.ID || e.RoomID != roomID || !strings.HasPrefix(e.EventID, "$") {
				t.Errorf("%s: sender %q room_id %q event_id %q", e.key(), e.Sender, e.RoomID, e.EventID)
			}
		}
		// The configured default version (11): no creator key; aula
		// never federates.
		mbContentEq(t, "create", evs[0].Content, `{"room_version":"11","m.federate":false}`)
		mbContentEq(t, "creator join", evs[1].Content, `{"membership":"join","displayname":"alice"}`)
		mbContentEq(t, "power levels", evs[2].Content, mbPowerLevels(`{"@alice:aula.test":100}`, 0, 100))
		mbContentEq(t, "join rules", evs[3].Content, `{"join_rule":"invite"}`)
		mbContentEq(t, "history visibility", evs[4].Content, `{"history_visibility":"shared"}`)
		mbContentEq(t, "guest access", evs[5].Content, `{"guest_access":"forbidden"}`) // no guests (policy)
		mbExpectRooms(t, s, alice, roomID)

		// The response is exactly {"room_id": …}; r0 works too.
		r := s.Do("POST", "/_matrix/client/r0/createRoom", alice.Token, map[string]any{}).Expect(t, 200, "")
		if len(r.JSON) != 1 || r.String("room_id") == "" {
			t.Errorf("createRoom answer %s", r.Body)
		}
	})
}

func TestCreateRoomPresets(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		const private, public = `{"join_rule":"invite"}`, `{"join_rule":"public"}`
		for _, tc := range []struct {
			name       string
			body       map[string]any
			joinRule   string
			guest      string
			invitePL   int
			publicJoin bool
		}{
			{"no preset or visibility", map[string]any{}, private, "forbidden", 0, false},
			{"private_chat", map[string]any{"preset": "private_chat"}, private, "forbidden", 0, false},
			{"public_chat", map[string]any{"preset": "public_chat"}, public, "forbidden", 50, true},
			// visibility public is always refused (policy_test.go).
			{"visibility private", map[string]any{"visibility": "private"}, private, "forbidden", 0, false},
			{"public preset, private visibility", map[string]any{"visibility": "private", "preset": "public_chat"}, public, "forbidden", 50, true},
			{"trusted_private_chat", map[string]any{"preset": "trusted_private_chat"}, private, "forbidden", 0, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				roomID := s.CreateRoom(alice, tc.body)
				evs := mbEvents(t, s, alice, roomID)
				mbContentEq(t, "join rules", mbFind(t, evs, "m.room.join_rules").Content, tc.joinRule)
				mbContentEq(t, "guest access", mbFind(t, evs, "m.room.guest_access").Content, `{"guest_access":"`+tc.guest+`"}`)
				mbContentEq(t, "history visibility", mbFind(t, evs, "m.room.history_visibility").Content, `{"history_visibility":"shared"}`)
				mbContentEq(t, "power levels", mbFind(t, evs, "m.room.power_levels").Content,
					mbPowerLevels(`{"@alice:aula.test":100}`, tc.invitePL, 100))
				if tc.publicJoin {
					s.Do("POST", mbRoom(roomID, "/join"), bob.Token, map[string]any{}).Expect(t, 200, "")
				} else {
					s.Do("POST", mbRoom(roomID, "/join"), bob.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
				}
			})
		}
	})
}

// TestCreateRoomTrustedPrivateChat checks that invitees get the creator's
// power: a level of 100 up to room version 11, a place among the creators
// (additional_creators) from room version 12.
func TestCreateRoomTrustedPrivateChat(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		for _, v := range []string{"10", "11"} {
			t.Run("v"+v, func(t *testing.T) {
				roomID := s.CreateRoom(alice, map[string]any{"preset": "trusted_private_chat", "room_version": v,
					"invite": []string{bob.ID}, "is_direct": true})
				evs := mbEvents(t, s, alice, roomID)
				mbContentEq(t, "power levels", mbFind(t, evs, "m.room.power_levels").Content,
					mbPowerLevels(`{"@alice:aula.test":100,"@bob:aula.test":100}`, 0, 100))
				create := `{"room_version":"` + v + `","m.federate":false}`
				if v == "10" {
					create = `{"room_version":"10","m.federate":false,"creator":"@alice:aula.test"}`
				}
				mbContentEq(t, "create", evs[0].Content, create)
				mbContentEq(t, "invite", mbFind(t, evs, "m.room.member/"+bob.ID).Content,
					`{"membership":"invite","displayname":"bob","is_direct":true}`)
			})
		}
		t.Run("v12", func(t *testing.T) {
			roomID := s.CreateRoom(alice, map[string]any{"preset": "trusted_private_chat", "room_version": "12",
				"invite":           []string{bob.ID, carol.ID, bob.ID},
				"creation_content": map[string]any{"additional_creators": []string{carol.ID, alice.ID}}})
			evs := mbEvents(t, s, alice, roomID)
			// additional_creators from creation_content and invite, each
			// once, never the creator; no creator in the users map; the
			// tombstone level above the moderators'.
			mbContentEq(t, "create", evs[0].Content,
				`{"room_version":"12","m.federate":false,"additional_creators":["@carol:aula.test","@bob:aula.test"]}`)
			mbContentEq(t, "power levels", mbFind(t, evs, "m.room.power_levels").Content, mbPowerLevels(`{}`, 0, 150))
			want := []string{"m.room.create", "m.room.member/" + alice.ID, "m.room.power_levels", "m.room.join_rules",
				"m.room.history_visibility", "m.room.guest_access", "m.room.member/" + bob.ID, "m.room.member/" + carol.ID}
			if !slices.Equal(mbKeys(evs), want) {
				t.Fatalf("events %v, want %v", mbKeys(evs), want)
			}
			// Bob, a creator, may do what only the most powerful may.
			s.Do("POST", mbRoom(roomID, "/join"), bob.Token, map[string]any{}).Expect(t, 200, "")
			s.Do("PUT", mbRoom(roomID, "/state/m.room.power_levels/"), bob.Token, map[string]any{
				"users": map[string]int{"@dave:aula.test": 100}, "events": map[string]int{"m.room.power_levels": 100},
			}).Expect(t, 200, "")
		})
	})
}

// TestCreateRoomEventOrder checks every step of the spec's order at once,
// with initial_state overriding preset events and name and topic
// overriding initial_state.
func TestCreateRoomEventOrder(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		carol := s.Register("carol", "correct horse battery")
		dave := s.Register("dave", "correct horse battery")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/displayname", bob.Token,
			map[string]string{"displayname": "Bob Builder"}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/profile/"+confEsc(bob.ID)+"/avatar_url", bob.Token,
			map[string]string{"avatar_url": "mxc://aula.test/bob"}).Expect(t, 200, "")

		roomID := s.CreateRoom(alice, map[string]any{
			"preset":                       "private_chat",
			"room_alias_name":              "order",
			"name":                         "The Room",
			"topic":                        "All about <order> & such",
			"invite":                       []string{bob.ID, carol.ID, alice.ID},
			"is_direct":                    true,
			"power_level_content_override": map[string]any{"events_default": 10, "events": map[string]int{"m.room.name": 100}},
			"initial_state": []map[string]any{
				{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{"join_rule": "public"}},
				{"type": "org.example.custom", "state_key": "k", "content": map[string]any{"n": 1}},
				{"type": "m.room.name", "content": map[string]any{"name": "overridden"}},
				{"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "overridden"}},
				{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "invited"}},
				{"type": "org.example.custom", "state_key": "k", "content": map[string]any{"n": 2}},
			},
		})
		evs := mbEvents(t, s, alice, roomID)
		want := []string{
			"m.room.create",             // 1
			"m.room.member/" + alice.ID, // 2
			"m.room.power_levels",       // 3
			"m.room.canonical_alias",    // 4
			"m.room.guest_access",       // 5 (join rules, history visibility: initial_state)
			"m.room.join_rules",         // 6, in initial_state order
			"org.example.custom/k",      //   a repeated key keeps its first place, its last content
			"m.room.history_visibility", //
			"m.room.name",               // 7
			"m.room.topic",              //
			"m.room.member/" + bob.ID,   // 8
			"m.room.member/" + carol.ID, //   (the creator is not invited)
		}
		if !slices.Equal(mbKeys(evs), want) {
			t.Fatalf("events\n  %v\nwant\n  %v", mbKeys(evs), want)
		}
		mbContentEq(t, "power levels", evs[2].Content, `{"users":{"@alice:aula.test":100},"users_default":0,
			"events":{"m.room.name":100},"events_default":10,"state_default":50,"ban":50,"kick":50,"redact":50,
			"invite":0,"historical":100}`)
		mbContentEq(t, "canonical alias", evs[3].Content, `{"alias":"#order:aula.test"}`)
		mbContentEq(t, "join rules", evs[5].Content, `{"join_rule":"public"}`)
		mbContentEq(t, "custom", evs[6].Content, `{"n":2}`)
		mbContentEq(t, "history visibility", evs[7].Content, `{"history_visibility":"invited"}`)
		mbContentEq(t, "name", evs[8].Content, `{"name":"The Room"}`)
		mbContentEq(t, "topic", evs[9].Content, `{"topic":"All about <order> & such",
			"m.topic":{"m.text":[{"mimetype":"text/plain","body":"All about <order> & such"}]}}`)
		mbContentEq(t, "invite bob", evs[10].Content,
			`{"membership":"invite","displayname":"Bob Builder","avatar_url":"mxc://aula.test/bob","is_direct":true}`)
		mbContentEq(t, "invite carol", evs[11].Content, `{"membership":"invite","displayname":"carol","is_direct":true}`)
		for _, e := range evs[10:] {
			if e.Sender != alice.ID {
				t.Errorf("invite of %s sent by %s", *e.StateKey, e.Sender)
			}
		}
		// The state reads back the same.
		mbContentEq(t, "state name", mbState(t, s, alice, roomID, "m.room.name", ""), `{"name":"The Room"}`)

		// The alias resolves for joins; the join rule from initial_state
		// lets Dave in; the invitees join the invite-only way.
		r := s.Do("POST", "/_matrix/client/v3/join/"+confEsc("#order:aula.test"), dave.Token, map[string]any{}).Expect(t, 200, "")
		if r.String("room_id") != roomID {
			t.Errorf("join by alias answered %s, want room %s", r.Body, roomID)
		}
		s.Do("POST", mbRoom(roomID, "/join"), bob.Token, nil).Expect(t, 200, "")
		mbExpectRooms(t, s, bob, roomID)
		mbExpectRooms(t, s, carol)
	})
}

// TestCreateRoomInitialStateTopic follows Complement: a topic from
// initial_state is stored as given, a topic parameter replaces it with a
// rich (m.topic) one.
func TestCreateRoomInitialStateTopic(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat", "initial_state": []map[string]any{
			{"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "Test Room"}},
		}})
		mbContentEq(t, "initial_state topic", mbState(t, s, alice, roomID, "m.room.topic", ""), `{"topic":"Test Room"}`)
		roomID = s.CreateRoom(alice, map[string]any{"topic": "Test Room", "initial_state": []map[string]any{
			{"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "Shenanigans"}},
		}})
		mbContentEq(t, "topic parameter", mbState(t, s, alice, roomID, "m.room.topic", ""),
			`{"topic":"Test Room","m.topic":{"m.text":[{"mimetype":"text/plain","body":"Test Room"}]}}`)
		// An empty name and topic are still events.
		roomID = s.CreateRoom(alice, map[string]any{"name": "", "topic": ""})
		mbContentEq(t, "empty name", mbState(t, s, alice, roomID, "m.room.name", ""), `{"name":""}`)
	})
}

func TestCreateRoomVersions(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		for _, v := range []string{"10", "11", "12"} {
			t.Run("v"+v, func(t *testing.T) {
				roomID := s.CreateRoom(alice, map[string]any{"room_version": v, "name": "v" + v})
				evs := mbEvents(t, s, alice, roomID)
				if len(evs) != 7 || evs[0].Type != "m.room.create" {
					t.Fatalf("events %v", mbKeys(evs))
				}
				if got := evs[0].Content["room_version"]; got != v {
					t.Errorf("room_version %v, want %s", got, v)
				}
				_, hasCreator := evs[0].Content["creator"]
				if hasCreator != (v == "10") {
					t.Errorf("creator in create content: %v (room version %s)", evs[0].Content, v)
				}
				// Clients always see room_id, also on a version 12 create
				// event.
				for _, e := range evs {
					if e.RoomID != roomID {
						t.Errorf("%s: room_id %q, want %q", e.key(), e.RoomID, roomID)
					}
				}
				stored := mbStoredEvent(t, s, evs[0].EventID)
				_, storedRoomID := stored["room_id"]
				if v == "12" {
					// The room ID is the create event's reference hash; the
					// create event itself carries no room_id, and no event
					// lists it among its auth events.
					if len(roomID) != 44 || strings.Contains(roomID, ":") || roomID[1:] != evs[0].EventID[1:] {
						t.Errorf("v12 room ID %q (create event %s): want \"!\" + the event ID's 43 characters", roomID, evs[0].EventID)
					}
					if storedRoomID {
						t.Errorf("v12 create event has a room_id: %v", stored)
					}
					for _, e := range evs[1:] {
						for _, a := range mbStoredEvent(t, s, e.EventID)["auth_events"].([]any) {
							if a == evs[0].EventID {
								t.Errorf("%s lists the create event in auth_events", e.key())
							}
						}
					}
				} else {
					if !strings.HasSuffix(roomID, ":aula.test") || !storedRoomID {
						t.Errorf("v%s room ID %q, stored create has room_id: %v", v, roomID, storedRoomID)
					}
				}
				// The room works: a message can be sent.
				s.Do("PUT", mbRoom(roomID, "/send/m.room.message/t1"), alice.Token,
					map[string]string{"msgtype": "m.text", "body": "hi"}).Expect(t, 200, "")
			})
		}
		for _, v := range []string{"1", "9", "13", "org.example.custom", ""} {
			if v == "" {
				continue // "" is the default
			}
			s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"room_version": v}).
				Expect(t, 400, "M_UNSUPPORTED_ROOM_VERSION")
		}
		s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"room_version": 11}).Expect(t, 400, "M_BAD_JSON")
		// creation_content cannot choose the version.
		roomID := s.CreateRoom(alice, map[string]any{"creation_content": map[string]any{"room_version": "test"}})
		if got := mbEvents(t, s, alice, roomID)[0].Content["room_version"]; got != "11" {
			t.Errorf("room_version %v, want the default 11", got)
		}
	})
}

// TestCreateRoomDefaultVersion checks that the default version comes from
// the configuration. (A test of its own: a second ForEachServer in one test
// names its SQLite directory "sqlite#01", and storage.Open does not escape
// "#" in the file: URI.)
func TestCreateRoomDefaultVersion(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Rooms.DefaultVersion = "12" }, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		roomID := s.CreateRoom(alice, nil)
		if got := mbEvents(t, s, alice, roomID)[0].Content["room_version"]; got != "12" || strings.Contains(roomID, ":") {
			t.Errorf("room %s has version %v, want the configured 12", roomID, got)
		}
	})
}

func TestCreateRoomCreationContent(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		cc := map[string]any{"test": "azerty", "type": "m.space", "room_version": "1", "creator": "@mallory:aula.test",
			"m.federate": true, "nested": map[string]any{"a": []int{1, 2}}, "additional_creators": []string{"@x:aula.test"}}
		for v, want := range map[string]string{
			"10": `{"test":"azerty","type":"m.space","nested":{"a":[1,2]},"room_version":"10","creator":"@alice:aula.test","m.federate":false}`,
			"11": `{"test":"azerty","type":"m.space","nested":{"a":[1,2]},"room_version":"11","m.federate":false}`,
			"12": `{"test":"azerty","type":"m.space","nested":{"a":[1,2]},"room_version":"12","m.federate":false,"additional_creators":["@x:aula.test"]}`,
		} {
			roomID := s.CreateRoom(alice, map[string]any{"room_version": v, "creation_content": cc})
			mbContentEq(t, "create v"+v, mbEvents(t, s, alice, roomID)[0].Content, want)
		}
		// Listing only the creator leaves no additional_creators.
		roomID := s.CreateRoom(alice, map[string]any{"room_version": "12",
			"creation_content": map[string]any{"additional_creators": []string{alice.ID}}})
		mbContentEq(t, "only the creator", mbEvents(t, s, alice, roomID)[0].Content, `{"room_version":"12","m.federate":false}`)
		// additional_creators must be a list of user IDs (version 12).
		for _, bad := range []any{"@x:aula.test", []any{1}, []string{"x"}} {
			s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, map[string]any{"room_version": "12",
				"creation_content": map[string]any{"additional_creators": bad}}).Expect(t, 400, "M_BAD_JSON")
		}
	})
}

func TestCreateRoomPowerLevelOverride(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")

		// Merged key by key over the defaults.
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat", "power_level_content_override": map[string]any{
			"invite": 50, "kick": 20, "users": map[string]int{alice.ID: 100, bob.ID: 20}, "org.example": true,
		}})
		mbContentEq(t, "override", mbFind(t, mbEvents(t, s, alice, roomID), "m.room.power_levels").Content,
			`{"users":{"@alice:aula.test":100,"@bob:aula.test":20},"users_default":0,"events":{"m.room.name":50,
			"m.room.power_levels":100,"m.room.history_visibility":100,"m.room.canonical_alias":50,"m.room.avatar":50,
			"m.room.tombstone":100,"m.room.server_acl":100,"m.room.encryption":100},"events_default":0,
			"state_default":50,"ban":50,"kick":20,"redact":50,"invite":50,"historical":100,"org.example":true}`)

		// In room version 12 creators cannot be listed: they are dropped.
		roomID = s.CreateRoom(alice, map[string]any{"room_version": "12", "power_level_content_override": map[string]any{
			"users": map[string]int{alice.ID: 100, bob.ID: 50},
		}})
		if users := mbFind(t, mbEvents(t, s, alice, roomID), "m.room.power_levels").Content["users"]; !reflect.DeepEqual(users, map[string]any{bob.ID: 50.0}) {
			t.Errorf("v12 users %v, want only bob", users)
		}

		// An m.room.power_levels in initial_state replaces the defaults;
		// the override still applies on top. There is one power levels
		// event, in third place.
		roomID = s.CreateRoom(alice, map[string]any{
			"initial_state": []map[string]any{{"type": "m.room.power_levels", "content": map[string]any{
				"users": map[string]int{alice.ID: 100}, "invite": 100}}},
			"power_level_content_override": map[string]any{"kick": 75},
		})
		evs := mbEvents(t, s, alice, roomID)
		if keys := mbKeys(evs); keys[2] != "m.room.power_levels" || slices.Index(keys[3:], "m.room.power_levels") >= 0 {
			t.Errorf("events %v", keys)
		}
		mbContentEq(t, "initial_state power levels", evs[2].Content, `{"users":{"@alice:aula.test":100},"invite":100,"kick":75}`)

		// An override that leaves the creator unable to set up the room is
		// 400 M_INVALID_ROOM_STATE, and no room is made.
		before := mbJoinedRooms(t, s, alice)
		for _, pl := range []map[string]any{
			{"users": map[string]int{}},
			{"users": map[string]int{alice.ID: 10}},
			{"state_default": 101},
			{"ban": "fifty"},
		} {
			confExpectError(t, fmt.Sprint(pl), s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token,
				map[string]any{"power_level_content_override": pl}), 400, "M_INVALID_ROOM_STATE")
		}
		if after := mbJoinedRooms(t, s, alice); !slices.Equal(before, after) {
			t.Errorf("failed createRoom left rooms behind: %v, then %v", before, after)
		}
	})
}

func TestCreateRoomAlias(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		roomID := s.CreateRoom(alice, map[string]any{"preset": "public_chat", "room_alias_name": "pub"})
		mbContentEq(t, "canonical alias", mbState(t, s, alice, roomID, "m.room.canonical_alias", ""), `{"alias":"#pub:aula.test"}`)
		r := s.Do("POST", "/_matrix/client/v3/join/"+confEsc("#pub:aula.test"), bob.Token, nil).Expect(t, 200, "")
		if r.String("room_id") != roomID {
			t.Errorf("join #pub answered %s", r.Body)
		}

		// A taken alias: 400 M_ROOM_IN_USE, and no room.
		confExpectError(t, "taken alias", s.Do("POST", "/_matrix/client/v3/createRoom", bob.Token,
			map[string]any{"room_alias_name": "pub"}), 400, "M_ROOM_IN_USE")
		mbExpectRooms(t, s, bob, roomID)

		// Invalid alias names: 400 M_INVALID_PARAM.
		for _, name := range []string{"", "pub:aula.test", "a b", "tab\tbed", "new\nline", "nul\x00", strings.Repeat("x", 250)} {
			confExpectError(t, fmt.Sprintf("alias %q", name), s.Do("POST", "/_matrix/client/v3/createRoom", bob.Token,
				map[string]any{"room_alias_name": name}), 400, "M_INVALID_PARAM")
		}
		mbExpectRooms(t, s, bob, roomID)

		// Unicode and a long-but-allowed alias are fine.
		long := strings.Repeat("y", 255-len("#:aula.test"))
		for _, name := range []string{"café-☕", long} {
			id := s.CreateRoom(bob, map[string]any{"room_alias_name": name})
			mbContentEq(t, name, mbState(t, s, bob, id, "m.room.canonical_alias", ""), `{"alias":"#`+name+`:aula.test"}`)
		}
	})
}

func TestCreateRoomInviteErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		for _, tc := range []struct {
			invite  any
			status  int
			errcode string
		}{
			{[]string{bob.ID, "@nobody:aula.test"}, 404, "M_NOT_FOUND"},
			{[]string{"@bob:elsewhere.example"}, 403, "M_FORBIDDEN"},
			{[]string{"bob"}, 400, "M_INVALID_PARAM"},
			{[]string{"@bob"}, 400, "M_INVALID_PARAM"},
			{[]string{"@bob:bad server"}, 400, "M_INVALID_PARAM"},
			{"@bob:aula.test", 400, "M_BAD_JSON"},
			{[]any{1}, 400, "M_BAD_JSON"},
		} {
			confExpectError(t, fmt.Sprint(tc.invite), s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token,
				map[string]any{"invite": tc.invite}), tc.status, tc.errcode)
		}
		confExpectError(t, "invite_3pid", s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token,
			map[string]any{"invite_3pid": []map[string]string{{"medium": "email", "address": "a@b.c",
				"id_server": "id.example", "id_access_token": "x"}}}), 403, "M_FORBIDDEN")
		// Nothing was created, and Bob was invited nowhere.
		mbExpectRooms(t, s, alice)
		r := s.Do("GET", "/_matrix/client/v3/sync?timeout=0", bob.Token, nil)
		if r.Status == 200 && strings.Contains(string(r.Body), `"invite":{"!`) {
			t.Errorf("bob has an invite: %s", r.Body)
		}
		// A deactivated user cannot be invited.
		session := s.Do("POST", "/_matrix/client/v3/account/deactivate", bob.Token, map[string]any{}).Expect(t, 401, "").String("session")
		s.Do("POST", "/_matrix/client/v3/account/deactivate", bob.Token, map[string]any{"auth": bob.PasswordAuth(session)}).Expect(t, 200, "")
		confExpectError(t, "deactivated", s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token,
			map[string]any{"invite": []string{bob.ID}}), 404, "M_NOT_FOUND")
	})
}

func TestCreateRoomBadRequests(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		for _, tc := range []struct {
			body    any
			errcode string
		}{
			{"not json", "M_NOT_JSON"},
			{`{"name": "x",}`, "M_NOT_JSON"},
			{`[]`, "M_BAD_JSON"},
			{`"room"`, "M_BAD_JSON"},
			{map[string]any{"name": 5}, "M_BAD_JSON"},
			{map[string]any{"topic": []string{"x"}}, "M_BAD_JSON"},
			{map[string]any{"preset": "bogus"}, "M_BAD_JSON"},
			{map[string]any{"visibility": "secret"}, "M_BAD_JSON"},
			{map[string]any{"is_direct": "yes"}, "M_BAD_JSON"},
			{map[string]any{"creation_content": []int{1}}, "M_BAD_JSON"},
			{map[string]any{"power_level_content_override": "all"}, "M_BAD_JSON"},
			{map[string]any{"initial_state": map[string]any{}}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []any{"x"}}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []map[string]any{{"content": map[string]any{}}}}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []map[string]any{{"type": "m.room.name", "content": "x"}}}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []map[string]any{{"type": "m.room.name"}}}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []map[string]any{{"type": "x", "state_key": 1, "content": map[string]any{}}}}, "M_BAD_JSON"},
			{map[string]any{"room_alias_name": 7}, "M_BAD_JSON"},
			{map[string]any{"initial_state": []map[string]any{{"type": "m.room.create", "content": map[string]any{}}}}, "M_INVALID_ROOM_STATE"},
			{map[string]any{"initial_state": []map[string]any{{"type": "m.room.member", "state_key": "@bob:aula.test",
				"content": map[string]any{"membership": "invite"}}}}, "M_INVALID_ROOM_STATE"},
		} {
			confExpectError(t, fmt.Sprint(tc.body), s.Do("POST", "/_matrix/client/v3/createRoom", alice.Token, tc.body), 400, tc.errcode)
		}
		confExpectError(t, "no token", s.Do("POST", "/_matrix/client/v3/createRoom", "", map[string]any{}), 401, "M_MISSING_TOKEN")
		confExpectError(t, "GET", s.Do("GET", "/_matrix/client/v3/createRoom", alice.Token, nil), 405, "M_UNRECOGNIZED")
		mbExpectRooms(t, s, alice)
		// Unknown keys are ignored; an empty body is an empty request.
		s.CreateRoom(alice, map[string]any{"org.example.unknown": 1, "Name": "wrong case"})
		s.CreateRoom(alice, nil)
	})
}
