package roomserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestNormaliseInitialState(t *testing.T) {
	ev := func(typ, key, content string) StateEvent {
		return StateEvent{Type: typ, StateKey: key, Content: json.RawMessage(content)}
	}
	byKey, order, err := normaliseInitialState([]StateEvent{
		ev("a", "", `{"n":1}`), ev("b", "x", `{}`), ev("a", "", `{"n":2}`), ev("a", "y", `{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range order {
		got = append(got, st.Type+"|"+st.StateKey+"|"+string(st.Content))
	}
	want := []string{`a||{"n":2}`, `b|x|{}`, `a|y|{}`}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if len(byKey) != 3 || string(byKey[gomatrixserverlib.StateKeyTuple{EventType: "a"}].Content) != `{"n":2}` {
		t.Errorf("byKey %v", byKey)
	}
	for _, typ := range []string{spec.MRoomCreate, spec.MRoomMember} {
		_, _, err := normaliseInitialState([]StateEvent{ev(typ, "", `{}`)})
		if e, ok := mxerr.As(err); !ok || e.Code != "M_INVALID_ROOM_STATE" || e.Status != 400 {
			t.Errorf("%s: err %v, want 400 M_INVALID_ROOM_STATE", typ, err)
		}
	}
}

func TestCheckAlias(t *testing.T) {
	for _, tc := range []struct {
		local string
		ok    bool
	}{
		{"room", true},
		{"café", true},
		{"#irc-channel", true},
		{"a.b_c-d=e/f", true},
		{"room:aula.test", false},
		{"a b", false},
		{"a\tb", false},
		{"a\u00a0b", false}, // no-break space
		{"a\u2028b", false}, // line separator
		{"a\x00b", false},
		{"a\x7fb", false},
		{strings.Repeat("x", 255-len("#:aula.test")), true},
		{strings.Repeat("x", 256-len("#:aula.test")), false},
	} {
		err := checkAlias(tc.local, "#"+tc.local+":aula.test")
		if (err == nil) != tc.ok {
			t.Errorf("checkAlias(%q) = %v, want ok=%v", tc.local, err, tc.ok)
		}
		if e, isMx := mxerr.As(err); err != nil && (!isMx || e.Code != "M_INVALID_PARAM") {
			t.Errorf("checkAlias(%q) = %v, want M_INVALID_PARAM", tc.local, err)
		}
	}
}

func TestDropCreators(t *testing.T) {
	pl := map[string]any{"users": map[string]any{"@a:x": 100, "@b:x": 50, "@c:x": 10}, "ban": 50}
	if err := dropCreators(pl, []string{"@a:x", "@c:x"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(pl)
	if string(raw) != `{"ban":50,"users":{"@b:x":50}}` {
		t.Errorf("got %s", raw)
	}
	// No users map, or one that is not an object: left alone.
	for _, pl := range []map[string]any{{"ban": 1}, {"users": "x"}} {
		before, _ := json.Marshal(pl)
		if err := dropCreators(pl, []string{"@a:x"}); err != nil {
			t.Fatal(err)
		}
		if after, _ := json.Marshal(pl); string(after) != string(before) {
			t.Errorf("changed %s to %s", before, after)
		}
	}
}

func TestDefaultPowerLevels(t *testing.T) {
	v11 := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV11)
	v12 := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV12)
	for _, tc := range []struct {
		name      string
		ver       gomatrixserverlib.IRoomVersion
		preset    string
		users     map[string]int
		invite    int
		tombstone int
	}{
		{"private v11", v11, PresetPrivateChat, map[string]int{"@a:x": 100}, 0, 100},
		{"trusted v11", v11, PresetTrustedPrivateChat, map[string]int{"@a:x": 100, "@b:x": 100}, 0, 100},
		{"public v11", v11, PresetPublicChat, map[string]int{"@a:x": 100}, 50, 100},
		{"trusted v12", v12, PresetTrustedPrivateChat, map[string]int{}, 0, 150},
		{"public v12", v12, PresetPublicChat, map[string]int{}, 50, 150},
	} {
		pl := defaultPowerLevels(tc.ver, "@a:x", tc.preset, []string{"@b:x"})
		if !reflect.DeepEqual(pl["users"], tc.users) || pl["invite"] != tc.invite ||
			pl["events"].(map[string]int)["m.room.tombstone"] != tc.tombstone {
			t.Errorf("%s: %v", tc.name, pl)
		}
		// v12: the tombstone level must exceed state_default (spec).
		if tc.ver.PrivilegedCreators() && pl["events"].(map[string]int)["m.room.tombstone"] <= pl["state_default"].(int) {
			t.Errorf("%s: tombstone level not above state_default", tc.name)
		}
	}
}

func TestMemberContent(t *testing.T) {
	u := storage.User{DisplayName: "Al", AvatarURL: "mxc://x/y"}
	for _, tc := range []struct {
		membership string
		isDirect   bool
		reason     string
		want       string
	}{
		{"join", false, "", `{"avatar_url":"mxc://x/y","displayname":"Al","membership":"join"}`},
		{"invite", true, "hi", `{"avatar_url":"mxc://x/y","displayname":"Al","is_direct":true,"membership":"invite","reason":"hi"}`},
		{"knock", false, "let me in", `{"avatar_url":"mxc://x/y","displayname":"Al","membership":"knock","reason":"let me in"}`},
		{"leave", false, "bye", `{"membership":"leave","reason":"bye"}`},
		{"ban", false, "", `{"membership":"ban"}`},
	} {
		raw, _ := json.Marshal(memberContent(tc.membership, u, tc.isDirect, tc.reason))
		if string(raw) != tc.want {
			t.Errorf("%s: %s, want %s", tc.membership, raw, tc.want)
		}
	}
	// No profile: no empty keys.
	raw, _ := json.Marshal(memberContent("join", storage.User{}, false, ""))
	if string(raw) != `{"membership":"join"}` {
		t.Errorf("empty profile: %s", raw)
	}
}

// testServer is a room server on a fresh database of the engine, with the
// given local users.
func testServer(t *testing.T, dsn string, users ...string) *Server {
	t.Helper()
	db := storagetest.OpenDB(t, dsn)
	cfg := config.Default()
	cfg.ServerName = "aula.test"
	key, err := LoadOrCreateSigningKey(filepath.Join(t.TempDir(), "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		local, _, _ := cutUserID(u)
		if err := db.CreateUser(context.Background(), storage.User{UserID: u, Localpart: local, DisplayName: local}); err != nil {
			t.Fatal(err)
		}
	}
	return New(db, cfg, key, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// wantCode fails unless err is a Matrix error with the status and code.
func wantCode(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	e, ok := mxerr.As(err)
	if !ok || e.Status != status || e.Code != code {
		t.Errorf("%s: got %v, want %d %s", what, err, status, code)
	}
}

// TestKnock covers knocking through the room server (the HTTP route is the
// router's): only rooms with the knock join rule, no-op when repeated, then
// an invite, a refusal (kick) or a withdrawal (leave).
func TestKnock(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		const alice, bob, carol, dave = "@alice:aula.test", "@bob:aula.test", "@carol:aula.test", "@dave:aula.test"
		s := testServer(t, dsn, alice, bob, carol, dave)
		ctx := context.Background()
		knockState := []StateEvent{{Type: spec.MRoomJoinRules, Content: json.RawMessage(`{"join_rule":"knock"}`)}}
		room, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, RoomAliasName: "knock", InitialState: knockState})
		if err != nil {
			t.Fatal(err)
		}
		membership := func(u string) (string, map[string]any) {
			t.Helper()
			ev, err := s.db.StateEventAt(ctx, room, spec.MRoomMember, u, 0)
			if err != nil {
				t.Fatalf("member event of %s: %v", u, err)
			}
			var pdu struct {
				Content map[string]any `json:"content"`
			}
			_ = json.Unmarshal(ev.JSON, &pdu)
			m, _ := pdu.Content["membership"].(string)
			return m, pdu.Content
		}
		latest := func() int64 {
			info, err := s.db.Room(ctx, room)
			if err != nil {
				t.Fatal(err)
			}
			return info.LatestDepth
		}

		// Knocks by alias and by ID, with the profile and the reason.
		got, err := s.Knock(ctx, bob, "#knock:aula.test", "let me in")
		if err != nil || got != room {
			t.Fatalf("Knock = %q, %v", got, err)
		}
		if m, c := membership(bob); m != spec.Knock || c["reason"] != "let me in" || c["displayname"] != "bob" {
			t.Errorf("bob's knock: %v", c)
		}
		depth := latest()
		if _, err := s.Knock(ctx, bob, room, "let me in"); err != nil || latest() != depth {
			t.Errorf("repeated knock: %v, depth %d → %d", err, depth, latest())
		}
		// A knocker cannot join yet; an invite lets them in.
		_, err = s.Join(ctx, bob, room, "", nil)
		wantCode(t, "join while knocking", err, 403, "M_FORBIDDEN")
		if err := s.Invite(ctx, alice, room, bob, ""); err != nil {
			t.Fatalf("invite a knocker: %v", err)
		}
		if _, err := s.Join(ctx, bob, room, "", nil); err != nil {
			t.Fatalf("join after invite: %v", err)
		}
		_, err = s.Knock(ctx, bob, room, "")
		wantCode(t, "knock while joined", err, 403, "M_FORBIDDEN")

		// A knock can be refused (kicked) or withdrawn (leave).
		if _, err := s.Knock(ctx, carol, room, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Kick(ctx, alice, room, carol, "no"); err != nil {
			t.Fatalf("refuse a knock: %v", err)
		}
		if m, _ := membership(carol); m != spec.Leave {
			t.Errorf("refused knock: %s", m)
		}
		if _, err := s.Knock(ctx, dave, room, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Leave(ctx, dave, room, ""); err != nil {
			t.Fatalf("withdraw a knock: %v", err)
		}
		if m, _ := membership(dave); m != spec.Leave {
			t.Errorf("withdrawn knock: %s", m)
		}
		// Knocking while invited or banned, or where the join rule is not
		// knock, is refused; unknown rooms are 404.
		if err := s.Ban(ctx, alice, room, dave, ""); err != nil {
			t.Fatal(err)
		}
		_, err = s.Knock(ctx, dave, room, "")
		wantCode(t, "banned knock", err, 403, "M_FORBIDDEN")
		private, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Invite: []string{carol}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Knock(ctx, dave, private, "")
		wantCode(t, "knock on invite-only", err, 403, "M_FORBIDDEN")
		_, err = s.Knock(ctx, carol, private, "")
		wantCode(t, "knock while invited", err, 403, "M_FORBIDDEN")
		_, err = s.Knock(ctx, dave, "!nosuch:aula.test", "")
		wantCode(t, "unknown room", err, 404, "M_NOT_FOUND")
		_, err = s.Knock(ctx, dave, "#nosuch:aula.test", "")
		wantCode(t, "unknown alias", err, 404, "M_NOT_FOUND")
	})
}
