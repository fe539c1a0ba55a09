package push

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// batchUser is a recipient in the grouped-evaluation tests.
type batchUser struct {
	id    string
	name  string
	rules *Compiled
}

// batchUsers builds a mix of users: defaults only (with assorted display
// names), custom content, override, underride, room and sender rules,
// disabled default rules, master on, and rules naming the user themselves.
func batchUsers(t testing.TB) []batchUser {
	t.Helper()
	type custom struct {
		kind, id, body string
		enabled        *bool // nil: leave as is
	}
	off := false
	on := true
	specs := []struct {
		id, name string
		rules    []custom
	}{
		{"@bob:example.org", "Bob", nil},
		{"@bobby:example.org", "Bobby B", nil},
		{"@carol:example.org", "", nil},
		{"@dave:example.org", "Ålice Smith", nil},
		{"@erin:example.org", "a.b*c (x)", nil},
		{"@Frank:example.org", "FRANK", nil},
		{"@gina:example.org", "gina", nil},
		{"@student1:uni.example", "Student 1", nil},
		{"@student2:uni.example", "Student 2", nil},
		{"@hank:example.org", "Hank", []custom{{kind: KindContent, id: "exam", body: `{"pattern":"exam","actions":["notify",{"set_tweak":"highlight"}]}`}}},
		{"@ivy:example.org", "Ivy", []custom{{kind: KindContent, id: "globby", body: `{"pattern":"lec*re","actions":["notify",{"set_tweak":"sound","value":"x"}]}`}}},
		{"@jack:example.org", "Jack", []custom{{kind: KindContent, id: "self", body: `{"pattern":"jack","actions":["notify"]}`}}},
		{"@kate:example.org", "Kate", []custom{{kind: KindOverride, id: "from-prof", body: `{"conditions":[{"kind":"event_match","key":"sender","pattern":"@prof:*"}],"actions":["notify",{"set_tweak":"highlight","value":true}]}`}}},
		{"@liam:example.org", "Liam", []custom{{kind: KindOverride, id: "targeted", body: `{"conditions":[{"kind":"event_property_is","key":"content.target","value":"@liam:example.org"}],"actions":["notify",{"set_tweak":"highlight"}]}`}}},
		{"@mia:example.org", "Mia", []custom{{kind: KindOverride, id: "targeted", body: `{"conditions":[{"kind":"event_property_is","key":"content.target","value":"@mia:example.org"}],"actions":["notify",{"set_tweak":"highlight"}]}`}}},
		{"@noah:example.org", "Noah", []custom{{kind: KindOverride, id: "tagged", body: `{"conditions":[{"kind":"event_property_contains","key":"content.tags","value":"noah"},{"kind":"room_member_count","is":">2"}],"actions":["notify"]}`}}},
		{"@olga:example.org", "Olga", []custom{{kind: KindOverride, id: RuleContainsDisplayName, enabled: &off}, {kind: KindOverride, id: RuleIsUserMention, enabled: &off}}},
		{"@pete:example.org", "Pete", []custom{{kind: KindContent, id: RuleContainsUserName, enabled: &off}}},
		{"@quin:example.org", "Quin", []custom{{kind: KindOverride, id: RuleMaster, enabled: &on}}},
		{"@rita:example.org", "Rita", []custom{{kind: KindRoom, id: "!r:example.org", body: `{"actions":[]}`}}},
		{"@sam:example.org", "Sam", []custom{{kind: KindSender, id: "@prof:uni.example", body: `{"actions":["notify",{"set_tweak":"sound","value":"prof"}]}`}}},
		{"@tina:example.org", "Tina", []custom{{kind: KindUnderride, id: "all", body: `{"conditions":[],"actions":["notify"]}`}}},
		{"@uma:example.org", "Uma", []custom{{kind: KindOverride, id: "dm-me", body: `{"conditions":[{"kind":"event_match","key":"state_key","pattern":"@uma:example.org"},{"kind":"contains_display_name"}],"actions":["notify"]}`}}},
		{"@vic:example.org", "Vic", []custom{{kind: KindOverride, id: "perm", body: `{"conditions":[{"kind":"sender_notification_permission","key":"room"},{"kind":"event_match","key":"content.body","pattern":"vic"}],"actions":["notify",{"set_tweak":"highlight"}]}`}}},
		{"@wes:example.org", "Wes", []custom{{kind: KindOverride, id: "unknown", body: `{"conditions":[{"kind":"org.example.future"}],"actions":["notify"]}`}}},
	}
	var users []batchUser
	for _, s := range specs {
		var ur UserRules
		for _, c := range s.rules {
			var err error
			if c.enabled != nil {
				err = ur.SetEnabled(s.id, c.kind, c.id, *c.enabled)
			} else {
				err = ur.Put(s.id, c.kind, c.id, []byte(c.body), "", "")
			}
			if err != nil {
				t.Fatalf("%s %s/%s: %v", s.id, c.kind, c.id, err)
			}
		}
		users = append(users, batchUser{id: s.id, name: s.name, rules: CompileFor(s.id, Effective(s.id, ur))})
	}
	// Rules compiled without knowing their owner still work in a batch.
	users = append(users, batchUser{id: "@anon:example.org", name: "Anon", rules: Compile(Effective("@anon:example.org", UserRules{}))})
	return users
}

