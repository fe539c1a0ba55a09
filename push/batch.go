package push

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"weak"
)

// Grouped evaluation. Most members of a big room have the same rules (the
// server defaults, perhaps with a rule or two of their own), and most
// conditions do not depend on who receives the event: event_match on the
// type or msgtype, room_member_count, sender_notification_permission...
// CompileFor therefore splits each ruleset into a template, shared by every
// user whose rules differ only in their own user ID, localpart and display
// name, and those values. Batch evaluates a template's user-independent
// conditions once per event and leaves only the few conditions that name
// the recipient (the mention rules, contains_display_name) for each user.

// template is a compiled ruleset with the recipient's own values replaced
// by references to them. Templates and their rules are interned, so users
// with the same rules share a template, and templates that differ in a
// rule or two share the others (and Batch evaluates those once per event).
type template struct {
	rules []*tmplRule
}

type tmplRule struct {
	legacy bool           // a legacy body rule, off for events with m.mentions
	static []compiledCond // conditions that do not depend on the recipient
	user   []userCond     // conditions that do
	result *Result
}

// param is the recipient's value a userCond refers to.
type param uint8

const (
	paramName      param = iota // the display name (contains_display_name)
	paramUserID                 // the full user ID
	paramLocalpart              // the localpart of the user ID
)

// userCond is a condition that depends on the recipient: contains_display_name,
// or an event_match / event_property_is / event_property_contains whose
// pattern or value is the recipient's user ID or localpart.
type userCond struct {
	kind  condKind
	key   string
	words bool // event_match on content.body: a word-delimited match
	param param
}

// userCondOf tells whether a compiled condition depends on the user c was
// compiled for and, if so, returns it as a userCond.
func (c *Compiled) userCondOf(cc compiledCond) (userCond, bool) {
	switch cc.kind {
	case condDisplayName:
		return userCond{kind: condDisplayName, param: paramName}, true
	case condEventMatch:
		if c.lowerUser == "" || cc.glob.re != nil {
			return userCond{}, false
		}
		switch cc.glob.lit {
		case c.lowerUser:
			return userCond{kind: condEventMatch, key: cc.key, words: cc.glob.words, param: paramUserID}, true
		case c.lowerLocal:
			if c.lowerLocal != "" {
				return userCond{kind: condEventMatch, key: cc.key, words: cc.glob.words, param: paramLocalpart}, true
			}
		}
	case condPropertyIs, condPropertyContains:
		s, ok := cc.value.(string)
		if c.userID == "" || !ok {
			return userCond{}, false
		}
		switch s {
		case c.userID:
			return userCond{kind: cc.kind, key: cc.key, param: paramUserID}, true
		case c.localpart:
			if c.localpart != "" {
				return userCond{kind: cc.kind, key: cc.key, param: paramLocalpart}, true
			}
		}
	}
	return userCond{}, false
}

// templateBuilder builds a template and its signature: a text that is the
// same for two rulesets exactly when they behave the same once the
// recipient's values are substituted. Each rule has such a signature too.
type templateBuilder struct {
	sig  strings.Builder // the template's
	rsig strings.Builder // the current rule's
	t    *template
}

func newTemplateBuilder() *templateBuilder { return &templateBuilder{t: &template{}} }

// add appends one enabled rule, compiled as cr from the conditions src.
func (tb *templateBuilder) add(c *Compiled, cr compiledRule, src []Condition, actions []json.RawMessage) {
	res := cr.result
	tr := tmplRule{legacy: cr.legacy, result: &res}
	tb.str("R", cr.id)
	tb.str("L", strconv.FormatBool(cr.legacy))
	for _, a := range actions {
		tb.str("A", string(a))
	}
	for i, cc := range cr.conds {
		if uc, ok := c.userCondOf(cc); ok {
			tr.user = append(tr.user, uc)
			tb.str("U", strconv.Itoa(int(uc.kind))+"/"+strconv.Itoa(int(uc.param))+"/"+strconv.FormatBool(uc.words))
			tb.str("k", uc.key)
			continue
		}
		tr.static = append(tr.static, cc)
		s := src[i]
		tb.str("S", s.Kind)
		tb.str("k", s.Key)
		if s.Pattern != nil {
			tb.str("p", *s.Pattern)
		}
		if s.Value != nil {
			tb.str("v", string(s.Value))
		}
		tb.str("i", s.Is)
	}
	rsig := tb.rsig.String()
	tb.rsig.Reset()
	tb.sig.WriteString(strconv.Itoa(len(rsig)))
	tb.sig.WriteByte(':')
	tb.sig.WriteString(rsig)
	tb.t.rules = append(tb.t.rules, ruleInterner.intern(rsig, &tr))
}

