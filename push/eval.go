package push

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Room is what evaluation needs to know about the room an event is in.
type Room struct {
	// MemberCount is the number of joined members.
	MemberCount int
	// SenderLevel is the sender's power level.
	SenderLevel int64
	// NotificationLevels are the power levels' "notifications" levels
	// (the spec's default is {"room": 50}).
	NotificationLevels map[string]int64
}

// User is what evaluation needs to know about the recipient.
type User struct {
	// DisplayName is the recipient's display name in the room.
	DisplayName string
}

// Result is the outcome of evaluating an event for one user.
type Result struct {
	// RuleID is the rule that matched ("" when none did).
	RuleID string
	// Notify is true when the actions include "notify".
	Notify bool
	// Highlight is true when the actions set the highlight tweak.
	Highlight bool
	// Actions are the matched rule's actions as stored.
	Actions []json.RawMessage
	// Tweaks are the set_tweak actions, tweak name → value.
	Tweaks map[string]json.RawMessage

	actionsJSON []byte // Actions as a JSON array, encoded once
}

// Compiled is a user's ruleset prepared for evaluation: patterns turned
// into matchers, disabled rules left out, actions decoded once. It is
// immutable and safe for concurrent use.
type Compiled struct {
	rules []compiledRule

	// For grouped evaluation (Batch): the ruleset with the recipient's
	// own values taken out, shared by every user whose rules differ only
	// in those values, and the values themselves.
	tmpl       *template
	lowerUser  string // the user ID, lower-cased ("" when not known)
	lowerLocal string // its localpart, lower-cased
	userID     string
	localpart  string
}

type condKind uint8

const (
	condNever condKind = iota
	condEventMatch
	condPropertyIs
	condPropertyContains
	condDisplayName
	condMemberCount
	condSenderPermission
)

type compiledCond struct {
	kind  condKind
	key   string
	glob  *glob
	value any // decoded scalar for event_property_*
	op    string
	n     int
}

type compiledRule struct {
	id     string
	legacy bool // a legacy body rule, off for events with m.mentions
	conds  []compiledCond
	result Result
}

// legacyRules are the body-matching mention rules that MSC3952 (spec v1.7)
// turns off for events carrying m.mentions.
var legacyRules = map[string]bool{RuleContainsDisplayName: true, RuleContainsUserName: true, RuleRoomNotif: true}

// Compile prepares a ruleset for evaluation, in the spec's priority order:
// override, content, room, sender, underride, each in list order. Rules
// compiled this way do not know their owner; prefer CompileFor, whose
// result Batch evaluates together with other users' rules.
func Compile(rs Ruleset) *Compiled { return CompileFor("", rs) }

// CompileFor prepares userID's ruleset (as returned by Effective) for
// evaluation. Besides the rules themselves it finds the conditions that
// name the user (their ID or localpart, like the default mention rules)
// or depend on them (contains_display_name), so that Batch can evaluate
// everything else once per event for all users with the same rules.
func CompileFor(userID string, rs Ruleset) *Compiled {
	c := &Compiled{userID: userID}
	if userID != "" {
		c.localpart = localpart(userID)
		c.lowerUser, c.lowerLocal = strings.ToLower(userID), strings.ToLower(c.localpart)
	}
	tb := newTemplateBuilder()
	add := func(r Rule, src []Condition) {
		if !r.Enabled {
			return
		}
		cr := compiledRule{
			id: r.RuleID, legacy: r.Default && legacyRules[r.RuleID],
			conds: compileConds(src), result: decodeActions(r.RuleID, r.Actions),
		}
		c.rules = append(c.rules, cr)
		tb.add(c, cr, src, r.Actions)
	}
	for _, r := range rs.Override {
		add(r, r.Conditions)
	}
	for _, r := range rs.Content {
		if r.Pattern == nil {
			continue
		}
		add(r, []Condition{eventMatch("content.body", *r.Pattern)})
	}
	for _, r := range rs.Room {
		add(r, []Condition{eventMatch("room_id", r.RuleID)})
	}
	for _, r := range rs.Sender {
		add(r, []Condition{eventMatch("sender", r.RuleID)})
	}
	for _, r := range rs.Underride {
		add(r, r.Conditions)
	}
	c.tmpl = tb.done()
	return c
}

