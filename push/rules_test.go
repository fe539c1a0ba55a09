package push

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/mxerr"
)

const alice = "@alice:example.org"

// jsonEqual reports whether a and b are the same JSON value, ignoring key
// order and whitespace.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// mustJSON encodes v without HTML escaping, as an HTTP layer that wants the
// spec's literal bytes would.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// wantErr checks that err is a Matrix error with the given status and code.
func wantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d %s", status, code)
	}
	e, ok := mxerr.As(err)
	if !ok {
		t.Fatalf("got %T %v, want *mxerr.Error", err, err)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", e.Status, e.Code, e.Msg, status, code)
	}
}

func ids(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.RuleID
	}
	return out
}

// TestDefaultsJSON compares every server-default rule with the definition
// in the spec (v1.16), with the placeholders filled in for alice.
func TestDefaultsJSON(t *testing.T) {
	rs := Defaults(alice)
	tests := []struct {
		kind, id, want string
	}{
		{"override", ".m.rule.master", `{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}`},
		{"override", ".m.rule.suppress_notices", `{"rule_id":".m.rule.suppress_notices","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"content.msgtype","pattern":"m.notice"}],"actions":[]}`},
		{"override", ".m.rule.invite_for_me", `{"rule_id":".m.rule.invite_for_me","default":true,"enabled":true,
			"conditions":[{"key":"type","kind":"event_match","pattern":"m.room.member"},
				{"key":"content.membership","kind":"event_match","pattern":"invite"},
				{"key":"state_key","kind":"event_match","pattern":"@alice:example.org"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{"override", ".m.rule.member_event", `{"rule_id":".m.rule.member_event","default":true,"enabled":true,
			"conditions":[{"key":"type","kind":"event_match","pattern":"m.room.member"}],"actions":[]}`},
		{"override", ".m.rule.is_user_mention", `{"rule_id":".m.rule.is_user_mention","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@alice:example.org"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{"override", ".m.rule.contains_display_name", `{"rule_id":".m.rule.contains_display_name","default":true,"enabled":true,
			"conditions":[{"kind":"contains_display_name"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{"override", ".m.rule.is_room_mention", `{"rule_id":".m.rule.is_room_mention","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true},
				{"kind":"sender_notification_permission","key":"room"}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{"override", ".m.rule.roomnotif", `{"rule_id":".m.rule.roomnotif","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"content.body","pattern":"@room"},
				{"kind":"sender_notification_permission","key":"room"}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{"override", ".m.rule.tombstone", `{"rule_id":".m.rule.tombstone","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.tombstone"},
				{"kind":"event_match","key":"state_key","pattern":""}],
			"actions":["notify",{"set_tweak":"highlight"}]}`},
		{"override", ".m.rule.reaction", `{"rule_id":".m.rule.reaction","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.reaction"}],"actions":[]}`},
		{"override", ".m.rule.room.server_acl", `{"rule_id":".m.rule.room.server_acl","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.server_acl"},
				{"kind":"event_match","key":"state_key","pattern":""}],"actions":[]}`},
		{"override", ".m.rule.suppress_edits", `{"rule_id":".m.rule.suppress_edits","default":true,"enabled":true,
			"conditions":[{"kind":"event_property_is","key":"content.m\\.relates_to.rel_type","value":"m.replace"}],"actions":[]}`},
		{"content", ".m.rule.contains_user_name", `{"rule_id":".m.rule.contains_user_name","default":true,"enabled":true,
			"pattern":"alice","actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`},
		{"underride", ".m.rule.call", `{"rule_id":".m.rule.call","default":true,"enabled":true,
			"conditions":[{"key":"type","kind":"event_match","pattern":"m.call.invite"}],
			"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`},
		{"underride", ".m.rule.encrypted_room_one_to_one", `{"rule_id":".m.rule.encrypted_room_one_to_one","default":true,"enabled":true,
			"conditions":[{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"m.room.encrypted"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{"underride", ".m.rule.room_one_to_one", `{"rule_id":".m.rule.room_one_to_one","default":true,"enabled":true,
			"conditions":[{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"m.room.message"}],
			"actions":["notify",{"set_tweak":"sound","value":"default"}]}`},
		{"underride", ".m.rule.message", `{"rule_id":".m.rule.message","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":["notify"]}`},
		{"underride", ".m.rule.encrypted", `{"rule_id":".m.rule.encrypted","default":true,"enabled":true,
			"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.encrypted"}],"actions":["notify"]}`},
	}
	count := 0
	for _, kind := range Kinds {
		l, _ := rs.Rules(kind)
		count += len(l)
	}
	if count != len(tests) {
		t.Errorf("Defaults has %d rules, spec v1.16 defines %d", count, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r, err := rs.Get(tt.kind, tt.id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got := mustJSON(t, r); !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDefaultsOrderAndShape(t *testing.T) {
	rs := Defaults(alice)
	want := map[string][]string{
		"override": {RuleMaster, RuleSuppressNotices, RuleInviteForMe, RuleMemberEvent, RuleIsUserMention,
			RuleContainsDisplayName, RuleIsRoomMention, RuleRoomNotif, RuleTombstone, RuleReaction,
			RuleServerACL, RuleSuppressEdits},
		"content":   {RuleContainsUserName},
		"room":      {},
		"sender":    {},
		"underride": {RuleCall, RuleEncryptedRoomOneToOne, RuleRoomOneToOne, RuleMessage, RuleEncrypted},
	}
	for kind, w := range want {
		l, err := rs.Rules(kind)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(l); !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", kind, got, w)
		}
	}

	// Exact bytes of a few rules: key presence matters, not just values.
	exact := []struct{ kind, id, want string }{
		{"override", RuleMaster, `{"rule_id":".m.rule.master","default":true,"enabled":false,"actions":[],"conditions":[]}`},
		{"content", RuleContainsUserName, `{"rule_id":".m.rule.contains_user_name","default":true,"enabled":true,"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}],"pattern":"alice"}`},
		{"override", RuleTombstone, `{"rule_id":".m.rule.tombstone","default":true,"enabled":true,"actions":["notify",{"set_tweak":"highlight"}],"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.tombstone"},{"kind":"event_match","key":"state_key","pattern":""}]}`},
	}
	for _, tt := range exact {
		r, _ := rs.Get(tt.kind, tt.id)
		if got := string(mustJSON(t, r)); got != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.id, got, tt.want)
		}
	}

	// Empty kinds marshal as [], never null.
	b := mustJSON(t, Ruleset{})
	if string(b) != `{"override":[],"content":[],"room":[],"sender":[],"underride":[]}` {
		t.Errorf("empty ruleset: %s", b)
	}
	// Nil actions marshal as [].
	if b := mustJSON(t, Rule{RuleID: "x"}); string(b) != `{"rule_id":"x","default":false,"enabled":false,"actions":[]}` {
		t.Errorf("empty rule: %s", b)
	}
	// The localpart is taken up to the first colon.
	if p := *Defaults("@bob.smith:a.example:8448").Content[0].Pattern; p != "bob.smith" {
		t.Errorf("localpart = %q", p)
	}
	// Defaults returns fresh memory each time.
	d1 := Defaults(alice)
	d1.Override[1].Actions = append(d1.Override[1].Actions, json.RawMessage(`"notify"`))
	if d2 := Defaults(alice); len(d2.Override[1].Actions) != 0 {
		t.Error("Defaults shares memory between calls")
	}
}

