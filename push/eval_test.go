package push

import (
	"encoding/json"
	"testing"
)

const bob = "@bob:example.org"

// ev builds a prepared event from a partial event object.
func ev(t testing.TB, v map[string]any) *Event {
	t.Helper()
	base := map[string]any{"type": "m.room.message", "sender": alice, "room_id": "!r:example.org", "event_id": "$e"}
	for k, x := range v {
		base[k] = x
	}
	raw, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return PrepareEvent(raw)
}

func text(body string) map[string]any {
	return map[string]any{"content": map[string]any{"msgtype": "m.text", "body": body}}
}

func cond(t *testing.T, js string) Condition {
	t.Helper()
	var c Condition
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// match evaluates a single override rule with one condition.
func match(t *testing.T, c Condition, e *Event, room Room, user User) bool {
	t.Helper()
	rs := Ruleset{Override: []Rule{{RuleID: "x", Enabled: true, Conditions: []Condition{c}, Actions: []json.RawMessage{json.RawMessage(`"notify"`)}}}}
	return Compile(rs).Evaluate(e, &room, user).Notify
}

func TestConditionKinds(t *testing.T) {
	room := Room{MemberCount: 3, SenderLevel: 50, NotificationLevels: map[string]int64{"room": 50}}
	cases := []struct {
		name string
		cond string
		ev   map[string]any
		user User
		room *Room
		want bool
	}{
		{"event_match exact", `{"kind":"event_match","key":"type","pattern":"m.room.message"}`, text("x"), User{}, nil, true},
		{"event_match case-insensitive", `{"kind":"event_match","key":"type","pattern":"M.ROOM.*"}`, text("x"), User{}, nil, true},
		{"event_match whole value", `{"kind":"event_match","key":"type","pattern":"m.room"}`, text("x"), User{}, nil, false},
		{"event_match ?", `{"kind":"event_match","key":"content.msgtype","pattern":"m.te?t"}`, text("x"), User{}, nil, true},
		{"event_match body word", `{"kind":"event_match","key":"content.body","pattern":"cake"}`, text("I like cake!"), User{}, nil, true},
		{"event_match body not inside a word", `{"kind":"event_match","key":"content.body","pattern":"cake"}`, text("cupcakes"), User{}, nil, false},
		{"event_match body glob", `{"kind":"event_match","key":"content.body","pattern":"ca*e"}`, text("a CASE here"), User{}, nil, true},
		{"event_match non-string", `{"kind":"event_match","key":"content.n","pattern":"1"}`, map[string]any{"content": map[string]any{"n": 1}}, User{}, nil, false},
		{"event_match missing key", `{"kind":"event_match","key":"content.nope","pattern":"*"}`, text("x"), User{}, nil, false},
		{"event_property_is bool", `{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true}`,
			map[string]any{"content": map[string]any{"m.mentions": map[string]any{"room": true}}}, User{}, nil, true},
		{"event_property_is type-strict", `{"kind":"event_property_is","key":"content.n","value":"1"}`,
			map[string]any{"content": map[string]any{"n": 1}}, User{}, nil, false},
		{"event_property_is int", `{"kind":"event_property_is","key":"content.n","value":1}`,
			map[string]any{"content": map[string]any{"n": 1}}, User{}, nil, true},
		{"event_property_is null", `{"kind":"event_property_is","key":"content.n","value":null}`,
			map[string]any{"content": map[string]any{"n": nil}}, User{}, nil, true},
		{"event_property_contains", `{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@bob:example.org"}`,
			map[string]any{"content": map[string]any{"m.mentions": map[string]any{"user_ids": []string{"@x:y", bob}}}}, User{}, nil, true},
		{"event_property_contains absent", `{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@bob:example.org"}`,
			map[string]any{"content": map[string]any{"m.mentions": map[string]any{"user_ids": []string{"@x:y"}}}}, User{}, nil, false},
		{"contains_display_name", `{"kind":"contains_display_name"}`, text("Hi Bob Builder, ok?"), User{DisplayName: "bob builder"}, nil, true},
		{"contains_display_name inside word", `{"kind":"contains_display_name"}`, text("bobby"), User{DisplayName: "Bob"}, nil, false},
		{"contains_display_name none", `{"kind":"contains_display_name"}`, text("bob"), User{}, nil, false},
		{"room_member_count ==", `{"kind":"room_member_count","is":"3"}`, text("x"), User{}, &room, true},
		{"room_member_count <", `{"kind":"room_member_count","is":"<3"}`, text("x"), User{}, &room, false},
		{"room_member_count >=", `{"kind":"room_member_count","is":">=2"}`, text("x"), User{}, &room, true},
		{"sender_notification_permission", `{"kind":"sender_notification_permission","key":"room"}`, text("x"), User{}, &room, true},
		{"sender_notification_permission low", `{"kind":"sender_notification_permission","key":"room"}`, text("x"), User{},
			&Room{SenderLevel: 0, NotificationLevels: map[string]int64{"room": 50}}, false},
		{"unknown kind never matches", `{"kind":"org.example.future"}`, text("x"), User{}, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Room{}
			if c.room != nil {
				r = *c.room
			}
			if got := match(t, cond(t, c.cond), ev(t, c.ev), r, c.user); got != c.want {
				t.Fatalf("match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDefaultRulesAndPriority(t *testing.T) {
	rules := Compile(Effective(bob, UserRules{}))
	group := &Room{MemberCount: 5, SenderLevel: 100, NotificationLevels: map[string]int64{"room": 50}}
	dm := &Room{MemberCount: 2}
	cases := []struct {
		name      string
		ev        map[string]any
		room      *Room
		user      User
		rule      string
		highlight bool
	}{
		{"plain message", text("hello"), group, User{}, RuleMessage, false},
		{"one-to-one", text("hello"), dm, User{}, RuleRoomOneToOne, false},
		{"encrypted", map[string]any{"type": "m.room.encrypted", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"}}, group, User{}, RuleEncrypted, false},
		{"encrypted one-to-one", map[string]any{"type": "m.room.encrypted", "content": map[string]any{}}, dm, User{}, RuleEncryptedRoomOneToOne, false},
		{"notice suppressed", map[string]any{"content": map[string]any{"msgtype": "m.notice", "body": "bob"}}, group, User{}, RuleSuppressNotices, false},
		{"user mention", map[string]any{"content": map[string]any{"body": "hi", "m.mentions": map[string]any{"user_ids": []string{bob}}}}, group, User{}, RuleIsUserMention, true},
		{"room mention", map[string]any{"content": map[string]any{"body": "hi all", "m.mentions": map[string]any{"room": true}}}, group, User{}, RuleIsRoomMention, true},
		{"room mention without permission", map[string]any{"content": map[string]any{"body": "hi all", "m.mentions": map[string]any{"room": true}}},
			&Room{MemberCount: 5, NotificationLevels: map[string]int64{"room": 50}}, User{}, RuleMessage, false},
		{"legacy display name", text("Bobby B, are you there?"), group, User{DisplayName: "Bobby B"}, RuleContainsDisplayName, true},
		{"legacy rules off with m.mentions", map[string]any{"content": map[string]any{"body": "Bobby B and @room", "m.mentions": map[string]any{}}},
			group, User{DisplayName: "Bobby B"}, RuleMessage, false},
		{"legacy user name", text("ask bob"), group, User{}, RuleContainsUserName, true},
		{"legacy @room", text("@room meeting now"), group, User{}, RuleRoomNotif, true},
		{"invite for me", map[string]any{"type": "m.room.member", "state_key": bob, "content": map[string]any{"membership": "invite"}}, group, User{}, RuleInviteForMe, false},
		{"other member event", map[string]any{"type": "m.room.member", "state_key": "@c:d", "content": map[string]any{"membership": "join"}}, group, User{}, RuleMemberEvent, false},
		{"reaction", map[string]any{"type": "m.reaction", "content": map[string]any{}}, group, User{}, RuleReaction, false},
		{"edit", map[string]any{"content": map[string]any{"body": "* bob", "m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": "$x"}}}, group, User{}, RuleSuppressEdits, false},
		{"tombstone", map[string]any{"type": "m.room.tombstone", "state_key": "", "content": map[string]any{}}, group, User{}, RuleTombstone, true},
		{"call", map[string]any{"type": "m.call.invite", "content": map[string]any{}}, group, User{}, RuleCall, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := rules.Evaluate(ev(t, c.ev), c.room, c.user)
			if res.RuleID != c.rule || res.Highlight != c.highlight {
				t.Fatalf("got %s highlight=%v, want %s highlight=%v", res.RuleID, res.Highlight, c.rule, c.highlight)
			}
			wantNotify := c.rule != RuleSuppressNotices && c.rule != RuleMemberEvent && c.rule != RuleReaction && c.rule != RuleSuppressEdits
			if res.Notify != wantNotify {
				t.Fatalf("notify = %v, want %v", res.Notify, wantNotify)
			}
		})
	}

	// Priority: a user's override beats the defaults, a room rule beats
	// underride, master silences everything, disabled rules are skipped.
	var ur UserRules
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ur.Put(bob, KindRoom, "!r:example.org", []byte(`{"actions":[]}`), "", ""))
	res := Compile(Effective(bob, ur)).Evaluate(ev(t, text("hello")), group, User{})
	if res.RuleID != "!r:example.org" || res.Notify {
		t.Fatalf("room rule: %+v", res)
	}
	// The mention (override) still wins over the muted room rule.
	res = Compile(Effective(bob, ur)).Evaluate(ev(t, map[string]any{"content": map[string]any{"body": "x", "m.mentions": map[string]any{"user_ids": []string{bob}}}}), group, User{})
	if res.RuleID != RuleIsUserMention {
		t.Fatalf("override vs room: %+v", res)
	}
	must(ur.Put(bob, KindOverride, "mine", []byte(`{"actions":["notify",{"set_tweak":"sound","value":"bell"}],"conditions":[{"kind":"event_match","key":"content.body","pattern":"exam"}]}`), "", ""))
	res = Compile(Effective(bob, ur)).Evaluate(ev(t, map[string]any{"content": map[string]any{"body": "exam today", "m.mentions": map[string]any{"user_ids": []string{bob}}}}), group, User{})
	if res.RuleID != "mine" || string(res.Tweaks["sound"]) != `"bell"` || res.Highlight {
		t.Fatalf("user override first: %+v", res)
	}
	must(ur.SetEnabled(bob, KindOverride, "mine", false))
	if res := Compile(Effective(bob, ur)).Evaluate(ev(t, text("exam")), group, User{}); res.RuleID == "mine" {
		t.Fatal("disabled rule matched")
	}
	must(ur.SetEnabled(bob, KindOverride, RuleMaster, true))
	if res := Compile(Effective(bob, ur)).Evaluate(ev(t, text("hello bob")), group, User{}); res.RuleID != RuleMaster || res.Notify {
		t.Fatalf("master: %+v", res)
	}
}