// batchEvents is a set of events covering every default rule and the
// custom ones of batchUsers.
func batchEvents(t testing.TB) []*Event {
	t.Helper()
	msg := func(content map[string]any) map[string]any {
		return map[string]any{"content": content}
	}
	many := []string{"@bob:example.org"}
	for i := range 40 {
		many = append(many, fmt.Sprintf("@x%d:example.org", i))
	}
	many = append(many, "@olga:example.org", "@Frank:example.org")
	var evs []*Event
	for _, v := range []map[string]any{
		text("hello everyone"),
		text("The exam starts at nine in the lecture hall"),
		text("Bob, Bobby B and bobby: are you there? ask gina"),
		text("ålice smith and FRANK and a.b*c (x) please"),
		text("student 1 vs Student 2 vs student10"),
		text("@room meeting now"),
		text("jack hank ivy kate liam mia noah olga pete quin rita sam tina uma vic wes"),
		text("write to @bob:example.org or @Frank:example.org"),
		msg(map[string]any{"msgtype": "m.text", "body": "hi Bob", "m.mentions": map[string]any{}}),
		msg(map[string]any{"msgtype": "m.text", "body": "hi", "m.mentions": map[string]any{"user_ids": []string{"@bob:example.org", "@olga:example.org", "@Frank:example.org"}}}),
		msg(map[string]any{"msgtype": "m.text", "body": "hi all", "m.mentions": map[string]any{"room": true}}),
		msg(map[string]any{"msgtype": "m.text", "body": "crowd", "m.mentions": map[string]any{"user_ids": many}}),
		msg(map[string]any{"msgtype": "m.text", "body": "odd", "m.mentions": map[string]any{"user_ids": []any{1, true, nil, "@bob:example.org"}}}),
		msg(map[string]any{"msgtype": "m.notice", "body": "Bob notice"}),
		msg(map[string]any{"msgtype": "m.text", "body": "for you", "target": "@liam:example.org", "tags": []string{"noah", "x"}}),
		msg(map[string]any{"msgtype": "m.text", "body": "for mia", "target": "@mia:example.org"}),
		msg(map[string]any{"msgtype": "m.text", "body": "* Bob", "m.relates_to": map[string]any{"rel_type": "m.replace", "event_id": "$x"}}),
		msg(map[string]any{"msgtype": "m.text", "body": "in thread, Bob", "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": "$root"}}),
		{"type": "m.room.encrypted", "content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "xyz"}},
		{"type": "m.room.member", "state_key": "@bob:example.org", "content": map[string]any{"membership": "invite", "displayname": "Bob"}},
		{"type": "m.room.member", "state_key": "@uma:example.org", "content": map[string]any{"membership": "invite", "body": "Uma"}},
		{"type": "m.room.member", "state_key": "@zed:example.org", "content": map[string]any{"membership": "join"}},
		{"type": "m.reaction", "content": map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "key": "👍"}}},
		{"type": "m.room.tombstone", "state_key": "", "content": map[string]any{"body": "moved"}},
		{"type": "m.room.server_acl", "state_key": "", "content": map[string]any{}},
		{"type": "m.call.invite", "content": map[string]any{}},
		{"type": "m.room.message", "sender": "@prof:uni.example", "content": map[string]any{"msgtype": "m.text", "body": "vic, exam moved"}},
		{"type": "org.example.custom", "content": map[string]any{"body": "Bob"}},
	} {
		evs = append(evs, ev(t, v))
	}
	evs = append(evs, PrepareEvent([]byte("not json")))
	return evs
}