// str writes a tagged, length-prefixed string to the rule's signature.
func (tb *templateBuilder) str(tag, s string) {
	tb.rsig.WriteString(tag)
	tb.rsig.WriteString(strconv.Itoa(len(s)))
	tb.rsig.WriteByte(':')
	tb.rsig.WriteString(s)
}

// done returns the interned template with the built signature.
func (tb *templateBuilder) done() *template { return templateInterner.intern(tb.sig.String(), tb.t) }

// interner interns values by signature. Entries are weak: a value nothing
// refers to any more is collected and its entry removed.
type interner[T any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[T]
}

var (
	templateInterner = &interner[template]{m: map[string]weak.Pointer[template]{}}
	ruleInterner     = &interner[tmplRule]{m: map[string]weak.Pointer[tmplRule]{}}
)

// intern returns the live value with signature sig, or v (then recorded
// under sig).
func (in *interner[T]) intern(sig string, v *T) *T {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.m[sig]; ok {
		if have := wp.Value(); have != nil {
			return have
		}
	}
	in.m[sig] = weak.Make(v)
	runtime.AddCleanup(v, in.forget, sig)
	return v
}

// forget removes the entry of a collected value, unless a newer value
// took its place.
func (in *interner[T]) forget(sig string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if wp, ok := in.m[sig]; ok && wp.Value() == nil {
		delete(in.m, sig)
	}
}

// live returns the number of entries whose value is alive (for tests).
func (in *interner[T]) live() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, wp := range in.m {
		if wp.Value() != nil {
			n++
		}
	}
	return n
}

// size returns the number of entries (for tests).
func (in *interner[T]) size() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.m)
}

// Batch evaluates one event for many recipients, doing the work that does
// not depend on the recipient once per distinct ruleset (template) rather
// than once per user. Its answers are exactly those of Compiled.Evaluate.
// A Batch is not safe for concurrent use; reuse it for event after event
// (Reset) so that its buffers are reused too.
type Batch struct {
	ev   *Event
	room *Room

	states map[*template]*tmplState
	pool   []*tmplState // every state allocated so far; the first used are in use
	used   int
	lastT  *template // the template of the previous Evaluate and its state
	lastS  *tmplState
	prep   []preparedCond
	sets   map[string]map[string]struct{} // big arrays of strings in the event, as sets
	ruled  map[*tmplRule]ruleState        // rules evaluated for the event so far
}

// ruleState is a rule's evaluation for the current event.
type ruleState struct {
	outcome  ruleOutcome
	from, to int // the prepared user conditions of a ruleCand
}

type ruleOutcome uint8

const (
	ruleNever ruleOutcome = iota // matches no one
	ruleAll                      // matches everyone
	ruleCand                     // matches the users its user conditions hold for
)

// tmplState is a template's evaluation for the current event: the rules
// that may match depending on the recipient (cands), in order, and the
// result when none of them does.
type tmplState struct {
	cands []cand
	final *Result // the first rule matching everyone; nil: none
}

// cand is a rule whose user-independent conditions hold: it matches when
// its user conditions, prepared in Batch.prep[from:to], hold too.
type cand struct {
	rule     *tmplRule
	from, to int
}

// preparedCond is a userCond with the event's side looked up once.
type preparedCond struct {
	uc  *userCond
	s   string              // the string value (event_match, event_property_is)
	arr []any               // the array (event_property_contains)
	set map[string]struct{} // its strings, for big arrays
}

// bigArray is the length from which event_property_contains looks a value
// up in a set instead of scanning the array.
const bigArray = 16

// NewBatch returns an empty Batch; call Reset before Evaluate.
func NewBatch() *Batch {
	return &Batch{states: map[*template]*tmplState{}, sets: map[string]map[string]struct{}{}, ruled: map[*tmplRule]ruleState{}}
}

// Reset prepares the batch for evaluating ev in room (which may be nil).
func (b *Batch) Reset(ev *Event, room *Room) {
	b.ev, b.room = ev, room
	clear(b.states)
	clear(b.sets)
	clear(b.ruled)
	b.used = 0
	b.lastT, b.lastS = nil, nil
	b.prep = b.prep[:0]
}

// Evaluate returns what c.Evaluate(ev, room, user) returns for the event
// and room of the last Reset.
func (b *Batch) Evaluate(c *Compiled, user User) Result {
	if c == nil || c.tmpl == nil {
		return Result{}
	}
	st := b.lastS
	if c.tmpl != b.lastT {
		st = b.states[c.tmpl]
		if st == nil {
			st = b.prepare(c.tmpl)
		}
		b.lastT, b.lastS = c.tmpl, st
	}
	for i := range st.cands {
		cd := &st.cands[i]
		if b.userMatch(cd, c, user) {
			return *cd.rule.result
		}
	}
	if st.final != nil {
		return *st.final
	}
	return Result{}
}

