package roomserver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/aula-chat/aula/storage"
)

// ClientEvent is an event in the client-server API's format.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"` // left out in /sync

	Sender   string         `json:"sender"`
	StateKey *string        `json:"state_key,omitempty"`
	Type     string         `json:"type"`
	Redacts  string         `json:"redacts,omitempty"`
	Unsigned map[string]any `json:"unsigned,omitempty"`

	// PDU is the stored event, for clients that ask for the federation
	// format.
	PDU json.RawMessage `json:"-"`
}

// pduFields are the parts of a stored PDU that the client format keeps.
type pduFields struct {
	Content        json.RawMessage            `json:"content"`
	OriginServerTS int64                      `json:"origin_server_ts"`
	Redacts        string                     `json:"redacts"`
	Unsigned       map[string]json.RawMessage `json:"unsigned"`
}

// ToClientEvent converts a stored event to the client format. redactedBy,
// if not nil, is the redaction that removed its content.
func ToClientEvent(ev storage.Event, redactedBy *ClientEvent) ClientEvent {
	// Stored events are valid JSON, built by the server: picking the few
	// fields out with gjson is several times cheaper than decoding the PDU,
	// and this runs for every event of every /sync and /messages answer.
	fields := gjson.GetManyBytes(ev.JSON, "content", "origin_server_ts", "redacts", "unsigned")
	ts := fields[1].Int()
	ce := ClientEvent{
		EventID:        ev.EventID,
		OriginServerTS: ts,
		RoomID:         ev.RoomID,
		Sender:         ev.Sender,
		StateKey:       ev.StateKey,
		Type:           ev.Type,
		PDU:            ev.JSON,
	}
	if fields[0].IsObject() {
		ce.Content = json.RawMessage(fields[0].Raw)
	}
	if fields[2].Type == gjson.String {
		ce.Redacts = fields[2].Str
	}
	if len(ce.Content) == 0 || string(ce.Content) == "null" {
		ce.Content = json.RawMessage("{}")
	}
	if ce.Type == "m.room.redaction" && ce.Redacts == "" {
		// Room version 11 moved redacts into the content; clients written
		// for earlier versions still read the top-level key.
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(ce.Content, &c)
		ce.Redacts = c.Redacts
	}
	unsigned := map[string]any{}
	fields[3].ForEach(func(k, v gjson.Result) bool {
		unsigned[k.Str] = json.RawMessage(v.Raw)
		return true
	})
	if age := time.Now().UnixMilli() - ts; age >= 0 {
		unsigned["age"] = age
	}
	if redactedBy != nil {
		unsigned["redacted_because"] = redactedBy
	}
	ce.Unsigned = unsigned
	return ce
}

// replacesState returns the event ID in a stored state event's
// unsigned.replaces_state, or "".
func replacesState(ev storage.Event) string {
	if ev.StateKey == nil {
		return ""
	}
	var f struct {
		Unsigned struct {
			ReplacesState string `json:"replaces_state"`
		} `json:"unsigned"`
	}
	_ = json.Unmarshal(ev.JSON, &f)
	return f.Unsigned.ReplacesState
}

// clientEvents formats stored events for a client: redacted events carry
// their redaction in unsigned.redacted_because, and a state event whose
// predecessor was redacted after it was sent shows the redacted content as
// its prev_content (the stored copy predates the redaction). The events that
// needs are read in one query. With a viewer, the events also carry their
// bundled aggregations (unsigned["m.relations"], relations.go) as that
// viewer's user may see them; callers that serve only state events, which
// get none, pass nil. The events must be of one room.
func (s *Server) clientEvents(ctx context.Context, v *viewer, evs []storage.Event) ([]ClientEvent, error) {
	return s.formatEvents(ctx, v, evs, true)
}

// formatEvents is clientEvents; threads false leaves out m.thread
// aggregations (for the latest events of threads, which are not roots).
func (s *Server) formatEvents(ctx context.Context, v *viewer, evs []storage.Event, threads bool) ([]ClientEvent, error) {
	var need []string
	for _, ev := range evs {
		if ev.RedactedBy != "" {
			need = append(need, ev.RedactedBy)
		}
		if id := replacesState(ev); id != "" {
			need = append(need, id)
		}
	}
	related, err := s.db.EventsByID(ctx, need)
	if err != nil {
		return nil, err
	}
	out := make([]ClientEvent, 0, len(evs))
	for _, ev := range evs {
		var because *ClientEvent
		if ev.RedactedBy != "" {
			red, ok := related[ev.RedactedBy]
			if !ok {
				return nil, fmt.Errorf("roomserver: redaction %s of %s is missing", ev.RedactedBy, ev.EventID)
			}
			rce := ToClientEvent(red, nil)
			because = &rce
		}
		ce := ToClientEvent(ev, because)
		if prev, ok := related[replacesState(ev)]; ok && prev.RedactedBy != "" {
			var f pduFields
			if json.Unmarshal(prev.JSON, &f) == nil {
				if len(f.Content) == 0 {
					f.Content = json.RawMessage("{}")
				}
				ce.Unsigned["prev_content"] = f.Content
			}
		}
		out = append(out, ce)
	}
	if v != nil {
		if err := s.addBundles(ctx, v, evs, out, threads); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// clientEvent formats one stored event for a client, like clientEvents.
func (s *Server) clientEvent(ctx context.Context, v *viewer, ev storage.Event) (ClientEvent, error) {
	out, err := s.clientEvents(ctx, v, []storage.Event{ev})
	if err != nil {
		return ClientEvent{}, err
	}
	return out[0], nil
}
