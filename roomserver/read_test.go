package roomserver

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// testViewer builds a viewer for @u from compact histories: vis lists
// "depth:setting" changes of history visibility, mem "depth:membership"
// changes of @u's membership, each in effect until the next.
func rvViewer(t *testing.T, vis, mem []string) *viewer {
	t.Helper()
	intervals := func(list []string, content func(string) []byte) []storage.StateInterval {
		var out []storage.StateInterval
		for i, item := range list {
			d, val, _ := strings.Cut(item, ":")
			from, err := parseToken("t" + d)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				out[i-1].ToDepth = from
			}
			out = append(out, storage.StateInterval{FromDepth: from, Membership: val, Content: content(val)})
		}
		return out
	}
	v := &viewer{userID: "@u:x", visibility: intervals(vis, func(s string) []byte {
		raw, _ := json.Marshal(map[string]any{"content": map[string]string{"history_visibility": s}})
		return raw
	})}
	for _, iv := range v.visibility {
		v.visValues = append(v.visValues, historyVisibility(iv.Content))
	}
	v.membership = intervals(mem, func(string) []byte { return nil })
	if n := len(v.membership); n > 0 {
		v.current = v.membership[n-1].Membership
	}
	return v
}

func rvMessage(depth int64) storage.Event {
	return storage.Event{Depth: depth, Type: "m.room.message", EventID: "$m"}
}

func rvState(depth int64, typ, key string) storage.Event {
	return storage.Event{Depth: depth, Type: typ, StateKey: &key, EventID: "$s"}
}

func TestHistoryVisibilityValue(t *testing.T) {
	for raw, want := range map[string]string{
		`{"content":{"history_visibility":"joined"}}`:         "joined",
		`{"content":{"history_visibility":"invited"}}`:        "invited",
		`{"content":{"history_visibility":"world_readable"}}`: "world_readable",
		`{"content":{"history_visibility":"shared"}}`:         "shared",
		`{"content":{"history_visibility":"everyone"}}`:       "shared", // unknown values
		`{"content":{"history_visibility":5}}`:                "shared",
		`{"content":{}}`:                                      "shared", // redacted
		`{"content":{"note":"world_readable"}}`:               "shared",
		`not json`:                                            "shared",
	} {
		if got := historyVisibility([]byte(raw)); got != want {
			t.Errorf("historyVisibility(%s) = %q, want %q", raw, got, want)
		}
	}
}