func TestRulesetGet(t *testing.T) {
	rs := Defaults(alice)
	if _, err := rs.Get("override", RuleMaster); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, id string
		status   int
		code     string
	}{
		{"override", "nope", 404, "M_NOT_FOUND"},
		{"underride", RuleMaster, 404, "M_NOT_FOUND"}, // right ID, wrong kind
		{"not_a_kind", RuleMaster, 400, "M_INVALID_PARAM"},
		{"", "x", 400, "M_INVALID_PARAM"},
	}
	for _, tt := range tests {
		_, err := rs.Get(tt.kind, tt.id)
		wantErr(t, err, tt.status, tt.code)
	}
	_, err := rs.Rules("global")
	wantErr(t, err, 400, "M_INVALID_PARAM")
}

func TestConditionRoundTrip(t *testing.T) {
	tests := []string{
		`{"kind":"event_property_is","key":"a","value":false}`,
		`{"kind":"event_property_is","key":"a","value":0}`,
		`{"kind":"event_property_is","key":"a","value":null}`,
		`{"kind":"event_property_is","key":"a","value":""}`,
		`{"kind":"event_property_contains","key":"a","value":-9007199254740991}`,
		`{"kind":"event_match","key":"state_key","pattern":""}`,
		`{"kind":"room_member_count","is":"<=10"}`,
		`{"kind":"contains_display_name"}`,
		`{"kind":"org.example.custom","feature":"x","nested":{"a":[1,2]},"zzz":null}`,
	}
	for _, in := range tests {
		var c Condition
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out := mustJSON(t, c)
		if !jsonEqual(t, out, []byte(in)) {
			t.Errorf("round trip:\ngot  %s\nwant %s", out, in)
		}
	}
	// Absent value stays absent.
	var c Condition
	if err := json.Unmarshal([]byte(`{"kind":"event_match","key":"k","pattern":"p"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Value != nil || strings.Contains(string(mustJSON(t, c)), "value") {
		t.Errorf("absent value became present: %s", mustJSON(t, c))
	}
	// Wrongly typed known parameters are rejected.
	for _, in := range []string{`{"kind":1}`, `{"kind":"event_match","pattern":null}`, `null`, `[]`} {
		var c Condition
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestEffectiveOrder(t *testing.T) {
	var ur UserRules
	put := func(kind, id, body string) {
		t.Helper()
		if err := ur.Put(alice, kind, id, []byte(body), "", ""); err != nil {
			t.Fatalf("Put %s/%s: %v", kind, id, err)
		}
	}
	put("override", "o1", `{"actions":["notify"],"conditions":[]}`)
	put("override", "o2", `{"actions":["notify"],"conditions":[]}`)
	put("content", "c1", `{"actions":["notify"],"pattern":"cake"}`)
	put("room", "!r:x", `{"actions":[]}`)
	put("sender", "@s:x", `{"actions":[]}`)
	put("underride", "u1", `{"actions":["notify"],"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}]}`)

	rs := Effective(alice, ur)
	want := map[string][]string{
		"override": {RuleMaster, "o2", "o1", RuleSuppressNotices, RuleInviteForMe, RuleMemberEvent, RuleIsUserMention,
			RuleContainsDisplayName, RuleIsRoomMention, RuleRoomNotif, RuleTombstone, RuleReaction,
			RuleServerACL, RuleSuppressEdits},
		"content":   {"c1", RuleContainsUserName},
		"room":      {"!r:x"},
		"sender":    {"@s:x"},
		"underride": {"u1", RuleCall, RuleEncryptedRoomOneToOne, RuleRoomOneToOne, RuleMessage, RuleEncrypted},
	}
	for kind, w := range want {
		l, _ := rs.Rules(kind)
		if got := ids(l); !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", kind, got, w)
		}
	}

	// The user's rules marshal with the kind-specific shape.
	for _, tt := range []struct{ kind, id, want string }{
		{"override", "o1", `{"rule_id":"o1","default":false,"enabled":true,"actions":["notify"],"conditions":[]}`},
		{"content", "c1", `{"rule_id":"c1","default":false,"enabled":true,"actions":["notify"],"pattern":"cake"}`},
		{"room", "!r:x", `{"rule_id":"!r:x","default":false,"enabled":true,"actions":[]}`},
		{"sender", "@s:x", `{"rule_id":"@s:x","default":false,"enabled":true,"actions":[]}`},
	} {
		r, err := rs.Get(tt.kind, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(mustJSON(t, r)); got != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.id, got, tt.want)
		}
	}

	// The result shares no memory with ur.
	rs.Override[1].Actions[0] = json.RawMessage(`"coalesce"`)
	rs.Content[0].Pattern = nil
	if string(ur.Override[0].Actions[0]) != `"notify"` || ur.Content[0].Pattern == nil {
		t.Error("Effective shares memory with UserRules")
	}

	// The zero UserRules gives exactly the defaults.
	if a, b := mustJSON(t, Effective(alice, UserRules{})), mustJSON(t, Defaults(alice)); !bytes.Equal(a, b) {
		t.Errorf("Effective(zero) != Defaults:\n%s\n%s", a, b)
	}
}

func TestPutHappy(t *testing.T) {
	tests := []struct {
		kind, id, body, want string
	}{
		{"override", "beer", `{"conditions":[{"kind":"event_match","key":"content.body","pattern":"beer"},{"kind":"room_member_count","is":"<=10"}],"actions":["notify",{"set_tweak":"sound","value":"beeroclock.wav"}]}`,
			`{"rule_id":"beer","default":false,"enabled":true,"actions":["notify",{"set_tweak":"sound","value":"beeroclock.wav"}],"conditions":[{"kind":"event_match","key":"content.body","pattern":"beer"},{"kind":"room_member_count","is":"<=10"}]}`},
		{"underride", "u", `{"conditions":[],"actions":[]}`,
			`{"rule_id":"u","default":false,"enabled":true,"actions":[],"conditions":[]}`},
		{"underride", "prop", `{"conditions":[{"kind":"event_property_is","key":"content.x","value":false},{"kind":"org.example.future","foo":[1]}],"actions":["dont_notify","coalesce"]}`,
			`{"rule_id":"prop","default":false,"enabled":true,"actions":["dont_notify","coalesce"],"conditions":[{"kind":"event_property_is","key":"content.x","value":false},{"kind":"org.example.future","foo":[1]}]}`},
		{"content", "SSByZWFsbHkgbGlrZSBjYWtl", `{"pattern":"cake","actions":["notify",{"set_tweak":"sound","value":"cakealarm.wav"}]}`,
			`{"rule_id":"SSByZWFsbHkgbGlrZSBjYWtl","default":false,"enabled":true,"actions":["notify",{"set_tweak":"sound","value":"cakealarm.wav"}],"pattern":"cake"}`},
		// Room rule IDs are not checked for a '!' sigil: the spec's own
		// examples and sytest use "#spam:example.com".
		{"room", "#spam:example.com", `{"actions":[]}`,
			`{"rule_id":"#spam:example.com","default":false,"enabled":true,"actions":[]}`},
		{"room", "!dj234r78wl45Gh4D:matrix.org", `{"actions":[],"conditions":[{"kind":"ignored"}],"pattern":"ignored"}`,
			`{"rule_id":"!dj234r78wl45Gh4D:matrix.org","default":false,"enabled":true,"actions":[]}`},
		{"sender", "@spambot:matrix.org", `{"actions":[]}`,
			`{"rule_id":"@spambot:matrix.org","default":false,"enabled":true,"actions":[]}`},
		// Extra fields (including "enabled") are ignored: new rules are enabled.
		{"sender", "@x:y", `{"actions":["notify"],"enabled":false,"extra":1}`,
			`{"rule_id":"@x:y","default":false,"enabled":true,"actions":["notify"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.id, func(t *testing.T) {
			var ur UserRules
			if err := ur.Put(alice, tt.kind, tt.id, []byte(tt.body), "", ""); err != nil {
				t.Fatalf("Put: %v", err)
			}
			r, err := Effective(alice, ur).Get(tt.kind, tt.id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got := string(mustJSON(t, r)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPutErrors(t *testing.T) {
	// Every case starts from a user who has room rules "!a:x" and "!b:x".
	tests := []struct {
		name, kind, id, body, before, after string
		status                              int
		code                                string
	}{
		{"unknown kind", "not_a_kind", "x", `{"actions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"empty rule id", "room", "", `{"actions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"reserved rule id", "override", ".my.rule", `{"actions":[],"conditions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"server-default rule id", "override", RuleMaster, `{"actions":[],"conditions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"slash", "room", "!a/b:x", `{"actions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"backslash", "room", `#fo\o:example.com`, `{"actions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"sender not a user id", "sender", "bob", `{"actions":[]}`, "", "", 400, "M_INVALID_PARAM"},
		{"not json", "room", "!c:x", `{"actions":`, "", "", 400, "M_NOT_JSON"},
		{"not an object", "room", "!c:x", `["notify"]`, "", "", 400, "M_BAD_JSON"},
		{"null body", "room", "!c:x", `null`, "", "", 400, "M_BAD_JSON"},
		{"no actions", "room", "!c:x", `{}`, "", "", 400, "M_MISSING_PARAM"},
		{"actions not array", "room", "!c:x", `{"actions":"notify"}`, "", "", 400, "M_INVALID_PARAM"},
		{"actions null", "room", "!c:x", `{"actions":null}`, "", "", 400, "M_INVALID_PARAM"},
		{"unknown action", "room", "!c:x", `{"actions":["not_an_action"]}`, "", "", 400, "M_INVALID_PARAM"},
		{"unknown object action", "room", "!c:x", `{"actions":[{"foo":"bar"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"bad set_tweak", "room", "!c:x", `{"actions":[{"set_tweak":1}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"number action", "room", "!c:x", `{"actions":[1]}`, "", "", 400, "M_INVALID_PARAM"},
		{"override without conditions", "override", "o", `{"actions":[]}`, "", "", 400, "M_MISSING_PARAM"},
		{"underride without conditions", "underride", "u", `{"actions":[]}`, "", "", 400, "M_MISSING_PARAM"},
		{"conditions not array", "override", "o", `{"actions":[],"conditions":{}}`, "", "", 400, "M_INVALID_PARAM"},
		{"condition not object", "override", "o", `{"actions":[],"conditions":["x"]}`, "", "", 400, "M_INVALID_PARAM"},
		{"condition without kind", "underride", "u", `{"actions":[],"conditions":[{}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"condition kind not string", "underride", "u", `{"actions":[],"conditions":[{"kind":3}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"event_match without key", "override", "o", `{"actions":[],"conditions":[{"kind":"event_match","pattern":"x"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"event_match without pattern", "override", "o", `{"actions":[],"conditions":[{"kind":"event_match","key":"type"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"property_is without value", "override", "o", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"property_is compound value", "override", "o", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a","value":[1]}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"property_contains float value", "override", "o", `{"actions":[],"conditions":[{"kind":"event_property_contains","key":"a","value":1.5}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"property_is huge int", "override", "o", `{"actions":[],"conditions":[{"kind":"event_property_is","key":"a","value":9007199254740992}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"member count bad is", "override", "o", `{"actions":[],"conditions":[{"kind":"room_member_count","is":"=<2"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"member count no is", "override", "o", `{"actions":[],"conditions":[{"kind":"room_member_count"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"sender permission no key", "override", "o", `{"actions":[],"conditions":[{"kind":"sender_notification_permission"}]}`, "", "", 400, "M_INVALID_PARAM"},
		{"content without pattern", "content", "c", `{"actions":[]}`, "", "", 400, "M_MISSING_PARAM"},
		{"content pattern not string", "content", "c", `{"actions":[],"pattern":5}`, "", "", 400, "M_INVALID_PARAM"},
		{"before unknown", "room", "!c:x", `{"actions":[]}`, "!nope:x", "", 400, "M_UNKNOWN"},
		{"after unknown", "room", "!c:x", `{"actions":[]}`, "", "!nope:x", 400, "M_UNKNOWN"},
		{"before other kind", "sender", "@c:x", `{"actions":[]}`, "!a:x", "", 400, "M_UNKNOWN"},
		{"before server default", "override", "o", `{"actions":[],"conditions":[]}`, RuleSuppressNotices, "", 400, "M_INVALID_PARAM"},
		{"after server default", "underride", "u", `{"actions":[],"conditions":[]}`, "", RuleMessage, 400, "M_INVALID_PARAM"},
		{"before itself, new", "room", "!c:x", `{"actions":[]}`, "!c:x", "", 400, "M_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ur UserRules
			for _, id := range []string{"!b:x", "!a:x"} {
				if err := ur.Put(alice, "room", id, []byte(`{"actions":["notify"]}`), "", ""); err != nil {
					t.Fatal(err)
				}
			}
			before := mustJSON(t, ur)
			err := ur.Put(alice, tt.kind, tt.id, []byte(tt.body), tt.before, tt.after)
			wantErr(t, err, tt.status, tt.code)
			if after := mustJSON(t, ur); !bytes.Equal(before, after) {
				t.Errorf("failed Put changed the rules:\n%s\n%s", before, after)
			}
		})
	}
}

func TestPutPositioning(t *testing.T) {
	tests := []struct {
		name string
		// steps are id, before, after; each Puts a room rule.
		steps [][3]string
		want  []string
	}{
		{"new rules go first", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}}, []string{"c", "b", "a"}},
		{"before", [][3]string{{"a", "", ""}, {"b", "a", ""}}, []string{"b", "a"}},
		{"before middle", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "a", ""}}, []string{"b", "c", "a"}},
		{"after", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", "a"}}, []string{"b", "a", "c"}},
		{"after first", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", "b"}}, []string{"b", "c", "a"}},
		{"before wins over after", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}, {"d", "b", "a"}}, []string{"c", "d", "b", "a"}},
		{"update keeps position", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}, {"b", "", ""}}, []string{"c", "b", "a"}},
		{"update moves before", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}, {"a", "c", ""}}, []string{"a", "c", "b"}},
		{"update moves after", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}, {"c", "", "a"}}, []string{"b", "a", "c"}},
		{"update relative to itself", [][3]string{{"a", "", ""}, {"b", "", ""}, {"c", "", ""}, {"b", "b", ""}}, []string{"c", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ur UserRules
			for _, s := range tt.steps {
				if err := ur.Put(alice, "room", "!"+s[0], []byte(`{"actions":[]}`), prefixed(s[1]), prefixed(s[2])); err != nil {
					t.Fatalf("Put %v: %v", s, err)
				}
			}
			want := make([]string, len(tt.want))
			for i, id := range tt.want {
				want[i] = "!" + id
			}
			if got := ids(ur.Room); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func prefixed(id string) string {
	if id == "" {
		return ""
	}
	return "!" + id
}

func TestPutReplace(t *testing.T) {
	var ur UserRules
	mustPut := func(body string) {
		t.Helper()
		if err := ur.Put(alice, "content", "cake", []byte(body), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(`{"actions":["notify"],"pattern":"cake"}`)
	if err := ur.SetEnabled(alice, "content", "cake", false); err != nil {
		t.Fatal(err)
	}
	mustPut(`{"actions":[],"pattern":"cake*lie"}`)
	r, err := Effective(alice, ur).Get("content", "cake")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rule_id":"cake","default":false,"enabled":false,"actions":[],"pattern":"cake*lie"}`
	if got := string(mustJSON(t, r)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if len(ur.Content) != 1 {
		t.Errorf("replacing duplicated the rule: %d rules", len(ur.Content))
	}
}

func TestDelete(t *testing.T) {
	var ur UserRules
	for _, id := range []string{"!a:x", "!b:x"} {
		if err := ur.Put(alice, "room", id, []byte(`{"actions":[]}`), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := ur.Delete("room", "!a:x"); err != nil {
		t.Fatal(err)
	}
	if got := ids(ur.Room); !slices.Equal(got, []string{"!b:x"}) {
		t.Errorf("after delete: %v", got)
	}
	if _, err := Effective(alice, ur).Get("room", "!a:x"); err == nil {
		t.Error("deleted rule still visible")
	}

	tests := []struct {
		name, kind, id string
		status         int
		code           string
	}{
		{"again", "room", "!a:x", 404, "M_NOT_FOUND"},
		{"unknown", "override", "nope", 404, "M_NOT_FOUND"},
		{"wrong kind", "sender", "!b:x", 404, "M_NOT_FOUND"},
		{"server default", "override", RuleMaster, 400, "M_INVALID_PARAM"},
		{"server default content", "content", RuleContainsUserName, 400, "M_INVALID_PARAM"},
		{"unknown dot rule", "override", ".m.rule.nope", 404, "M_NOT_FOUND"},
		{"unknown kind", "global", "x", 400, "M_INVALID_PARAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, ur.Delete(tt.kind, tt.id), tt.status, tt.code)
		})
	}

	if err := ur.Delete("room", "!b:x"); err != nil {
		t.Fatal(err)
	}
	if ur.Room != nil {
		t.Errorf("empty list not reset: %#v", ur.Room)
	}
}

func TestSetEnabled(t *testing.T) {
	var ur UserRules
	if err := ur.Put(alice, "sender", "@s:x", []byte(`{"actions":[]}`), "", ""); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		kind, id string
		enabled  bool
	}{
		{"override", RuleMaster, true},
		{"underride", RuleMessage, false},
		{"content", RuleContainsUserName, false},
		{"sender", "@s:x", false},
	}
	for _, s := range steps {
		if err := ur.SetEnabled(alice, s.kind, s.id, s.enabled); err != nil {
			t.Fatalf("SetEnabled %s: %v", s.id, err)
		}
	}
	rs := Effective(alice, ur)
	for _, s := range steps {
		r, err := rs.Get(s.kind, s.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Enabled != s.enabled {
			t.Errorf("%s enabled = %v, want %v", s.id, r.Enabled, s.enabled)
		}
	}
	// A default changed back to its spec value leaves no trace.
	for _, s := range steps[:3] {
		if err := ur.SetEnabled(alice, s.kind, s.id, !s.enabled); err != nil {
			t.Fatal(err)
		}
	}
	if ur.Defaults != nil {
		t.Errorf("defaults not pruned: %s", mustJSON(t, ur.Defaults))
	}

	tests := []struct {
		name, kind, id string
		status         int
		code           string
	}{
		{"unknown rule", "override", "nope", 404, "M_NOT_FOUND"},
		{"unknown dot rule", "override", ".m.rule.nope", 404, "M_NOT_FOUND"},
		{"default in wrong kind", "underride", RuleMaster, 404, "M_NOT_FOUND"},
		{"unknown kind", "bogus", RuleMaster, 400, "M_INVALID_PARAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, ur.SetEnabled(alice, tt.kind, tt.id, true), tt.status, tt.code)
		})
	}
}

func TestSetActions(t *testing.T) {
	var ur UserRules
	if err := ur.Put(alice, "room", "!r:x", []byte(`{"actions":["notify"]}`), "", ""); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ kind, id, actions, want string }{
		{"room", "!r:x", `[ ]`, `[]`},
		{"override", RuleMaster, `["notify", {"set_tweak": "highlight"}]`, `["notify",{"set_tweak":"highlight"}]`},
		{"underride", RuleMessage, `[]`, `[]`},
		{"override", RuleSuppressNotices, `["notify",{"set_tweak":"sound","value":"x"}]`, `["notify",{"set_tweak":"sound","value":"x"}]`},
	}
	for _, s := range steps {
		if err := ur.SetActions(alice, s.kind, s.id, []byte(s.actions)); err != nil {
			t.Fatalf("SetActions %s: %v", s.id, err)
		}
	}
	rs := Effective(alice, ur)
	for _, s := range steps {
		r, err := rs.Get(s.kind, s.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(mustJSON(t, r.Actions)); got != s.want {
			t.Errorf("%s actions = %s, want %s", s.id, got, s.want)
		}
	}
	// Setting the spec's actions again removes the override.
	if err := ur.SetActions(alice, "override", RuleSuppressNotices, []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := ur.Defaults["override"][RuleSuppressNotices]; ok {
		t.Error("override equal to default not pruned")
	}
	if err := ur.SetActions(alice, "underride", RuleMessage, []byte(`["notify"]`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := ur.Defaults["underride"]; ok {
		t.Error("kind map not pruned")
	}

	tests := []struct {
		name, kind, id, actions string
		status                  int
		code                    string
	}{
		{"unknown rule", "room", "!nope:x", `[]`, 404, "M_NOT_FOUND"},
		{"unknown default", "override", ".m.rule.nope", `[]`, 404, "M_NOT_FOUND"},
		{"unknown kind", "bogus", "!r:x", `[]`, 400, "M_INVALID_PARAM"},
		{"not an array", "room", "!r:x", `{"actions":[]}`, 400, "M_INVALID_PARAM"},
		{"invalid action", "room", "!r:x", `["nope"]`, 400, "M_INVALID_PARAM"},
		{"invalid json", "room", "!r:x", `[`, 400, "M_INVALID_PARAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, ur.SetActions(alice, tt.kind, tt.id, []byte(tt.actions)), tt.status, tt.code)
		})
	}
}

func TestDecodeBodies(t *testing.T) {
	for _, tt := range []struct {
		body   string
		want   bool
		status int
		code   string
	}{
		{`{"enabled":true}`, true, 0, ""},
		{`{"enabled": false}`, false, 0, ""},
		{`{"enabled":"not a boolean"}`, false, 400, "M_INVALID_PARAM"},
		{`{"enabled":null}`, false, 400, "M_INVALID_PARAM"},
		{`{}`, false, 400, "M_MISSING_PARAM"},
		{`true`, false, 400, "M_BAD_JSON"},
		{`{`, false, 400, "M_NOT_JSON"},
	} {
		got, err := DecodeEnabledBody([]byte(tt.body))
		if tt.status == 0 {
			if err != nil || got != tt.want {
				t.Errorf("%s: got %v, %v", tt.body, got, err)
			}
			continue
		}
		wantErr(t, err, tt.status, tt.code)
	}

	acts, err := DecodeActionsBody([]byte(`{"actions":["notify"]}`))
	if err != nil || string(acts) != `["notify"]` {
		t.Errorf("DecodeActionsBody: %s, %v", acts, err)
	}
	_, err = DecodeActionsBody([]byte(`{}`))
	wantErr(t, err, http.StatusBadRequest, "M_MISSING_PARAM")
	_, err = DecodeActionsBody([]byte(`nope`))
	wantErr(t, err, http.StatusBadRequest, "M_NOT_JSON")
}

func TestUserRulesJSONRoundTrip(t *testing.T) {
	var ur UserRules
	steps := []func() error{
		func() error {
			return ur.Put(alice, "override", "o", []byte(`{"actions":["notify",{"set_tweak":"highlight","value":false}],"conditions":[{"kind":"event_property_is","key":"content.flag","value":false},{"kind":"event_property_is","key":"content.n","value":null},{"kind":"org.example","extra":{"a":1}}]}`), "", "")
		},
		func() error {
			return ur.Put(alice, "content", "c", []byte(`{"actions":[],"pattern":""}`), "", "")
		},
		func() error { return ur.Put(alice, "room", "!r:x", []byte(`{"actions":["dont_notify"]}`), "", "") },
		func() error { return ur.Put(alice, "sender", "@s:x", []byte(`{"actions":[]}`), "", "") },
		func() error {
			return ur.Put(alice, "underride", "u", []byte(`{"actions":[],"conditions":[]}`), "", "")
		},
		func() error { return ur.SetEnabled(alice, "sender", "@s:x", false) },
		func() error { return ur.SetEnabled(alice, "override", RuleMaster, true) },
		func() error { return ur.SetActions(alice, "underride", RuleMessage, []byte(`[]`)) },
		func() error { return ur.SetActions(alice, "content", RuleContainsUserName, []byte(`["notify"]`)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}

	doc := mustJSON(t, ur)
	var back UserRules
	if err := json.Unmarshal(doc, &back); err != nil {
		t.Fatal(err)
	}
	if again := mustJSON(t, back); !bytes.Equal(doc, again) {
		t.Errorf("document changed:\n%s\n%s", doc, again)
	}
	if !reflect.DeepEqual(ur, back) {
		t.Errorf("round trip differs:\n%#v\n%#v", ur, back)
	}
	a, b := mustJSON(t, Effective(alice, ur)), mustJSON(t, Effective(alice, back))
	if !bytes.Equal(a, b) {
		t.Errorf("effective rules differ:\n%s\n%s", a, b)
	}

	// Spot-check what survived.
	rs := Effective(alice, back)
	o, _ := rs.Get("override", "o")
	if got := string(mustJSON(t, o.Conditions)); got != `[{"kind":"event_property_is","key":"content.flag","value":false},{"kind":"event_property_is","key":"content.n","value":null},{"kind":"org.example","extra":{"a":1}}]` {
		t.Errorf("conditions: %s", got)
	}
	u, _ := rs.Get("underride", "u")
	if u.Conditions == nil || len(u.Conditions) != 0 {
		t.Errorf("empty conditions lost: %#v", u.Conditions)
	}
	m, _ := rs.Get("underride", RuleMessage)
	if m.Actions == nil || len(m.Actions) != 0 {
		t.Errorf("empty actions override lost: %#v", m.Actions)
	}
	if master, _ := rs.Get("override", RuleMaster); !master.Enabled || !master.Default {
		t.Errorf("master: %+v", master)
	}
	if s, _ := rs.Get("sender", "@s:x"); s.Enabled {
		t.Error("sender rule enabled flag lost")
	}

	// The zero value is an empty document, and an empty document is the zero value.
	if b := mustJSON(t, UserRules{}); string(b) != `{}` {
		t.Errorf("zero UserRules: %s", b)
	}
	var zero UserRules
	if err := json.Unmarshal([]byte(`{}`), &zero); err != nil || !reflect.DeepEqual(zero, UserRules{}) {
		t.Errorf("empty document: %#v, %v", zero, err)
	}

	// Overrides of rules the server no longer defines are ignored.
	stale := UserRules{Defaults: map[string]map[string]DefaultChange{"override": {".m.rule.gone": {Actions: []json.RawMessage{}}}}}
	if a, b := mustJSON(t, Effective(alice, stale)), mustJSON(t, Defaults(alice)); !bytes.Equal(a, b) {
		t.Error("stale default override changed the ruleset")
	}
}

func TestHTMLEscaping(t *testing.T) {
	c := Condition{Kind: "room_member_count", Is: "<=10", Extra: map[string]json.RawMessage{"a&b": json.RawMessage(`"<x>"`)}}
	// The outer encoder decides: json.Marshal escapes, an Encoder with
	// SetEscapeHTML(false) does not.
	if got, _ := json.Marshal(c); string(got) != `{"kind":"room_member_count","is":"\u003c=10","a\u0026b":"\u003cx\u003e"}` {
		t.Errorf("json.Marshal: %s", got)
	}
	if got := mustJSON(t, c); string(got) != `{"kind":"room_member_count","is":"<=10","a&b":"<x>"}` {
		t.Errorf("no escaping: %s", got)
	}
}

func TestIsKind(t *testing.T) {
	for _, k := range Kinds {
		if !IsKind(k) {
			t.Errorf("IsKind(%q) = false", k)
		}
	}
	for _, k := range []string{"", "global", "Override", "postcontent"} {
		if IsKind(k) {
			t.Errorf("IsKind(%q) = true", k)
		}
	}
	if !slices.Equal(Kinds, []string{"override", "content", "room", "sender", "underride"}) {
		t.Errorf("Kinds = %v", Kinds)
	}
}
