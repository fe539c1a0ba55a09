package clientapi_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

const confPR = "/_matrix/client/v3/pushrules/"

// confRuleIDs returns the rule IDs of one kind in GET /pushrules/.
func confRuleIDs(t *testing.T, s *apitest.Server, u apitest.User, kind string) []string {
	t.Helper()
	r := s.Do("GET", confPR+"global/"+kind+"/", u.Token, nil).Expect(t, 200, "")
	var rules []struct {
		RuleID string `json:"rule_id"`
	}
	if err := json.Unmarshal(r.Body, &rules); err != nil {
		t.Fatalf("GET %s/: %v: %s", kind, err, r.Body)
	}
	ids := []string{}
	for _, x := range rules {
		ids = append(ids, x.RuleID)
	}
	return ids
}

// confRule returns one rule's JSON as found in the full GET /pushrules/.
func confRule(t *testing.T, s *apitest.Server, u apitest.User, kind, id string) []byte {
	t.Helper()
	var all struct {
		Global map[string][]json.RawMessage `json:"global"`
	}
	r := s.Do("GET", confPR, u.Token, nil).Expect(t, 200, "")
	if err := json.Unmarshal(r.Body, &all); err != nil {
		t.Fatal(err)
	}
	for _, raw := range all.Global[kind] {
		var x struct {
			RuleID string `json:"rule_id"`
		}
		_ = json.Unmarshal(raw, &x)
		if x.RuleID == id {
			return raw
		}
	}
	return nil
}

var confDefaultIDs = map[string][]string{
	"override": {
		".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
		".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention", ".m.rule.roomnotif",
		".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl", ".m.rule.suppress_edits",
	},
	"content":   {".m.rule.contains_user_name"},
	"room":      {},
	"sender":    {},
	"underride": {".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted"},
}