// TestBatchMatchesPerUser proves grouped evaluation gives exactly the
// answers of evaluating each user's rules on their own.
func TestBatchMatchesPerUser(t *testing.T) {
	users := batchUsers(t)
	rooms := map[string]*Room{
		"group":         {MemberCount: 30, SenderLevel: 100, NotificationLevels: map[string]int64{"room": 50}},
		"group no perm": {MemberCount: 30, SenderLevel: 0},
		"dm":            {MemberCount: 2},
		"nil":           nil,
	}
	b := NewBatch()
	rng := rand.New(rand.NewPCG(1, 2))
	checked, notified := 0, 0
	for ri, e := range batchEvents(t) {
		for name, room := range rooms {
			b.Reset(e, room)
			// Twice, in different orders, so cached template states are
			// reused across users and events.
			for round := range 2 {
				order := rng.Perm(len(users))
				for _, i := range order {
					u := users[i]
					want := u.rules.Evaluate(e, room, User{DisplayName: u.name})
					got := b.Evaluate(u.rules, User{DisplayName: u.name})
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("event %d, room %s, round %d, %s: batch %s (notify %v, highlight %v), per user %s (notify %v, highlight %v)",
							ri, name, round, u.id, got.RuleID, got.Notify, got.Highlight, want.RuleID, want.Notify, want.Highlight)
					}
					checked++
					if got.Notify {
						notified++
					}
				}
			}
		}
	}
	if notified == 0 || notified == checked {
		t.Fatalf("%d of %d notified: the events do not exercise the rules", notified, checked)
	}
}

