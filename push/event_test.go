package push

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodedFlat is what PrepareEvent's flat map must hold: every non-object
// value of the decoded event (encoding/json with UseNumber) under its
// escaped dotted key.
func decodedFlat(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := escapeKey(k)
			if prefix != "" {
				key = prefix + "." + key
			}
			if sub, ok := v.(map[string]any); ok {
				walk(key, sub)
			} else {
				out[key] = v
			}
		}
	}
	walk("", m)
	return out
}

func TestPrepareEventFlattensAsDecoding(t *testing.T) {
	for _, raw := range []string{
		`{"type":"m.room.message","sender":"@a:x","room_id":"!r:x","event_id":"$e","content":{"body":"Hi \u00e9\n\"there\"","msgtype":"m.text"}}`,
		`{"type":"m.room.member","state_key":"@b:x","content":{"membership":"join","displayname":null}}`,
		`{"type":"t","content":{"n":-0,"f":1.5e3,"big":12345678901234567890,"yes":true,"no":false,"list":[1,"two",{"three":3},[4,null]],"empty":{},"nested":{"a":{"b":{"c":"deep"}}}}}`,
		`{"type":"t","content":{"dotted.key":"d","back\\slash":"b","m.relates_to":{"rel_type":"m.thread","event_id":"$root"}}}`,
	} {
		ev := PrepareEvent([]byte(raw))
		if want := decodedFlat(t, []byte(raw)); !reflect.DeepEqual(ev.flat, want) {
			t.Errorf("PrepareEvent(%s).flat =\n%#v\nwant\n%#v", raw, ev.flat, want)
		}
	}

	ev := PrepareEvent([]byte(`{"type":"m.room.message","sender":"@a:x","room_id":"!r:x","event_id":"$e","state_key":"","content":{"body":"ÉXAM","m.mentions":{},"m.relates_to":{"rel_type":"m.thread","event_id":"$root"}}}`))
	if ev.ID != "$e" || ev.RoomID != "!r:x" || ev.Type != "m.room.message" || ev.Sender != "@a:x" || ev.StateKey == nil || *ev.StateKey != "" {
		t.Errorf("top-level fields = %+v", ev)
	}
	if !ev.hasBody || ev.bodyLower != "éxam" || !ev.hasMentions || ev.Thread != "$root" {
		t.Errorf("body %q (%v), mentions %v, thread %q", ev.bodyLower, ev.hasBody, ev.hasMentions, ev.Thread)
	}
	ev = PrepareEvent([]byte(`{"type":"m.room.message","content":{"body":1,"m.relates_to":{"rel_type":"m.reference","event_id":"$x"}}}`))
	if ev.hasBody || ev.hasMentions || ev.Thread != ThreadMain || ev.StateKey != nil {
		t.Errorf("non-string body, no mentions, reference: %+v", ev)
	}
	for _, bad := range []string{``, `not json`, `[1,2]`, `"s"`, `{"type":"t",}`, `{"a":1} {"b":2}`} {
		if ev := PrepareEvent([]byte(bad)); len(ev.flat) != 0 || ev.Type != "" || ev.Thread != ThreadMain {
			t.Errorf("PrepareEvent(%q) = %+v, want an empty event", bad, ev)
		}
	}
}
