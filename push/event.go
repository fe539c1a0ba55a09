package push

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// Event is a room event prepared once for evaluation against many users'
// rules: its properties flattened to dotted keys (dots and backslashes in
// keys escaped with a backslash, as push-rule keys are written), so that
// every condition is one map lookup.
type Event struct {
	// ID, RoomID, Type, Sender are the event's top-level fields.
	ID, RoomID, Type, Sender string
	// StateKey is the state key of a state event, nil otherwise.
	StateKey *string
	// Thread is the thread the event belongs to: the root's event ID for
	// an m.thread relation, "main" otherwise.
	Thread string

	flat        map[string]any // escaped dotted key → string, json.Number, bool, nil or []any
	bodyLower   string         // content.body, lower-cased ("" if absent)
	hasBody     bool
	hasMentions bool // content has "m.mentions": the legacy body rules are off
}

// ThreadMain is the thread ID of events outside any thread.
const ThreadMain = "main"

// PrepareEvent flattens an event's JSON (canonical JSON, so no key twice)
// for evaluation. Invalid JSON gives an event that matches only conditions
// on nothing. The JSON is read with gjson, without decoding it into maps
// first: this runs once for every event sent.
func PrepareEvent(eventJSON []byte) *Event {
	ev := &Event{flat: map[string]any{}, Thread: ThreadMain}
	if !gjson.ValidBytes(eventJSON) {
		return ev
	}
	root := gjson.ParseBytes(eventJSON)
	if !root.IsObject() {
		return ev
	}
	flatten(ev.flat, "", root)
	ev.ID, _ = ev.flat["event_id"].(string)
	ev.RoomID, _ = ev.flat["room_id"].(string)
	ev.Type, _ = ev.flat["type"].(string)
	ev.Sender, _ = ev.flat["sender"].(string)
	if sk, ok := ev.flat["state_key"].(string); ok {
		ev.StateKey = &sk
	}
	if body, ok := ev.flat["content.body"].(string); ok {
		ev.bodyLower, ev.hasBody = strings.ToLower(body), true
	}
	// An empty m.mentions object leaves no key in flat; it still counts.
	ev.hasMentions = root.Get(`content.m\.mentions`).Exists()
	if rel, _ := ev.flat[`content.m\.relates_to.rel_type`].(string); rel == "m.thread" {
		if root, _ := ev.flat[`content.m\.relates_to.event_id`].(string); root != "" {
			ev.Thread = root
		}
	}
	return ev
}

// flatten records every non-object value of the object o under its escaped
// dotted key.
func flatten(out map[string]any, prefix string, o gjson.Result) {
	o.ForEach(func(k, v gjson.Result) bool {
		key := escapeKey(k.String())
		if prefix != "" {
			key = prefix + "." + key
		}
		if v.IsObject() {
			flatten(out, key, v)
		} else {
			out[key] = value(v)
		}
		return true
	})
}

// value is a JSON value as encoding/json decodes it with UseNumber: string,
// json.Number, bool, nil, []any or map[string]any.
func value(v gjson.Result) any {
	switch v.Type {
	case gjson.String:
		return v.String()
	case gjson.Number:
		return json.Number(v.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Null:
		return nil
	}
	if v.IsArray() {
		arr := []any{}
		v.ForEach(func(_, e gjson.Result) bool {
			arr = append(arr, value(e))
			return true
		})
		return arr
	}
	m := map[string]any{}
	v.ForEach(func(k, e gjson.Result) bool {
		m[k.String()] = value(e)
		return true
	})
	return m
}

// escapeKey escapes dots and backslashes in one key segment.
func escapeKey(k string) string {
	if !strings.ContainsAny(k, `.\`) {
		return k
	}
	return keyEscaper.Replace(k)
}

// keyEscaper is built once: a Replacer compiles itself on first use.
var keyEscaper = strings.NewReplacer(`\`, `\\`, `.`, `\.`)

// canonicalKey rewrites a condition key into the escaping flatten uses: a
// backslash escapes the next character, an unescaped dot separates
// segments.
func canonicalKey(key string) string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch {
		case key[i] == '\\' && i+1 < len(key):
			cur.WriteByte(key[i+1])
			i++
		case key[i] == '.':
			parts = append(parts, escapeKey(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(key[i])
		}
	}
	parts = append(parts, escapeKey(cur.String()))
	return strings.Join(parts, ".")
}