// prepare evaluates a template's user-independent conditions for the
// current event; each rule once per event, however many templates have it.
func (b *Batch) prepare(t *template) *tmplState {
	if b.used == len(b.pool) {
		b.pool = append(b.pool, &tmplState{})
	}
	st := b.pool[b.used]
	b.used++
	st.cands, st.final = st.cands[:0], nil
	for _, r := range t.rules {
		rs, ok := b.ruled[r]
		if !ok {
			rs = b.evaluateRule(r)
			b.ruled[r] = rs
		}
		if rs.outcome == ruleAll {
			st.final = r.result
			break
		}
		if rs.outcome == ruleCand {
			st.cands = append(st.cands, cand{rule: r, from: rs.from, to: rs.to})
		}
	}
	b.states[t] = st
	return st
}

// evaluateRule evaluates a rule's user-independent conditions for the
// current event and prepares its user conditions.
func (b *Batch) evaluateRule(r *tmplRule) ruleState {
	if r.legacy && b.ev.hasMentions {
		return ruleState{}
	}
	for j := range r.static {
		if !r.static[j].match(b.ev, b.room, User{}) {
			return ruleState{}
		}
	}
	if len(r.user) == 0 {
		return ruleState{outcome: ruleAll}
	}
	from := len(b.prep)
	for j := range r.user {
		p, ok := b.prepareCond(&r.user[j])
		if !ok { // holds for no one
			b.prep = b.prep[:from]
			return ruleState{}
		}
		b.prep = append(b.prep, p)
	}
	return ruleState{outcome: ruleCand, from: from, to: len(b.prep)}
}

// prepareCond looks up the event's side of a user condition; false when
// the condition cannot hold whoever the recipient is.
func (b *Batch) prepareCond(uc *userCond) (preparedCond, bool) {
	p := preparedCond{uc: uc}
	ev := b.ev
	switch uc.kind {
	case condDisplayName:
		return p, ev.hasBody
	case condEventMatch:
		if uc.words {
			return p, ev.hasBody
		}
		s, ok := ev.flat[uc.key].(string)
		p.s = s
		return p, ok
	case condPropertyIs:
		s, ok := ev.flat[uc.key].(string)
		p.s = s
		return p, ok
	case condPropertyContains:
		arr, ok := ev.flat[uc.key].([]any)
		if !ok || len(arr) == 0 {
			return p, false
		}
		p.arr = arr
		if len(arr) >= bigArray {
			set, ok := b.sets[uc.key]
			if !ok {
				set = make(map[string]struct{}, len(arr))
				for _, v := range arr {
					if s, ok := v.(string); ok {
						set[s] = struct{}{}
					}
				}
				b.sets[uc.key] = set
			}
			p.set = set
		}
		return p, true
	}
	return p, false
}

// userMatch reports whether all of a candidate rule's user conditions hold
// for the user c was compiled for, whose display name is user.DisplayName.
func (b *Batch) userMatch(cd *cand, c *Compiled, user User) bool {
	for i := cd.from; i < cd.to; i++ {
		p := &b.prep[i]
		uc := p.uc
		if uc.kind == condDisplayName {
			if user.DisplayName == "" || !containsNameWord(b.ev.bodyLower, user.DisplayName) {
				return false
			}
			continue
		}
		lower, exact := c.lowerUser, c.userID
		if uc.param == paramLocalpart {
			lower, exact = c.lowerLocal, c.localpart
		}
		switch uc.kind {
		case condEventMatch:
			if uc.words {
				if !containsWord(b.ev.bodyLower, lower) {
					return false
				}
			} else if !strings.EqualFold(p.s, lower) {
				return false
			}
		case condPropertyIs:
			if p.s != exact {
				return false
			}
		case condPropertyContains:
			if p.set != nil {
				if _, ok := p.set[exact]; !ok {
					return false
				}
				continue
			}
			found := false
			for _, v := range p.arr {
				if s, ok := v.(string); ok && s == exact {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// containsNameWord is containsWord(text, strings.ToLower(name)) without
// allocating for ASCII names.
func containsNameWord(text, name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return containsWord(text, strings.ToLower(name))
		}
	}
	return containsWordWith(text, name, indexASCIIFold)
}

// indexASCIIFold is strings.Index(s, lower(word)) for an ASCII word, where
// lower maps only A-Z.
func indexASCIIFold(s, word string) int {
	n := len(word)
	first := lowerASCII(word[0])
	for i := 0; i+n <= len(s); i++ {
		j := strings.IndexByte(s[i:len(s)-n+1], first)
		if j < 0 {
			return -1
		}
		i += j
		k := 1
		for k < n && s[i+k] == lowerASCII(word[k]) {
			k++
		}
		if k == n {
			return i
		}
	}
	return -1
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