func TestPushRulesDefaults(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		confExpectError(t, "no token", s.Do("GET", confPR, "", nil), 401, "M_MISSING_TOKEN")
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")

		r := s.Do("GET", confPR, alice.Token, nil).Expect(t, 200, "")
		if len(r.JSON) != 1 || r.JSON["global"] == nil {
			t.Fatalf("GET /pushrules/ must hold exactly the global ruleset: %s", r.Body)
		}
		global := r.JSON["global"].(map[string]any)
		if len(global) != 5 {
			t.Errorf("global has %d keys, want the 5 kinds: %v", len(global), global)
		}
		for kind, want := range confDefaultIDs {
			list, ok := global[kind].([]any)
			if !ok {
				t.Errorf("global.%s is not an array: %v", kind, global[kind])
				continue
			}
			var got []string
			for _, x := range list {
				rule := x.(map[string]any)
				got = append(got, rule["rule_id"].(string))
				if rule["default"] != true {
					t.Errorf("%s: default = %v", rule["rule_id"], rule["default"])
				}
				if _, ok := rule["enabled"].(bool); !ok {
					t.Errorf("%s: enabled = %v", rule["rule_id"], rule["enabled"])
				}
				if _, ok := rule["actions"].([]any); !ok {
					t.Errorf("%s: actions = %v", rule["rule_id"], rule["actions"])
				}
				_, hasConds := rule["conditions"].([]any)
				_, hasPattern := rule["pattern"].(string)
				if hasConds != (kind == "override" || kind == "underride") || hasPattern != (kind == "content") {
					t.Errorf("%s: conditions/pattern do not fit kind %s: %v", rule["rule_id"], kind, rule)
				}
			}
			if len(want) == 0 && len(list) != 0 || len(want) > 0 && !reflect.DeepEqual(got, want) {
				t.Errorf("%s rules %q, want %q", kind, got, want)
			}
		}

		// Full JSON of rules, with the user's IDs filled in.
		want := map[string]string{
			".m.rule.master": `{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}`,
			".m.rule.invite_for_me": `{"rule_id":".m.rule.invite_for_me","default":true,"enabled":true,
				"conditions":[{"key":"type","kind":"event_match","pattern":"m.room.member"},
					{"key":"content.membership","kind":"event_match","pattern":"invite"},
					{"key":"state_key","kind":"event_match","pattern":"@alice:aula.test"}],
				"actions":["notify",{"set_tweak":"sound","value":"default"}]}`,
			".m.rule.is_user_mention": `{"rule_id":".m.rule.is_user_mention","default":true,"enabled":true,
				"conditions":[{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@alice:aula.test"}],
				"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`,
			".m.rule.contains_display_name": `{"rule_id":".m.rule.contains_display_name","default":true,"enabled":true,
				"conditions":[{"kind":"contains_display_name"}],
				"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`,
			".m.rule.is_room_mention": `{"rule_id":".m.rule.is_room_mention","default":true,"enabled":true,
				"conditions":[{"kind":"event_property_is","key":"content.m\\.mentions.room","value":true},
					{"kind":"sender_notification_permission","key":"room"}],
				"actions":["notify",{"set_tweak":"highlight"}]}`,
			".m.rule.tombstone": `{"rule_id":".m.rule.tombstone","default":true,"enabled":true,
				"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.tombstone"},{"kind":"event_match","key":"state_key","pattern":""}],
				"actions":["notify",{"set_tweak":"highlight"}]}`,
			".m.rule.suppress_edits": `{"rule_id":".m.rule.suppress_edits","default":true,"enabled":true,
				"conditions":[{"kind":"event_property_is","key":"content.m\\.relates_to.rel_type","value":"m.replace"}],"actions":[]}`,
			".m.rule.contains_user_name": `{"rule_id":".m.rule.contains_user_name","default":true,"enabled":true,"pattern":"alice",
				"actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`,
			".m.rule.call": `{"rule_id":".m.rule.call","default":true,"enabled":true,
				"conditions":[{"key":"type","kind":"event_match","pattern":"m.call.invite"}],
				"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`,
			".m.rule.encrypted_room_one_to_one": `{"rule_id":".m.rule.encrypted_room_one_to_one","default":true,"enabled":true,
				"conditions":[{"kind":"room_member_count","is":"2"},{"kind":"event_match","key":"type","pattern":"m.room.encrypted"}],
				"actions":["notify",{"set_tweak":"sound","value":"default"}]}`,
			".m.rule.message": `{"rule_id":".m.rule.message","default":true,"enabled":true,
				"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":["notify"]}`,
		}
		kindOf := func(id string) string {
			for kind, ids := range confDefaultIDs {
				for _, x := range ids {
					if x == id {
						return kind
					}
				}
			}
			return ""
		}
		for id, w := range want {
			kind := kindOf(id)
			confJSONEq(t, confRule(t, s, alice, kind, id), w)
			// The single-rule endpoint agrees with the full list.
			confJSONEq(t, s.Do("GET", confPR+"global/"+kind+"/"+id, alice.Token, nil).Expect(t, 200, "").Body, w)
		}

		// Bob's rules name Bob.
		confJSONEq(t, confRule(t, s, bob, "content", ".m.rule.contains_user_name"), strings.ReplaceAll(want[".m.rule.contains_user_name"], `"alice"`, `"bob"`))
		confJSONEq(t, confRule(t, s, bob, "override", ".m.rule.invite_for_me"), strings.ReplaceAll(want[".m.rule.invite_for_me"], "@alice:", "@bob:"))

		// /pushrules/global/ is the same ruleset; the r0 path too.
		full := s.Do("GET", confPR, alice.Token, nil).Expect(t, 200, "")
		globalRaw := confMarshal(t, full.JSON["global"])
		confJSONEq(t, s.Do("GET", confPR+"global/", alice.Token, nil).Expect(t, 200, "").Body, string(globalRaw))
		confJSONEq(t, s.Do("GET", "/_matrix/client/r0/pushrules/", alice.Token, nil).Expect(t, 200, "").Body, string(full.Body))
		// Per kind.
		for kind := range confDefaultIDs {
			confJSONEq(t, s.Do("GET", confPR+"global/"+kind+"/", alice.Token, nil).Expect(t, 200, "").Body,
				string(confMarshal(t, full.JSON["global"].(map[string]any)[kind])))
		}
		// enabled and actions.
		confJSONEq(t, s.Do("GET", confPR+"global/override/.m.rule.master/enabled", alice.Token, nil).Expect(t, 200, "").Body, `{"enabled":false}`)
		confJSONEq(t, s.Do("GET", confPR+"global/override/.m.rule.master/actions", alice.Token, nil).Expect(t, 200, "").Body, `{"actions":[]}`)
		confJSONEq(t, s.Do("GET", confPR+"global/underride/.m.rule.call/enabled", alice.Token, nil).Expect(t, 200, "").Body, `{"enabled":true}`)
		confJSONEq(t, s.Do("GET", confPR+"global/underride/.m.rule.call/actions", alice.Token, nil).Expect(t, 200, "").Body,
			`{"actions":["notify",{"set_tweak":"sound","value":"ring"}]}`)
	})
}