// TestBatchRandomRules compares grouped and per-user evaluation for many
// users with rules drawn at random from a pool, over the event set.
func TestBatchRandomRules(t *testing.T) {
	pool := []struct{ kind, id, body string }{
		{KindContent, "exam", `{"pattern":"exam","actions":["notify"]}`},
		{KindContent, "bob", `{"pattern":"bob","actions":["notify",{"set_tweak":"highlight"}]}`},
		{KindOverride, "prof", `{"conditions":[{"kind":"event_match","key":"sender","pattern":"@prof:uni.example"}],"actions":["notify"]}`},
		{KindOverride, "mentioned-bob", `{"conditions":[{"kind":"event_property_contains","key":"content.m\\.mentions.user_ids","value":"@bob:example.org"}],"actions":[]}`},
		{KindOverride, "name", `{"conditions":[{"kind":"contains_display_name"},{"kind":"room_member_count","is":"<10"}],"actions":["notify"]}`},
		{KindRoom, "!r:example.org", `{"actions":[]}`},
		{KindUnderride, "rest", `{"conditions":[{"kind":"event_match","key":"type","pattern":"org.*"}],"actions":["notify"]}`},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var users []batchUser
	for i := range 300 {
		id := fmt.Sprintf("@u%d:example.org", i%40)
		if i%7 == 0 {
			id = "@bob:example.org"
		}
		var ur UserRules
		for _, p := range pool {
			if rng.IntN(4) == 0 {
				if err := ur.Put(id, p.kind, p.id, []byte(p.body), "", ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, d := range []string{RuleContainsDisplayName, RuleIsUserMention, RuleRoomNotif} {
			if rng.IntN(8) == 0 {
				if err := ur.SetEnabled(id, KindOverride, d, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		names := []string{"", "Bob", "u1", "Student 1", "Ålice"}
		users = append(users, batchUser{id: id, name: names[rng.IntN(len(names))], rules: CompileFor(id, Effective(id, ur))})
	}
	b := NewBatch()
	room := &Room{MemberCount: 5, SenderLevel: 50, NotificationLevels: map[string]int64{"room": 50}}
	for ri, e := range batchEvents(t) {
		b.Reset(e, room)
		for _, u := range users {
			want := u.rules.Evaluate(e, room, User{DisplayName: u.name})
			if got := b.Evaluate(u.rules, User{DisplayName: u.name}); !reflect.DeepEqual(got, want) {
				t.Fatalf("event %d, %s: batch %s, per user %s", ri, u.id, got.RuleID, want.RuleID)
			}
		}
	}
}

// TestTemplatesShared checks that users with the same rules share one
// template, which is what makes grouped evaluation cheap, and that rules
// which differ do not.
func TestTemplatesShared(t *testing.T) {
	a := CompileFor("@a:example.org", Effective("@a:example.org", UserRules{}))
	b := CompileFor("@b:example.org", Effective("@b:example.org", UserRules{}))
	if a.tmpl != b.tmpl {
		t.Fatal("two users with the default rules have different templates")
	}
	var ur UserRules
	if err := ur.Put("@c:example.org", KindContent, "exam", []byte(`{"pattern":"exam","actions":["notify"]}`), "", ""); err != nil {
		t.Fatal(err)
	}
	c := CompileFor("@c:example.org", Effective("@c:example.org", ur))
	if c.tmpl == a.tmpl {
		t.Fatal("a user with a content rule shares the default template")
	}
	var ur2 UserRules
	if err := ur2.Put("@d:example.org", KindContent, "exam", []byte(`{"pattern":"exam","actions":["notify"]}`), "", ""); err != nil {
		t.Fatal(err)
	}
	if d := CompileFor("@d:example.org", Effective("@d:example.org", ur2)); d.tmpl != c.tmpl {
		t.Fatal("two users with the same content rule have different templates")
	}
	// The templates that differ share the rules they have in common.
	distinct := map[*tmplRule]bool{}
	for _, r := range append(append([]*tmplRule{}, a.tmpl.rules...), c.tmpl.rules...) {
		distinct[r] = true
	}
	if len(distinct) != len(a.tmpl.rules)+1 {
		t.Fatalf("%d distinct rules in a template of %d and one with a rule more", len(distinct), len(a.tmpl.rules))
	}
}

// TestTemplatesCollected checks that interned templates and rules nobody
// uses any more are forgotten, so changing rules does not leak memory.
func TestTemplatesCollected(t *testing.T) {
	live := func() (live, entries int) {
		runtime.GC()
		return templateInterner.live() + ruleInterner.live(), templateInterner.size() + ruleInterner.size()
	}
	before, _ := live()
	var keep []*Compiled
	for i := range 50 {
		var ur UserRules
		u := fmt.Sprintf("@gc%d:example.org", i)
		if err := ur.Put(u, KindContent, "x", []byte(fmt.Sprintf(`{"pattern":"word%d","actions":["notify"]}`, i)), "", ""); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, CompileFor(u, Effective(u, ur)))
	}
	if n, _ := live(); n < before+50 {
		t.Fatalf("%d live entries with 50 new templates, %d before", n, before)
	}
	runtime.KeepAlive(keep)
	keep = nil
	for range 200 {
		n, entries := live()
		if n <= before && entries == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	n, entries := live()
	t.Fatalf("%d live entries (%d before), %d entries in all", n, before, entries)
}

func TestContainsNameWord(t *testing.T) {
	for _, c := range []struct {
		text, name string
	}{
		{"hi bob builder, ok?", "Bob Builder"}, {"bobby", "Bob"}, {"x bob", "BOB"}, {"bob_", "bob"},
		{"ålice smith", "Ålice Smith"}, {"a.b*c (x) yes", "a.b*c (x)"}, {"", "x"}, {"xx", "x"}, {"x", "xx"},
		{"nob bob", "bob"}, {"bo", "bob"}, {"éBob", "bob"},
	} {
		want := containsWord(c.text, toLowerForTest(c.name))
		if got := containsNameWord(c.text, c.name); got != want {
			t.Errorf("containsNameWord(%q, %q) = %v, want %v", c.text, c.name, got, want)
		}
	}
}

func toLowerForTest(s string) string {
	var out []rune
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		} else if r == 'Å' {
			r = 'å'
		}
		out = append(out, r)
	}
	return string(out)
}

// cpuTime returns the CPU time the process has used so far (all threads,
// garbage collection included): on a busy shared machine it is a steadier
// measure than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// room5000 returns 5,000 members with the default rules and display names.
func room5000() ([]*Compiled, []string) {
	const members = 5000
	rules := make([]*Compiled, members)
	names := make([]string, members)
	for i := range rules {
		u := fmt.Sprintf("@student%d:uni.example", i)
		rules[i] = CompileFor(u, Effective(u, UserRules{}))
		names[i] = fmt.Sprintf("Student %d", i)
	}
	return rules, names
}

// benchEvaluate runs eval once per iteration and reports CPU time and the
// per-recipient cost.
func benchEvaluate(b *testing.B, recipients int, eval func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		eval()
	}
	cpu := float64(cpuTime()-start) / float64(b.N)
	b.ReportMetric(cpu, "cpu-ns/op")
	b.ReportMetric(cpu/float64(recipients), "cpu-ns/recipient")
}

var examMessage, _ = json.Marshal(map[string]any{"type": "m.room.message", "sender": "@prof:uni.example", "room_id": "!r:uni.example",
	"content": map[string]any{"msgtype": "m.text", "body": "The exam starts at nine in lecture hall B, please be on time."}})

// BenchmarkEvaluate5000 measures evaluating one message for every member
// of a 5,000-member room, as the worker does it: rules compiled and cached,
// the event prepared once, the members evaluated in one Batch.
func BenchmarkEvaluate5000(b *testing.B) {
	rules, names := room5000()
	room := &Room{MemberCount: len(rules), SenderLevel: 100, NotificationLevels: map[string]int64{"room": 50}}
	batch := NewBatch()
	benchEvaluate(b, len(rules), func() {
		e := PrepareEvent(examMessage)
		batch.Reset(e, room)
		n := 0
		for i, c := range rules {
			if batch.Evaluate(c, User{DisplayName: names[i]}).Notify {
				n++
			}
		}
		if n != len(rules) {
			b.Fatalf("%d notified", n)
		}
	})
}

// BenchmarkEvaluate5000Mixed is BenchmarkEvaluate5000 with a tenth of the
// members having rules of their own (every one different) and a message
// that mentions three members through m.mentions.
func BenchmarkEvaluate5000Mixed(b *testing.B) {
	rules, names := room5000()
	for i := 0; i < len(rules); i += 10 {
		u := fmt.Sprintf("@student%d:uni.example", i)
		var ur UserRules
		body := fmt.Sprintf(`{"pattern":"topic%d","actions":["notify",{"set_tweak":"highlight"}]}`, i)
		if err := ur.Put(u, KindContent, "mine", []byte(body), "", ""); err != nil {
			b.Fatal(err)
		}
		rules[i] = CompileFor(u, Effective(u, ur))
	}
	raw, _ := json.Marshal(map[string]any{"type": "m.room.message", "sender": "@prof:uni.example", "room_id": "!r:uni.example",
		"content": map[string]any{"msgtype": "m.text", "body": "Student 7, Student 42 and Student 4711: see me after the exam.",
			"m.mentions": map[string]any{"user_ids": []string{"@student7:uni.example", "@student42:uni.example", "@student4711:uni.example"}}}})
	room := &Room{MemberCount: len(rules), SenderLevel: 100, NotificationLevels: map[string]int64{"room": 50}}
	batch := NewBatch()
	benchEvaluate(b, len(rules), func() {
		e := PrepareEvent(raw)
		batch.Reset(e, room)
		h := 0
		for i, c := range rules {
			if batch.Evaluate(c, User{DisplayName: names[i]}).Highlight {
				h++
			}
		}
		if h != 3 {
			b.Fatalf("%d highlighted", h)
		}
	})
}

// BenchmarkEvaluate5000PerUser is the straightforward evaluation, every
// condition for every member (Compiled.Evaluate), for comparison.
func BenchmarkEvaluate5000PerUser(b *testing.B) {
	rules, names := room5000()
	room := &Room{MemberCount: len(rules), SenderLevel: 100, NotificationLevels: map[string]int64{"room": 50}}
	benchEvaluate(b, len(rules), func() {
		e := PrepareEvent(examMessage)
		n := 0
		for i, c := range rules {
			if c.Evaluate(e, room, User{DisplayName: names[i]}).Notify {
				n++
			}
		}
		if n != len(rules) {
			b.Fatalf("%d notified", n)
		}
	})
}