// Evaluate returns the actions of the first matching rule for an event.
// It evaluates every condition for this one user; Batch gives the same
// answers for many users at a fraction of the cost.
func (c *Compiled) Evaluate(ev *Event, room *Room, user User) Result {
	for i := range c.rules {
		r := &c.rules[i]
		if r.legacy && ev.hasMentions {
			continue
		}
		ok := true
		for j := range r.conds {
			if !r.conds[j].match(ev, room, user) {
				ok = false
				break
			}
		}
		if ok {
			return r.result
		}
	}
	return Result{}
}

func compileConds(conds []Condition) []compiledCond {
	out := make([]compiledCond, 0, len(conds))
	for _, c := range conds {
		out = append(out, compileCond(c))
	}
	return out
}

func compileCond(c Condition) compiledCond {
	switch c.Kind {
	case "event_match":
		if c.Key == "" || c.Pattern == nil {
			return compiledCond{kind: condNever}
		}
		key := canonicalKey(c.Key)
		return compiledCond{kind: condEventMatch, key: key, glob: compileGlob(*c.Pattern, key == "content.body")}
	case "event_property_is", "event_property_contains":
		v, ok := decodeScalar(c.Value)
		if c.Key == "" || !ok {
			return compiledCond{kind: condNever}
		}
		k := condPropertyIs
		if c.Kind == "event_property_contains" {
			k = condPropertyContains
		}
		return compiledCond{kind: k, key: canonicalKey(c.Key), value: v}
	case "contains_display_name":
		return compiledCond{kind: condDisplayName}
	case "room_member_count":
		op, n, ok := parseIs(c.Is)
		if !ok {
			return compiledCond{kind: condNever}
		}
		return compiledCond{kind: condMemberCount, op: op, n: n}
	case "sender_notification_permission":
		return compiledCond{kind: condSenderPermission, key: c.Key}
	}
	// Unknown condition kinds never match (spec).
	return compiledCond{kind: condNever}
}

func (c *compiledCond) match(ev *Event, room *Room, user User) bool {
	switch c.kind {
	case condEventMatch:
		if c.glob.words {
			if c.key == "content.body" {
				return ev.hasBody && c.glob.matchWords(ev.bodyLower)
			}
		}
		s, ok := ev.flat[c.key].(string)
		return ok && c.glob.match(s)
	case condPropertyIs:
		v, ok := ev.flat[c.key]
		return ok && scalarEqual(v, c.value)
	case condPropertyContains:
		arr, ok := ev.flat[c.key].([]any)
		if !ok {
			return false
		}
		for _, v := range arr {
			if scalarEqual(v, c.value) {
				return true
			}
		}
		return false
	case condDisplayName:
		if user.DisplayName == "" || !ev.hasBody {
			return false
		}
		return containsWord(ev.bodyLower, strings.ToLower(user.DisplayName))
	case condMemberCount:
		if room == nil {
			return false
		}
		m := room.MemberCount
		switch c.op {
		case "<":
			return m < c.n
		case ">":
			return m > c.n
		case "<=":
			return m <= c.n
		case ">=":
			return m >= c.n
		}
		return m == c.n
	case condSenderPermission:
		if room == nil || c.key == "" {
			return false
		}
		need, ok := room.NotificationLevels[c.key]
		if !ok {
			if c.key != "room" {
				return false
			}
			need = 50
		}
		return room.SenderLevel >= need
	}
	return false
}

// parseIs parses room_member_count's "is": an optional operator and a
// decimal integer.
func parseIs(is string) (string, int, bool) {
	op := "=="
	for _, o := range []string{"==", "<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(is, o); ok {
			op, is = o, rest
			break
		}
	}
	n, err := strconv.Atoi(is)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return op, n, true
}