func TestPushRulesChanges(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		bob := s.Register("bob", "correct horse battery")
		put := func(path string, body any) *apitest.Response {
			return s.Do("PUT", confPR+"global/"+path, alice.Token, body)
		}
		rule := func(id string) map[string]any {
			return map[string]any{"actions": []any{"notify"}, "conditions": []any{map[string]string{"kind": "event_match", "key": "content.body", "pattern": id}}}
		}
		userOverrides := func() []string {
			var out []string
			for _, id := range confRuleIDs(t, s, alice, "override") {
				if !strings.HasPrefix(id, ".") {
					out = append(out, id)
				}
			}
			return out
		}
		wantOrder := func(what string, want ...string) {
			t.Helper()
			if got := userOverrides(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: user override rules %q, want %q", what, got, want)
			}
		}

		// A new rule is the most important user rule, right after
		// .m.rule.master and before the other server-default rules; it is
		// enabled and not default.
		confJSONEq(t, put("override/a", rule("a")).Expect(t, 200, "").Body, `{}`)
		ids := confRuleIDs(t, s, alice, "override")
		if len(ids) < 3 || ids[0] != ".m.rule.master" || ids[1] != "a" || ids[2] != ".m.rule.suppress_notices" {
			t.Errorf("override order %q", ids)
		}
		confJSONEq(t, confRule(t, s, alice, "override", "a"),
			`{"rule_id":"a","default":false,"enabled":true,"actions":["notify"],"conditions":[{"kind":"event_match","key":"content.body","pattern":"a"}]}`)
		confJSONEq(t, s.Do("GET", confPR+"global/override/a", alice.Token, nil).Expect(t, 200, "").Body, string(confRule(t, s, alice, "override", "a")))

		put("override/b", rule("b")).Expect(t, 200, "")
		wantOrder("new rule on top", "b", "a")
		put("override/c?after=b", rule("c")).Expect(t, 200, "")
		wantOrder("after", "b", "c", "a")
		put("override/d?before=a", rule("d")).Expect(t, 200, "")
		wantOrder("before", "b", "c", "d", "a")
		put("override/e?before=b&after=a", rule("e")).Expect(t, 200, "")
		wantOrder("before wins over after", "e", "b", "c", "d", "a")
		put("override/f?after=a", rule("f")).Expect(t, 200, "")
		wantOrder("after the last", "e", "b", "c", "d", "a", "f")

		// Replacing keeps the position unless one is given, and keeps the
		// enabled flag.
		put("override/c/enabled", map[string]bool{"enabled": false}).Expect(t, 200, "")
		put("override/c", map[string]any{"actions": []any{}, "conditions": []any{}}).Expect(t, 200, "")
		wantOrder("replace in place", "e", "b", "c", "d", "a", "f")
		confJSONEq(t, confRule(t, s, alice, "override", "c"), `{"rule_id":"c","default":false,"enabled":false,"actions":[],"conditions":[]}`)
		put("override/c?before=e", rule("c")).Expect(t, 200, "")
		wantOrder("replace and move", "c", "e", "b", "d", "a", "f")

		// Positions relative to missing or server-default rules fail.
		confExpectError(t, "before unknown", put("override/g?before=nope", rule("g")), 400, "M_UNKNOWN")
		confExpectError(t, "after unknown", put("override/g?after=nope", rule("g")), 400, "M_UNKNOWN")
		confExpectError(t, "before default", put("override/g?before=.m.rule.master", rule("g")), 400, "M_INVALID_PARAM")
		confExpectError(t, "after default", put("override/g?after=.m.rule.suppress_edits", rule("g")), 400, "M_INVALID_PARAM")
		wantOrder("failed puts change nothing", "c", "e", "b", "d", "a", "f")

		// Delete.
		confJSONEq(t, s.Do("DELETE", confPR+"global/override/b", alice.Token, nil).Expect(t, 200, "").Body, `{}`)
		wantOrder("deleted", "c", "e", "d", "a", "f")
		confExpectError(t, "GET deleted", s.Do("GET", confPR+"global/override/b", alice.Token, nil), 404, "M_NOT_FOUND")
		confExpectError(t, "DELETE again", s.Do("DELETE", confPR+"global/override/b", alice.Token, nil), 404, "M_NOT_FOUND")
		// Server-default rules cannot be deleted, only disabled.
		for _, d := range []string{"override/.m.rule.master", "content/.m.rule.contains_user_name", "underride/.m.rule.message"} {
			confExpectError(t, "DELETE "+d, s.Do("DELETE", confPR+"global/"+d, alice.Token, nil), 400, "M_INVALID_PARAM")
			s.Do("GET", confPR+"global/"+d, alice.Token, nil).Expect(t, 200, "")
		}

		// enabled and actions of server-default rules.
		put("override/.m.rule.master/enabled", map[string]bool{"enabled": true}).Expect(t, 200, "")
		put("underride/.m.rule.message/actions", map[string]any{"actions": []any{}}).Expect(t, 200, "")
		put("content/.m.rule.contains_user_name/enabled", map[string]bool{"enabled": false}).Expect(t, 200, "")
		put("override/.m.rule.is_user_mention/actions", map[string]any{"actions": []any{"notify", map[string]any{"set_tweak": "sound", "value": "ping"}}}).Expect(t, 200, "")
		confJSONEq(t, confRule(t, s, alice, "override", ".m.rule.master"),
			`{"rule_id":".m.rule.master","default":true,"enabled":true,"conditions":[],"actions":[]}`)
		confJSONEq(t, confRule(t, s, alice, "underride", ".m.rule.message"),
			`{"rule_id":".m.rule.message","default":true,"enabled":true,"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":[]}`)
		confJSONEq(t, s.Do("GET", confPR+"global/content/.m.rule.contains_user_name/enabled", alice.Token, nil).Expect(t, 200, "").Body, `{"enabled":false}`)
		confJSONEq(t, s.Do("GET", confPR+"global/override/.m.rule.is_user_mention/actions", alice.Token, nil).Expect(t, 200, "").Body,
			`{"actions":["notify",{"set_tweak":"sound","value":"ping"}]}`)
		// .m.rule.master stays first when enabled.
		if ids := confRuleIDs(t, s, alice, "override"); ids[0] != ".m.rule.master" {
			t.Errorf("override order %q", ids)
		}
		// enabled and actions of user rules.
		put("override/a/enabled", map[string]bool{"enabled": false}).Expect(t, 200, "")
		put("override/a/actions", map[string]any{"actions": []any{"notify", map[string]any{"set_tweak": "highlight", "value": false}}}).Expect(t, 200, "")
		confJSONEq(t, confRule(t, s, alice, "override", "a"),
			`{"rule_id":"a","default":false,"enabled":false,"actions":["notify",{"set_tweak":"highlight","value":false}],"conditions":[{"kind":"event_match","key":"content.body","pattern":"a"}]}`)

		// What Element sends: mute a room, "mentions and keywords" for a
		// room, a keyword, and a sender rule.
		room := "!muted:aula.test"
		put("override/"+confEsc(room), map[string]any{
			"conditions": []any{map[string]string{"kind": "event_match", "key": "room_id", "pattern": room}}, "actions": []any{},
		}).Expect(t, 200, "")
		put("room/"+confEsc("!quiet:aula.test"), map[string]any{"actions": []any{"dont_notify"}}).Expect(t, 200, "")
		put("content/cake", map[string]any{"pattern": "cake", "actions": []any{"notify", map[string]any{"set_tweak": "sound", "value": "default"}, map[string]any{"set_tweak": "highlight"}}}).Expect(t, 200, "")
		put("sender/"+confEsc("@spam:aula.test"), map[string]any{"actions": []any{}}).Expect(t, 200, "")
		confJSONEq(t, confRule(t, s, alice, "override", room),
			`{"rule_id":"!muted:aula.test","default":false,"enabled":true,"actions":[],"conditions":[{"kind":"event_match","key":"room_id","pattern":"!muted:aula.test"}]}`)
		confJSONEq(t, confRule(t, s, alice, "room", "!quiet:aula.test"), `{"rule_id":"!quiet:aula.test","default":false,"enabled":true,"actions":["dont_notify"]}`)
		confJSONEq(t, confRule(t, s, alice, "content", "cake"),
			`{"rule_id":"cake","default":false,"enabled":true,"pattern":"cake","actions":["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]}`)
		confJSONEq(t, confRule(t, s, alice, "sender", "@spam:aula.test"), `{"rule_id":"@spam:aula.test","default":false,"enabled":true,"actions":[]}`)
		if ids := confRuleIDs(t, s, alice, "content"); !reflect.DeepEqual(ids, []string{"cake", ".m.rule.contains_user_name"}) {
			t.Errorf("content rules %q: user rules come before the default", ids)
		}

		// Bob is not affected.
		for kind, want := range confDefaultIDs {
			if got := confRuleIDs(t, s, bob, kind); !reflect.DeepEqual(got, want) {
				t.Errorf("bob's %s rules %q, want %q", kind, got, want)
			}
		}
		confJSONEq(t, s.Do("GET", confPR+"global/override/.m.rule.master/enabled", bob.Token, nil).Expect(t, 200, "").Body, `{"enabled":false}`)

		// Changes persist: a second server on the same database sees them.
		before := s.Do("GET", confPR, alice.Token, nil).Expect(t, 200, "")
		s2 := apitest.Start(t, s.Config)
		after := s2.Do("GET", confPR, alice.Token, nil).Expect(t, 200, "")
		confJSONEq(t, after.Body, string(before.Body))
	})
}