// The spec's rules, event by event. The room: history visibility set at
// depth 2; @u invited at 10, joined at 20, left at 30 (and, where given,
// joined again at 40).
func TestViewerCanSee(t *testing.T) {
	type check struct {
		ev   storage.Event
		want bool
	}
	mem := []string{"10:invite", "20:join", "30:leave"}
	rejoined := []string{"10:invite", "20:join", "30:leave", "40:join"}
	for _, tc := range []struct {
		name   string
		vis    []string
		mem    []string
		checks []check
	}{
		{"joined", []string{"2:joined"}, mem, []check{
			{rvMessage(5), false}, {rvMessage(15), false}, {rvMessage(25), true}, {rvMessage(35), false},
			{rvState(10, "m.room.member", "@u:x"), false}, // own invite: invite either side
			{rvState(20, "m.room.member", "@u:x"), true},  // own join
			{rvState(30, "m.room.member", "@u:x"), true},  // own leave: joined before it
			{rvState(25, "m.room.member", "@v:x"), true},
			{rvState(31, "m.room.member", "@v:x"), false},
		}},
		{"invited", []string{"2:invited"}, mem, []check{
			{rvMessage(5), false}, {rvMessage(15), true}, {rvMessage(25), true}, {rvMessage(35), false},
			{rvState(10, "m.room.member", "@u:x"), true}, // invited after it
		}},
		{"shared", []string{"2:shared"}, mem, []check{
			{rvMessage(1), true}, {rvMessage(5), true}, {rvMessage(15), true}, {rvMessage(25), true}, {rvMessage(35), false},
		}},
		{"shared, joined again", []string{"2:shared"}, rejoined, []check{
			{rvMessage(35), true}, {rvMessage(45), true},
		}},
		{"joined, joined again", []string{"2:joined"}, rejoined, []check{
			{rvMessage(35), false}, {rvMessage(45), true}, {rvState(40, "m.room.member", "@u:x"), true},
		}},
		{"world_readable", []string{"2:world_readable"}, mem, []check{
			{rvMessage(5), true}, {rvMessage(35), true},
		}},
		{"never a member, shared", []string{"2:shared"}, nil, []check{
			{rvMessage(5), false}, {rvState(2, "m.room.history_visibility", ""), false},
		}},
		{"no history visibility set: shared", nil, mem, []check{
			{rvMessage(5), true}, {rvMessage(35), false},
		}},
		{"changes", []string{"2:shared", "50:joined", "60:world_readable", "70:invited", "80:joined"}, []string{"75:invite", "90:join"}, []check{
			{rvMessage(45), true},  // shared, joined later
			{rvMessage(55), false}, // joined, not a member
			{rvMessage(65), true},  // world_readable
			{rvMessage(72), false}, // invited, not invited yet
			{rvMessage(77), true},  // invited while invited
			{rvMessage(85), false}, // joined, only invited
			{rvMessage(95), true},  // joined
			// Visibility changes show if either side allows it.
			{rvState(50, "m.room.history_visibility", ""), true}, // shared before
			{rvState(60, "m.room.history_visibility", ""), true}, // world_readable after
			{rvState(70, "m.room.history_visibility", ""), true}, // world_readable before
			{rvState(80, "m.room.history_visibility", ""), true}, // invited before, and invited
		}},
		{"changes, never a member", []string{"2:shared", "50:joined", "60:world_readable", "70:invited"}, nil, []check{
			{rvState(50, "m.room.history_visibility", ""), false},
			{rvState(60, "m.room.history_visibility", ""), true},
			{rvState(70, "m.room.history_visibility", ""), true},
			{rvMessage(65), true}, {rvMessage(75), false},
			// Another state key is not a visibility change.
			{rvState(75, "m.room.history_visibility", "x"), false},
		}},
	} {
		v := rvViewer(t, tc.vis, tc.mem)
		for _, c := range tc.checks {
			if got := v.canSee(c.ev); got != c.want {
				key := ""
				if c.ev.StateKey != nil {
					key = *c.ev.StateKey
				}
				t.Errorf("%s: canSee(%s %q at %d) = %v, want %v", tc.name, c.ev.Type, key, c.ev.Depth, got, c.want)
			}
		}
	}
}

