package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aula-chat/aula/internal/mxerr"
)

// The five kinds of push rule.
const (
	// KindOverride rules are checked first.
	KindOverride = "override"
	// KindContent rules match a glob pattern against content.body.
	KindContent = "content"
	// KindRoom rules apply to one room; the rule ID is the room ID.
	KindRoom = "room"
	// KindSender rules apply to one sender; the rule ID is the user ID.
	KindSender = "sender"
	// KindUnderride rules are checked last.
	KindUnderride = "underride"
)

// Kinds lists the five kinds in evaluation order.
var Kinds = []string{KindOverride, KindContent, KindRoom, KindSender, KindUnderride}

// IsKind reports whether kind is one of [Kinds].
func IsKind(kind string) bool {
	return slices.Contains(Kinds, kind)
}

// Condition is one condition of an override or underride rule. It marshals to
// the spec's JSON: absent parameters are omitted, while a present "value" is
// kept whatever it is (false, 0, "" and null included), and parameters this
// package does not know are preserved in Extra so that a rule round-trips
// unchanged.
type Condition struct {
	// Kind is the condition kind, e.g. "event_match".
	Kind string `json:"kind"`
	// Key is the dot-separated event property path (event_match,
	// event_property_is, event_property_contains) or the power-level
	// notifications key (sender_notification_permission).
	Key string `json:"key,omitempty"`
	// Pattern is the glob of event_match; nil when absent. It may point at
	// "" (e.g. state_key of .m.rule.tombstone).
	Pattern *string `json:"pattern,omitempty"`
	// Value is the compact JSON value of event_property_is and
	// event_property_contains; nil when absent, otherwise kept verbatim
	// (so false, 0 and null survive).
	Value json.RawMessage `json:"value,omitempty"`
	// Is is the member-count comparison of room_member_count, e.g. "2" or
	// "<=10".
	Is string `json:"is,omitempty"`
	// Extra holds any other parameters of the condition, as compact JSON.
	Extra map[string]json.RawMessage `json:"-"`
}

// conditionFields are the JSON keys that Condition maps to struct fields.
var conditionFields = map[string]bool{"kind": true, "key": true, "pattern": true, "value": true, "is": true}