// decodeScalar decodes the value of event_property_is/contains: a string,
// json.Number (integers), bool or nil.
func decodeScalar(raw json.RawMessage) (any, bool) {
	if raw == nil || !scalarValue(raw) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// scalarEqual compares an event value with a condition value: same type
// and same value (numbers by their integer value).
func scalarEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		xi, err1 := x.Int64()
		yi, err2 := y.Int64()
		return err1 == nil && err2 == nil && xi == yi
	}
	return false
}

// decodeActions turns a rule's actions into a Result.
func decodeActions(ruleID string, actions []json.RawMessage) Result {
	r := Result{RuleID: ruleID, Actions: actions}
	for _, a := range actions {
		if s, ok := jsonString(a); ok {
			if s == "notify" {
				r.Notify = true
			}
			continue
		}
		var t struct {
			SetTweak string          `json:"set_tweak"`
			Value    json.RawMessage `json:"value"`
		}
		if json.Unmarshal(a, &t) != nil || t.SetTweak == "" {
			continue
		}
		if r.Tweaks == nil {
			r.Tweaks = map[string]json.RawMessage{}
		}
		v := t.Value
		if t.SetTweak == "highlight" {
			// The highlight tweak defaults to true when it has no value.
			r.Highlight = v == nil || string(bytes.TrimSpace(v)) == "true"
			v = json.RawMessage(strconv.FormatBool(r.Highlight))
		}
		r.Tweaks[t.SetTweak] = v
	}
	if !r.Notify {
		r.Highlight = false
	}
	r.actionsJSON, _ = json.Marshal(actions)
	return r
}

// ActionsJSON returns the actions as a JSON array (as json.Marshal of
// Actions gives it), encoded once when the rules were compiled. The
// caller must not modify it.
func (r *Result) ActionsJSON() []byte {
	if r.actionsJSON == nil {
		b, _ := json.Marshal(r.Actions)
		return b
	}
	return r.actionsJSON
}

// glob is an event_match pattern: case-insensitive, "*" any run of
// characters, "?" any one character. A pattern on content.body matches
// any word-delimited part of the body; on other keys the whole value.
type glob struct {
	lit   string         // the lower-cased pattern when it has no wildcard
	re    *regexp.Regexp // otherwise
	words bool
}

func compileGlob(pattern string, words bool) *glob {
	g := &glob{words: words}
	if !strings.ContainsAny(pattern, "*?") {
		g.lit = strings.ToLower(pattern)
		return g
	}
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*?")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	expr := `(?is)^` + b.String() + `$`
	if words {
		expr = `(?is)(?:^|[^\pL\pN_])` + b.String() + `(?:[^\pL\pN_]|$)`
	}
	g.re = regexp.MustCompile(expr) // QuoteMeta makes every pattern valid
	return g
}

// match matches a whole value.
func (g *glob) match(s string) bool {
	if g.re != nil {
		return g.re.MatchString(s)
	}
	return strings.EqualFold(s, g.lit)
}

// matchWords matches a word-delimited part of an already lower-cased text.
func (g *glob) matchWords(lower string) bool {
	if g.re != nil {
		return g.re.MatchString(lower)
	}
	return containsWord(lower, g.lit)
}

// containsWord reports whether word occurs in text with no letter, digit
// or underscore right before or after it. Both are lower-cased.
func containsWord(text, word string) bool {
	return containsWordWith(text, word, strings.Index)
}

// containsWordWith is containsWord with index finding word in text (an
// exact or a case-folding search).
func containsWordWith(text, word string, index func(s, word string) int) bool {
	if word == "" {
		return false
	}
	for from := 0; from <= len(text)-len(word); {
		i := index(text[from:], word)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(word)
		before, _ := utf8.DecodeLastRuneInString(text[:i])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if (i == 0 || !isWordRune(before)) && (end == len(text) || !isWordRune(after)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		from = i + size
	}
	return false
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