func TestPushRulesErrors(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "correct horse battery")
		put := func(path string, body any) *apitest.Response {
			return s.Do("PUT", confPR+"global/"+path, alice.Token, body)
		}
		ok := map[string]any{"actions": []any{"notify"}, "conditions": []any{}}

		// No token.
		for _, c := range []struct{ method, path string }{
			{"GET", "global/"}, {"GET", "global/override/"}, {"GET", "global/override/.m.rule.master"},
			{"PUT", "global/override/x"}, {"DELETE", "global/override/x"}, {"PUT", "global/override/.m.rule.master/enabled"},
		} {
			confExpectError(t, c.method+" "+c.path, s.Do(c.method, confPR+c.path, "", ok), 401, "M_MISSING_TOKEN")
		}

		// Unknown kind.
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "global/overide/", nil},
			{"GET", "global/overide/.m.rule.master", nil},
			{"GET", "global/overide/.m.rule.master/enabled", nil},
			{"GET", "global/overide/.m.rule.master/actions", nil},
			{"PUT", "global/overide/x", ok},
			{"DELETE", "global/overide/x", nil},
			{"PUT", "global/overide/x/enabled", map[string]bool{"enabled": true}},
			{"PUT", "global/overide/x/actions", map[string]any{"actions": []any{}}},
		} {
			confExpectError(t, c.method+" "+c.path, s.Do(c.method, confPR+c.path, alice.Token, c.body), 400, "M_INVALID_PARAM")
		}
		// Unknown scope: there is only "global".
		confExpectError(t, "device scope", s.Do("GET", confPR+"device/", alice.Token, nil), 404, "M_UNRECOGNIZED")

		// Unknown rule.
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "global/override/nope", nil},
			{"GET", "global/override/nope/enabled", nil},
			{"GET", "global/override/nope/actions", nil},
			{"PUT", "global/override/nope/enabled", map[string]bool{"enabled": true}},
			{"PUT", "global/override/nope/actions", map[string]any{"actions": []any{}}},
			{"DELETE", "global/override/nope", nil},
			// A default rule's ID under another kind.
			{"GET", "global/underride/.m.rule.master", nil},
			{"PUT", "global/underride/.m.rule.master/enabled", map[string]bool{"enabled": true}},
		} {
			confExpectError(t, c.method+" "+c.path, s.Do(c.method, confPR+c.path, alice.Token, c.body), 404, "M_NOT_FOUND")
		}

		// Bad rule bodies and IDs.
		for _, c := range []struct {
			path    string
			body    any
			errcode string
		}{
			{"override/x", map[string]any{"conditions": []any{}}, "M_MISSING_PARAM"},
			{"override/x", map[string]any{"actions": []any{"notify"}}, "M_MISSING_PARAM"},
			{"underride/x", map[string]any{"actions": []any{"notify"}}, "M_MISSING_PARAM"},
			{"content/x", map[string]any{"actions": []any{"notify"}}, "M_MISSING_PARAM"},
			{"content/x", map[string]any{"actions": []any{"notify"}, "pattern": 5}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": "notify", "conditions": []any{}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{"beep"}, "conditions": []any{}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{42}, "conditions": []any{}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{map[string]any{"value": 1}}, "conditions": []any{}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{}, "conditions": map[string]any{}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{}, "conditions": []any{map[string]any{"key": "type"}}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{}, "conditions": []any{map[string]any{"kind": "event_match", "key": "type"}}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{}, "conditions": []any{"event_match"}}, "M_INVALID_PARAM"},
			{"override/x", map[string]any{"actions": []any{}, "conditions": []any{map[string]any{"kind": "room_member_count", "is": "two"}}}, "M_INVALID_PARAM"},
			{"override/.m.rule.master", ok, "M_INVALID_PARAM"},
			{"override/.mine", ok, "M_INVALID_PARAM"},
			{"override/a%5Cb", ok, "M_INVALID_PARAM"},
			{"sender/not-a-user", map[string]any{"actions": []any{}}, "M_INVALID_PARAM"},
			{"override/x/enabled", map[string]any{}, "M_MISSING_PARAM"},
			{"override/.m.rule.master/enabled", map[string]any{}, "M_MISSING_PARAM"},
			{"override/.m.rule.master/enabled", map[string]any{"enabled": "true"}, "M_INVALID_PARAM"},
			{"override/.m.rule.master/enabled", map[string]any{"enabled": 1}, "M_INVALID_PARAM"},
			{"override/.m.rule.master/actions", map[string]any{}, "M_MISSING_PARAM"},
			{"override/.m.rule.master/actions", map[string]any{"actions": "notify"}, "M_INVALID_PARAM"},
			{"override/.m.rule.master/actions", map[string]any{"actions": []any{"beep"}}, "M_INVALID_PARAM"},
		} {
			confExpectError(t, "PUT "+c.path+" "+string(confMarshal(t, c.body)), put(c.path, c.body), 400, c.errcode)
		}

		// None of it changed anything.
		r := s.Do("GET", confPR, alice.Token, nil).Expect(t, 200, "")
		for kind, want := range confDefaultIDs {
			if got := confRuleIDs(t, s, alice, kind); !reflect.DeepEqual(got, want) {
				t.Errorf("%s rules %q after failed requests, want %q", kind, got, want)
			}
		}
		confJSONEq(t, confRule(t, s, alice, "override", ".m.rule.master"),
			`{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]}`)
		_ = r
	})
}