// MarshalJSON implements json.Marshaler.
func (c Condition) MarshalJSON() ([]byte, error) {
	type plain Condition
	b, err := marshal(plain(c))
	if err != nil || len(c.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		if !conditionFields[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // drop the closing brace; "kind" is always present
	for _, k := range keys {
		v := c.Extra[k]
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("push: condition parameter %q is not valid JSON", k)
		}
		kb, _ := marshal(k)
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		if err := json.Compact(&buf, v); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler. The known parameters must have
// the types the spec gives them (strings, apart from "value").
func (c *Condition) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if m == nil {
		return errors.New("condition must be an object")
	}
	var out Condition
	for k, v := range m {
		switch k {
		case "kind", "key", "is", "pattern":
			s, ok := jsonString(v)
			if !ok {
				return fmt.Errorf("condition parameter %q must be a string", k)
			}
			switch k {
			case "kind":
				out.Kind = s
			case "key":
				out.Key = s
			case "is":
				out.Is = s
			case "pattern":
				out.Pattern = &s
			}
		case "value":
			out.Value = compact(v)
		default:
			if out.Extra == nil {
				out.Extra = map[string]json.RawMessage{}
			}
			out.Extra[k] = compact(v)
		}
	}
	*c = out
	return nil
}

// Rule is one push rule as clients see it.
//
// Conditions is present in JSON exactly when it is non-nil, so override and
// underride rules carry "conditions" even when it is empty (as for
// .m.rule.master), while content, room and sender rules carry none. Actions
// always marshals as an array, never null.
type Rule struct {
	// RuleID identifies the rule within its kind.
	RuleID string `json:"rule_id"`
	// Default is true for server-default rules.
	Default bool `json:"default"`
	// Enabled reports whether the rule takes part in evaluation.
	Enabled bool `json:"enabled"`
	// Actions are the rule's actions, each a compact JSON string or object.
	Actions []json.RawMessage `json:"actions"`
	// Conditions are the conditions of override and underride rules.
	Conditions []Condition `json:"conditions,omitzero"`
	// Pattern is the glob of a content rule.
	Pattern *string `json:"pattern,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	p := plain(r)
	if p.Actions == nil {
		p.Actions = []json.RawMessage{}
	}
	return marshal(p)
}

// Ruleset is the set of rules of the "global" scope, one list per kind, each
// in priority order. Every list marshals as an array, never null.
type Ruleset struct {
	// Override rules.
	Override []Rule `json:"override"`
	// Content rules.
	Content []Rule `json:"content"`
	// Room rules.
	Room []Rule `json:"room"`
	// Sender rules.
	Sender []Rule `json:"sender"`
	// Underride rules.
	Underride []Rule `json:"underride"`
}

// MarshalJSON implements json.Marshaler.
func (rs Ruleset) MarshalJSON() ([]byte, error) {
	type plain Ruleset
	p := plain(rs)
	for _, l := range []*[]Rule{&p.Override, &p.Content, &p.Room, &p.Sender, &p.Underride} {
		if *l == nil {
			*l = []Rule{}
		}
	}
	return marshal(p)
}

// list returns a pointer to the list of kind, or nil for an unknown kind.
func (rs *Ruleset) list(kind string) *[]Rule {
	switch kind {
	case KindOverride:
		return &rs.Override
	case KindContent:
		return &rs.Content
	case KindRoom:
		return &rs.Room
	case KindSender:
		return &rs.Sender
	case KindUnderride:
		return &rs.Underride
	}
	return nil
}

// Rules returns the rules of kind, for GET /pushrules/global/{kind}/. It is
// never nil. An unknown kind is 400 M_INVALID_PARAM.
func (rs Ruleset) Rules(kind string) ([]Rule, error) {
	l := rs.list(kind)
	if l == nil {
		return nil, errUnknownKind(kind)
	}
	if *l == nil {
		return []Rule{}, nil
	}
	return *l, nil
}

// Get returns one rule, for GET /pushrules/global/{kind}/{ruleId} and its
// /enabled and /actions sub-resources. An unknown kind is 400
// M_INVALID_PARAM; an unknown rule is 404 M_NOT_FOUND.
func (rs Ruleset) Get(kind, ruleID string) (Rule, error) {
	l := rs.list(kind)
	if l == nil {
		return Rule{}, errUnknownKind(kind)
	}
	if i := indexOf(*l, ruleID); i >= 0 {
		return (*l)[i], nil
	}
	return Rule{}, errNotFound()
}

// UserRules is what one user changed relative to the server defaults. The
// storage layer keeps it as an opaque JSON document; its zero value means "no
// changes".
type UserRules struct {
	// Override holds the user's own override rules, most important first.
	Override []Rule `json:"override,omitempty"`
	// Content holds the user's own content rules, most important first.
	Content []Rule `json:"content,omitempty"`
	// Room holds the user's room rules, most important first.
	Room []Rule `json:"room,omitempty"`
	// Sender holds the user's sender rules, most important first.
	Sender []Rule `json:"sender,omitempty"`
	// Underride holds the user's own underride rules, most important first.
	Underride []Rule `json:"underride,omitempty"`
	// Defaults holds changes to server-default rules, keyed by kind and
	// then by rule ID. Entries that match the default are dropped.
	Defaults map[string]map[string]DefaultChange `json:"defaults,omitempty"`
}

// DefaultChange is a user's change to one server-default rule.
type DefaultChange struct {
	// Enabled, when set, replaces the rule's default enabled flag.
	Enabled *bool `json:"enabled,omitempty"`
	// Actions, when non-nil, replace the rule's default actions (an empty,
	// non-nil list means "no actions").
	Actions []json.RawMessage `json:"actions,omitzero"`
}

// list returns a pointer to the user's list of kind, or nil for an unknown
// kind.
func (ur *UserRules) list(kind string) *[]Rule {
	switch kind {
	case KindOverride:
		return &ur.Override
	case KindContent:
		return &ur.Content
	case KindRoom:
		return &ur.Room
	case KindSender:
		return &ur.Sender
	case KindUnderride:
		return &ur.Underride
	}
	return nil
}

// Effective merges the server defaults for userID with the user's changes into
// the ruleset clients see. Per kind:
//
//   - override: .m.rule.master, then the user's rules, then the other
//     server-default override rules;
//   - content and underride: the user's rules, then the server-default ones;
//   - room and sender: the user's rules.
//
// The result shares no memory with ur.
func Effective(userID string, ur UserRules) Ruleset {
	d := Defaults(userID)
	for _, kind := range Kinds {
		changes := ur.Defaults[kind]
		if len(changes) == 0 {
			continue
		}
		for i := range *d.list(kind) {
			r := &(*d.list(kind))[i]
			ch, ok := changes[r.RuleID]
			if !ok {
				continue
			}
			if ch.Enabled != nil {
				r.Enabled = *ch.Enabled
			}
			if ch.Actions != nil {
				r.Actions = cloneActions(ch.Actions)
			}
		}
	}

	var first, rest []Rule
	for _, r := range d.Override {
		if r.RuleID == RuleMaster {
			first = append(first, r)
		} else {
			rest = append(rest, r)
		}
	}
	return Ruleset{
		Override:  concat(first, cloneRules(ur.Override), rest),
		Content:   concat(cloneRules(ur.Content), d.Content),
		Room:      concat(cloneRules(ur.Room)),
		Sender:    concat(cloneRules(ur.Sender)),
		Underride: concat(cloneRules(ur.Underride), d.Underride),
	}
}

// Put creates or replaces the user's rule ruleID of kind, for PUT
// /pushrules/global/{kind}/{ruleId}. body is the request body
// ({"actions": [...], "conditions": [...], "pattern": "..."}); before and
// after are the query parameters ("" when absent).
//
// A new rule is enabled. Without before/after a new rule becomes the user's
// most important rule of its kind and a replaced rule keeps its position and
// its enabled flag. With before (which wins when both are given) or after,
// the rule is placed just above or just below that user rule.
//
// Errors: unknown kind, reserved or malformed rule ID, invalid actions or
// conditions are 400 M_INVALID_PARAM; a missing required field is 400
// M_MISSING_PARAM; a body that is not JSON is 400 M_NOT_JSON, one that is not
// an object 400 M_BAD_JSON; before/after naming a server-default rule is 400
// M_INVALID_PARAM; before/after naming no rule is 400 M_UNKNOWN, as in the
// spec's example.
func (ur *UserRules) Put(userID, kind, ruleID string, body []byte, before, after string) error {
	if !IsKind(kind) {
		return errUnknownKind(kind)
	}
	if err := checkNewRuleID(kind, ruleID); err != nil {
		return err
	}
	rule, err := parseRuleBody(kind, ruleID, body)
	if err != nil {
		return err
	}

	l := ur.list(kind)
	old := indexOf(*l, ruleID)
	rule.Enabled = true
	if old >= 0 {
		rule.Enabled = (*l)[old].Enabled
	}

	anchor, above := before, true
	if anchor == "" {
		anchor, above = after, false
	}
	if anchor == "" || (anchor == ruleID && old >= 0) {
		if old >= 0 {
			(*l)[old] = rule
		} else {
			*l = slices.Insert(*l, 0, rule)
		}
		return nil
	}

	if isDefaultID(kind, anchor) {
		return mxerr.InvalidParam("Cannot add a rule relative to the server-default rule %s", anchor)
	}
	rest := slices.Clone(*l)
	if old >= 0 {
		rest = slices.Delete(rest, old, old+1)
	}
	at := indexOf(rest, anchor)
	if at < 0 {
		return mxerr.Unknown("before/after rule not found: %s", anchor)
	}
	if !above {
		at++
	}
	*l = slices.Insert(rest, at, rule)
	return nil
}

// Delete removes the user's rule ruleID of kind, for DELETE
// /pushrules/global/{kind}/{ruleId}. An unknown kind is 400 M_INVALID_PARAM,
// a server-default rule 400 M_INVALID_PARAM (it cannot be deleted, only
// disabled) and an unknown rule 404 M_NOT_FOUND.
func (ur *UserRules) Delete(kind, ruleID string) error {
	if !IsKind(kind) {
		return errUnknownKind(kind)
	}
	if isDefaultID(kind, ruleID) {
		return mxerr.InvalidParam("Cannot delete a server-default push rule")
	}
	l := ur.list(kind)
	i := indexOf(*l, ruleID)
	if i < 0 {
		return errNotFound()
	}
	*l = slices.Delete(*l, i, i+1)
	if len(*l) == 0 {
		*l = nil
	}
	return nil
}

// SetEnabled enables or disables a rule, for PUT
// /pushrules/global/{kind}/{ruleId}/enabled. It works for server-default and
// user rules alike. An unknown kind is 400 M_INVALID_PARAM and an unknown rule
// 404 M_NOT_FOUND.
func (ur *UserRules) SetEnabled(userID, kind, ruleID string, enabled bool) error {
	if !IsKind(kind) {
		return errUnknownKind(kind)
	}
	if def, ok := defaultRule(userID, kind, ruleID); ok {
		ur.changeDefault(kind, def, func(ch *DefaultChange) { ch.Enabled = &enabled })
		return nil
	}
	l := ur.list(kind)
	i := indexOf(*l, ruleID)
	if i < 0 {
		return errNotFound()
	}
	(*l)[i].Enabled = enabled
	return nil
}

// SetActions replaces a rule's actions, for PUT
// /pushrules/global/{kind}/{ruleId}/actions. actions is the JSON array (the
// value of the body's "actions" field, see [DecodeActionsBody]). It works for
// server-default and user rules alike. An unknown kind or invalid actions are
// 400 M_INVALID_PARAM and an unknown rule 404 M_NOT_FOUND.
func (ur *UserRules) SetActions(userID, kind, ruleID string, actions []byte) error {
	if !IsKind(kind) {
		return errUnknownKind(kind)
	}
	acts, err := parseActions(actions)
	if err != nil {
		return err
	}
	if def, ok := defaultRule(userID, kind, ruleID); ok {
		ur.changeDefault(kind, def, func(ch *DefaultChange) { ch.Actions = acts })
		return nil
	}
	l := ur.list(kind)
	i := indexOf(*l, ruleID)
	if i < 0 {
		return errNotFound()
	}
	(*l)[i].Actions = acts
	return nil
}

// DecodeEnabledBody parses the body of PUT .../enabled ({"enabled": bool}).
// Invalid JSON is 400 M_NOT_JSON, a missing field 400 M_MISSING_PARAM and a
// non-boolean 400 M_INVALID_PARAM.
func DecodeEnabledBody(body []byte) (bool, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return false, err
	}
	v, ok := obj["enabled"]
	if !ok {
		return false, mxerr.MissingParam("Missing 'enabled'")
	}
	var b bool
	switch string(bytes.TrimSpace(v)) {
	case "true":
		b = true
	case "false":
	default:
		return false, mxerr.InvalidParam("Value for 'enabled' must be boolean")
	}
	return b, nil
}

// DecodeActionsBody parses the body of PUT .../actions ({"actions": [...]})
// and returns the array for [UserRules.SetActions], which validates it.
// Invalid JSON is 400 M_NOT_JSON and a missing field 400 M_MISSING_PARAM.
func DecodeActionsBody(body []byte) ([]byte, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	v, ok := obj["actions"]
	if !ok {
		return nil, mxerr.MissingParam("Missing 'actions'")
	}
	return v, nil
}

// defaultRule returns the server-default rule ruleID of kind for userID.
func defaultRule(userID, kind, ruleID string) (Rule, bool) {
	if !isDefaultID(kind, ruleID) {
		return Rule{}, false
	}
	r, err := Defaults(userID).Get(kind, ruleID)
	return r, err == nil
}

// changeDefault applies f to the user's change of the default rule def and
// drops whatever the change leaves equal to the default.
func (ur *UserRules) changeDefault(kind string, def Rule, f func(*DefaultChange)) {
	ch := ur.Defaults[kind][def.RuleID]
	f(&ch)
	if ch.Enabled != nil && *ch.Enabled == def.Enabled {
		ch.Enabled = nil
	}
	if ch.Actions != nil && actionsEqual(ch.Actions, def.Actions) {
		ch.Actions = nil
	}
	if ch.Enabled == nil && ch.Actions == nil {
		delete(ur.Defaults[kind], def.RuleID)
		if len(ur.Defaults[kind]) == 0 {
			delete(ur.Defaults, kind)
		}
		if len(ur.Defaults) == 0 {
			ur.Defaults = nil
		}
		return
	}
	if ur.Defaults == nil {
		ur.Defaults = map[string]map[string]DefaultChange{}
	}
	if ur.Defaults[kind] == nil {
		ur.Defaults[kind] = map[string]DefaultChange{}
	}
	ur.Defaults[kind][def.RuleID] = ch
}

// checkNewRuleID validates the rule ID of a PUT.
func checkNewRuleID(kind, ruleID string) error {
	switch {
	case ruleID == "":
		return mxerr.InvalidParam("Empty rule_id")
	case strings.HasPrefix(ruleID, "."):
		return mxerr.InvalidParam("Rule IDs starting with '.' are reserved for server-default rules")
	case strings.ContainsAny(ruleID, `/\`):
		return mxerr.InvalidParam("rule_id may not contain slashes")
	case kind == KindSender && !strings.HasPrefix(ruleID, "@"):
		return mxerr.InvalidParam("The rule_id of a sender rule must be a user ID")
	}
	return nil
}

// parseRuleBody validates a PUT body and returns the rule it describes
// (enabled flag not yet set).
func parseRuleBody(kind, ruleID string, body []byte) (Rule, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return Rule{}, err
	}
	raw, ok := obj["actions"]
	if !ok {
		return Rule{}, mxerr.MissingParam("Missing 'actions'")
	}
	actions, err := parseActions(raw)
	if err != nil {
		return Rule{}, err
	}
	rule := Rule{RuleID: ruleID, Actions: actions}
	switch kind {
	case KindOverride, KindUnderride:
		raw, ok := obj["conditions"]
		if !ok {
			return Rule{}, mxerr.MissingParam("Missing 'conditions'")
		}
		if rule.Conditions, err = parseConditions(raw); err != nil {
			return Rule{}, err
		}
	case KindContent:
		raw, ok := obj["pattern"]
		if !ok {
			return Rule{}, mxerr.MissingParam("Content rule missing 'pattern'")
		}
		p, ok := jsonString(raw)
		if !ok {
			return Rule{}, mxerr.InvalidParam("'pattern' must be a string")
		}
		rule.Pattern = &p
	}
	return rule, nil
}

// decodeObject decodes a request body that must be a JSON object.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(body) {
		return nil, mxerr.NotJSON("Content not JSON.")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, mxerr.BadJSON("Content must be a JSON object")
	}
	return obj, nil
}

// parseActions validates a JSON array of actions and returns its elements,
// compacted. The result is never nil. Accepted are "notify", the legacy
// "dont_notify" and "coalesce" (kept as given; evaluation ignores them), and
// objects with a string "set_tweak".
func parseActions(raw []byte) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, mxerr.InvalidParam("'actions' must be an array")
	}
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		switch firstByte(it) {
		case '"':
			s, _ := jsonString(it)
			switch s {
			case "notify", "dont_notify", "coalesce":
			default:
				return nil, mxerr.InvalidParam("Unrecognised action %q", s)
			}
		case '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(it, &obj); err != nil {
				return nil, mxerr.InvalidParam("Invalid action")
			}
			tweak, ok := obj["set_tweak"]
			if !ok {
				return nil, mxerr.InvalidParam("Unrecognised action %s", compact(it))
			}
			if name, ok := jsonString(tweak); !ok || name == "" {
				return nil, mxerr.InvalidParam("'set_tweak' must be a non-empty string")
			}
		default:
			return nil, mxerr.InvalidParam("Unrecognised action %s", compact(it))
		}
		out = append(out, compact(it))
	}
	return out, nil
}

// parseConditions validates a JSON array of conditions. The result is never
// nil.
func parseConditions(raw []byte) ([]Condition, error) {
	var items []json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, mxerr.InvalidParam("'conditions' must be an array")
	}
	out := make([]Condition, 0, len(items))
	for _, it := range items {
		if firstByte(it) != '{' {
			return nil, mxerr.InvalidParam("Each condition must be an object")
		}
		var c Condition
		if err := json.Unmarshal(it, &c); err != nil {
			return nil, mxerr.InvalidParam("Invalid condition: %v", err)
		}
		if err := validateCondition(c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// validateCondition checks the parameters of the condition kinds the spec
// defines. Other kinds are accepted as they are: the spec says they never
// match, which makes the rule inert rather than invalid.
func validateCondition(c Condition) error {
	bad := func(format string, args ...any) error {
		return mxerr.InvalidParam("Invalid %s condition: "+format, append([]any{c.Kind}, args...)...)
	}
	switch c.Kind {
	case "":
		return mxerr.InvalidParam("Condition without 'kind'")
	case "event_match":
		if c.Key == "" {
			return bad("missing 'key'")
		}
		if c.Pattern == nil {
			return bad("missing 'pattern'")
		}
	case "event_property_is", "event_property_contains":
		if c.Key == "" {
			return bad("missing 'key'")
		}
		if c.Value == nil {
			return bad("missing 'value'")
		}
		if !scalarValue(c.Value) {
			return bad("'value' must be a string, an integer, a boolean or null")
		}
	case "room_member_count":
		if !memberCountIs(c.Is) {
			return bad("'is' must be a decimal integer, optionally prefixed by ==, <, >, >= or <=")
		}
	case "sender_notification_permission":
		if c.Key == "" {
			return bad("missing 'key'")
		}
	}
	return nil
}

// maxSafeInt is the largest integer canonical JSON allows: 2**53 - 1.
const maxSafeInt = 1<<53 - 1

// scalarValue reports whether v is a non-compound canonical JSON value: a
// string, an integer within ±(2**53-1), a boolean or null.
func scalarValue(v json.RawMessage) bool {
	s := string(bytes.TrimSpace(v))
	switch {
	case s == "true" || s == "false" || s == "null":
		return true
	case strings.HasPrefix(s, `"`):
		_, ok := jsonString(v)
		return ok
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= -maxSafeInt && n <= maxSafeInt
}

// memberCountIs reports whether is has the room_member_count syntax.
func memberCountIs(is string) bool {
	for _, op := range []string{"==", "<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(is, op); ok {
			is = rest
			break
		}
	}
	if is == "" {
		return false
	}
	for _, r := range is {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// marshal is json.Marshal without HTML escaping. The MarshalJSON methods use
// it so that whoever encodes the outer value decides: json.Marshal escapes
// "<", ">" and "&" as usual, an Encoder with SetEscapeHTML(false) keeps them.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonString decodes raw if it is a JSON string.
func jsonString(raw []byte) (string, bool) {
	if firstByte(raw) != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// firstByte returns the first non-space byte of raw, or 0.
func firstByte(raw []byte) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// compact returns a compacted copy of the JSON value raw (or a plain copy if
// raw is not valid JSON).
func compact(raw []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return buf.Bytes()
}

// actionsEqual reports whether two action lists are the same JSON.
func actionsEqual(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool {
		return bytes.Equal(compact(x), compact(y))
	})
}

// indexOf returns the index of the rule ruleID in rules, or -1.
func indexOf(rules []Rule, ruleID string) int {
	return slices.IndexFunc(rules, func(r Rule) bool { return r.RuleID == ruleID })
}

// concat joins lists into a new, non-nil slice.
func concat(lists ...[]Rule) []Rule {
	return append([]Rule{}, slices.Concat(lists...)...)
}

// cloneRules deep-copies user rules, marking them as not default.
func cloneRules(rules []Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.Default = false
		r.Actions = cloneActions(r.Actions)
		if r.Conditions != nil {
			cs := make([]Condition, len(r.Conditions))
			for j, c := range r.Conditions {
				cs[j] = cloneCondition(c)
			}
			r.Conditions = cs
		}
		if r.Pattern != nil {
			p := *r.Pattern
			r.Pattern = &p
		}
		out[i] = r
	}
	return out
}

// cloneCondition deep-copies a condition.
func cloneCondition(c Condition) Condition {
	if c.Pattern != nil {
		p := *c.Pattern
		c.Pattern = &p
	}
	if c.Value != nil {
		c.Value = slices.Clone(c.Value)
	}
	if c.Extra != nil {
		extra := make(map[string]json.RawMessage, len(c.Extra))
		for k, v := range c.Extra {
			extra[k] = slices.Clone(v)
		}
		c.Extra = extra
	}
	return c
}

// cloneActions deep-copies actions; the result is never nil.
func cloneActions(actions []json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(actions))
	for i, a := range actions {
		out[i] = slices.Clone(a)
	}
	return out
}

// errUnknownKind is 400 M_INVALID_PARAM for a kind that is not one of Kinds.
func errUnknownKind(kind string) error {
	return mxerr.InvalidParam("Unknown push rule kind %q", kind)
}

// errNotFound is 404 M_NOT_FOUND for an unknown rule.
func errNotFound() error {
	return mxerr.NotFound("Unknown push rule")
}