func TestViewerStateDepth(t *testing.T) {
	for _, tc := range []struct {
		name          string
		vis, mem      []string
		worldReadable bool
		want          int64 // -1: 403
		maxVisible    int64 // with the latest event at 100
		mayRead       bool
	}{
		{"member", []string{"2:shared"}, []string{"10:join"}, false, 0, 100, true},
		{"left", []string{"2:shared"}, []string{"10:join", "30:leave"}, false, 30, 30, true},
		{"banned", []string{"2:shared"}, []string{"10:join", "30:ban"}, false, 30, 30, true},
		{"left, invited again", []string{"2:shared"}, []string{"10:join", "30:leave", "40:invite"}, false, 30, 100, true},
		{"left twice", []string{"2:shared"}, []string{"10:join", "30:leave", "40:join", "50:leave"}, false, 50, 50, true},
		{"invited only", []string{"2:shared"}, []string{"10:invite"}, false, -1, 100, false},
		{"rejected an invite", []string{"2:shared"}, []string{"10:invite", "12:leave"}, false, -1, 12, false},
		{"never", []string{"2:shared"}, nil, false, -1, 0, false},
		{"never, world_readable", []string{"2:world_readable"}, nil, true, 0, 100, true},
		{"was world_readable", []string{"2:world_readable", "20:joined"}, nil, false, -1, 20, false},
		{"left, world_readable", []string{"2:world_readable"}, []string{"10:join", "30:leave"}, true, 30, 100, true},
	} {
		v := rvViewer(t, tc.vis, tc.mem)
		if v.worldReadable() != tc.worldReadable {
			t.Errorf("%s: worldReadable() = %v", tc.name, v.worldReadable())
		}
		got, err := v.stateDepth(v.worldReadable())
		if tc.want < 0 {
			var e *mxerr.Error
			if !errors.As(err, &e) || e.Status != 403 {
				t.Errorf("%s: stateDepth = %d, %v; want 403", tc.name, got, err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%s: stateDepth = %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if got := v.maxVisibleDepth(100); got != tc.maxVisible {
			t.Errorf("%s: maxVisibleDepth = %d, want %d", tc.name, got, tc.maxVisible)
		}
		if got := v.mayRead(); got != tc.mayRead {
			t.Errorf("%s: mayRead = %v, want %v", tc.name, got, tc.mayRead)
		}
	}
}

// maxVisibleDepth must never hide a visible event.
func TestViewerMaxVisibleDepthBoundsCanSee(t *testing.T) {
	vis := [][]string{nil, {"2:joined"}, {"2:invited"}, {"2:world_readable", "40:shared"}, {"2:shared", "25:world_readable", "35:joined"}}
	mems := [][]string{nil, {"10:invite"}, {"10:join", "20:leave"}, {"10:invite", "15:leave", "30:invite", "45:join", "50:ban"}, {"5:join"}}
	for _, vs := range vis {
		for _, ms := range mems {
			v := rvViewer(t, vs, ms)
			bound := v.maxVisibleDepth(60)
			for d := int64(1); d <= 60; d++ {
				for _, ev := range []storage.Event{rvMessage(d), rvState(d, "m.room.member", "@u:x"), rvState(d, "m.room.history_visibility", "")} {
					if d > bound && v.canSee(ev) {
						t.Errorf("vis %v mem %v: %s at %d visible beyond the bound %d", vs, ms, ev.Type, d, bound)
					}
				}
			}
		}
	}
}

func TestTokens(t *testing.T) {
	for _, tok := range []string{"t0", "t1", "t123456789"} {
		d, err := parseToken(tok)
		if err != nil || formatToken(d) != tok {
			t.Errorf("parseToken(%q) = %d, %v", tok, d, err)
		}
	}
	for _, tok := range []string{"", "t", "t-1", "x5", "5", "s5", "t5x", "t 5", "t9999999999999999999999"} {
		if _, err := parseToken(tok); err == nil {
			t.Errorf("parseToken(%q) accepted", tok)
		}
	}
}

func TestRedactJSON(t *testing.T) {
	member := `{"type":"m.room.member","state_key":"@b:x","sender":"@b:x","room_id":"!r:x","content":{"membership":"join","displayname":"B",` +
		`"third_party_invite":{"display_name":"b***","signed":{"mxid":"@b:x","token":"t","signatures":{"x":{"ed25519:1":"sig"}}}}},` +
		`"unsigned":{"prev_content":{"membership":"invite"}},"depth":5,"origin_server_ts":1}`
	message := `{"type":"m.room.message","sender":"@b:x","room_id":"!r:x","content":{"body":"hi"},"depth":6,"origin_server_ts":2}`
	for _, tc := range []struct {
		version, event, wantContent string
	}{
		{"11", member, `{"membership":"join","third_party_invite":{"signed":{"mxid":"@b:x","token":"t","signatures":{"x":{"ed25519:1":"sig"}}}}}`},
		{"12", member, `{"membership":"join","third_party_invite":{"signed":{"mxid":"@b:x","token":"t","signatures":{"x":{"ed25519:1":"sig"}}}}}`},
		{"10", member, `{"membership":"join"}`},
		{"11", message, `{}`},
		{"11", `{"type":"m.room.member","state_key":"@b:x","content":{"membership":"leave","reason":"r"}}`, `{"membership":"leave"}`},
	} {
		ver := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersion(tc.version))
		out, err := redactJSON(ver, []byte(tc.event))
		if err != nil {
			t.Fatalf("v%s: %v", tc.version, err)
		}
		var got struct {
			Content  json.RawMessage `json:"content"`
			Unsigned json.RawMessage `json:"unsigned"`
			Type     string          `json:"type"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if rvCompact(t, string(got.Content)) != rvCompact(t, tc.wantContent) {
			t.Errorf("v%s %s: content %s, want %s", tc.version, got.Type, got.Content, tc.wantContent)
		}
		if got.Unsigned != nil {
			t.Errorf("v%s: unsigned survived redaction: %s", tc.version, got.Unsigned)
		}
	}
}

func rvCompact(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestTxnKey(t *testing.T) {
	a := txnKey("send", "!r:x", "a/b", "c")
	b := txnKey("send", "!r:x", "a", "b/c")
	if a == b {
		t.Fatal("different paths share a key")
	}
	if txnKey("send", "!r:x", "t", "1") == txnKey("redact", "!r:x", "t", "1") {
		t.Fatal("endpoints share a key")
	}
	long := txnKey("send", "!r:x", "t", strings.Repeat("x", 5000))
	if len(long) > 100 || long == txnKey("send", "!r:x", "t", strings.Repeat("x", 5001)) {
		t.Fatalf("long key %q", long)
	}
}
