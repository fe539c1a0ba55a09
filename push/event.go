package push

import (
	"bytes"
	"encoding/json"
	"strings"
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

// PrepareEvent flattens an event's JSON for evaluation. Invalid JSON gives
// an event that matches only conditions on nothing.
func PrepareEvent(eventJSON []byte) *Event {
	ev := &Event{flat: map[string]any{}, Thread: ThreadMain}
	dec := json.NewDecoder(bytes.NewReader(eventJSON))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return ev
	}
	flatten(ev.flat, "", m)
	ev.ID, _ = m["event_id"].(string)
	ev.RoomID, _ = m["room_id"].(string)
	ev.Type, _ = m["type"].(string)
	ev.Sender, _ = m["sender"].(string)
	if sk, ok := m["state_key"].(string); ok {
		ev.StateKey = &sk
	}
	if body, ok := ev.flat["content.body"].(string); ok {
		ev.bodyLower, ev.hasBody = strings.ToLower(body), true
	}
	if content, ok := m["content"].(map[string]any); ok {
		_, ev.hasMentions = content["m.mentions"]
		if rel, ok := content["m.relates_to"].(map[string]any); ok {
			if rel["rel_type"] == "m.thread" {
				if root, ok := rel["event_id"].(string); ok && root != "" {
					ev.Thread = root
				}
			}
		}
	}
	return ev
}

// flatten records every non-object value of m under its escaped dotted key.
func flatten(out map[string]any, prefix string, m map[string]any) {
	for k, v := range m {
		key := escapeKey(k)
		if prefix != "" {
			key = prefix + "." + key
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(out, key, sub)
			continue
		}
		out[key] = v
	}
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
