package roomserver

import (
	"encoding/json"
	"time"

	"github.com/aula-chat/aula/storage"
)

// ClientEvent is an event in the client-server API's format.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	Unsigned       map[string]any  `json:"unsigned,omitempty"`
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
	var f pduFields
	_ = json.Unmarshal(ev.JSON, &f) // stored events are valid JSON
	ce := ClientEvent{
		Content:        f.Content,
		EventID:        ev.EventID,
		OriginServerTS: f.OriginServerTS,
		RoomID:         ev.RoomID,
		Sender:         ev.Sender,
		StateKey:       ev.StateKey,
		Type:           ev.Type,
		Redacts:        f.Redacts,
	}
	if len(ce.Content) == 0 {
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
	for k, v := range f.Unsigned {
		unsigned[k] = v
	}
	if age := time.Now().UnixMilli() - f.OriginServerTS; age >= 0 {
		unsigned["age"] = age
	}
	if redactedBy != nil {
		unsigned["redacted_because"] = redactedBy
	}
	ce.Unsigned = unsigned
	return ce
}
