package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// readContent reads an event content body: a JSON object.
func readContent(r *http.Request) (json.RawMessage, error) {
	var content json.RawMessage
	if err := decodeJSON(r, &content, false); err != nil {
		return nil, err
	}
	return content, nil
}

// sendMessage answers PUT /rooms/{roomId}/send/{eventType}/{txnId}.
func (a *API) sendMessage(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	content, err := readContent(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	req := roomserver.SendRequest{RoomID: roomID, Sender: d.UserID, DeviceID: d.DeviceID, TxnID: v["txnId"], Type: v["eventType"], Content: content}
	if req.Type == "m.room.redaction" {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(content, &c)
		req.Redacts = c.Redacts
	}
	if res, delayed, err := a.maybeDelay(r, req); delayed { // MSC4140 (delayed.go)
		return res, err
	}
	id, err := a.rooms.Send(r.Context(), req)
	if err == nil {
		a.markActive(r, d)
	}
	return eventIDResult(id, err)
}

// markActive tells presence that the user did something on the device, as
// the spec asks for sending a message. A failure there does not fail the
// request.
func (a *API) markActive(r *http.Request, d *auth.Device) {
	if err := a.sync.PresenceActive(r.Context(), d.UserID, d.DeviceID); err != nil {
		a.log.WarnContext(r.Context(), "presence: marking user active failed", "user", d.UserID, "err", err)
	}
}

// redactEvent answers PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
func (a *API) redactEvent(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	id, err := a.rooms.Redact(r.Context(), roomserver.RedactRequest{
		RoomID: roomID, Sender: d.UserID, DeviceID: d.DeviceID, TxnID: v["txnId"], EventID: v["eventId"], Reason: body.Reason,
	})
	return eventIDResult(id, err)
}

// setState answers PUT /rooms/{roomId}/state/{eventType}[/{stateKey}].
func (a *API) setState(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	content, err := readContent(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	key := v["stateKey"]
	req := roomserver.SendRequest{
		RoomID: roomID, Sender: d.UserID, DeviceID: d.DeviceID, Type: v["eventType"], StateKey: &key, Content: content,
	}
	if res, delayed, err := a.maybeDelay(r, req); delayed { // MSC4140 (delayed.go)
		return res, err
	}
	id, err := a.rooms.Send(r.Context(), req)
	if err == nil && a.calls.Delayed != nil { // MSC4140: others' delayed state for it is void
		a.calls.Delayed.StateReplaced(r.Context(), roomID, req.Type, key, d.UserID)
	}
	return eventIDResult(id, err)
}

// getState answers GET /rooms/{roomId}/state.
func (a *API) getState(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	return a.rooms.State(r.Context(), d.UserID, roomID)
}

// getStateEvent answers GET /rooms/{roomId}/state/{eventType}[/{stateKey}]:
// the content, or the whole event with ?format=event.
func (a *API) getStateEvent(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	if f := r.URL.Query().Get("format"); f != "" && f != "content" && f != "event" {
		return nil, mxerr.InvalidParam("format must be content or event")
	}
	ev, err := a.rooms.StateEvent(r.Context(), d.UserID, roomID, v["eventType"], v["stateKey"])
	if err != nil {
		return nil, err
	}
	if r.URL.Query().Get("format") == "event" {
		return ev, nil
	}
	return ev.Content, nil
}

// getEvent answers GET /rooms/{roomId}/event/{eventId}.
func (a *API) getEvent(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	return a.rooms.Event(r.Context(), d.UserID, roomID, mux.Vars(r)["eventId"])
}

// getMembers answers GET /rooms/{roomId}/members.
func (a *API) getMembers(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	chunk, err := a.rooms.Members(r.Context(), d.UserID, roomID, q.Get("at"), q.Get("membership"), q.Get("not_membership"))
	if err != nil {
		return nil, err
	}
	if chunk == nil {
		chunk = []roomserver.ClientEvent{}
	}
	return map[string]any{"chunk": chunk}, nil
}

// getJoinedMembers answers GET /rooms/{roomId}/joined_members.
func (a *API) getJoinedMembers(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	joined, err := a.rooms.JoinedMembers(r.Context(), d.UserID, roomID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"joined": joined}, nil
}

// getJoinedRooms answers GET /joined_rooms.
func (a *API) getJoinedRooms(r *http.Request, d *auth.Device) (any, error) {
	rooms, err := a.rooms.JoinedRooms(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"joined_rooms": rooms}, nil
}

// maxMessagesLimit caps /messages pages.
const maxMessagesLimit = 1000

// getMessages answers GET /rooms/{roomId}/messages.
func (a *API) getMessages(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	req := roomserver.MessagesRequest{UserID: d.UserID, RoomID: roomID, From: q.Get("from"), To: q.Get("to"), Limit: 10}
	switch q.Get("dir") {
	case "b":
		req.Backward = true
	case "f":
	case "":
		return nil, mxerr.MissingParam("dir is required")
	default:
		return nil, mxerr.InvalidParam("dir must be b or f")
	}
	if req.Limit, err = intParam(q, "limit", 10, 0, maxMessagesLimit); err != nil {
		return nil, err
	}
	filter, match, err := eventFilterParam(q)
	if err != nil {
		return nil, err
	}
	if filter != nil {
		if filter.Limit != nil && *filter.Limit > 0 && q.Get("limit") == "" {
			req.Limit = min(*filter.Limit, maxMessagesLimit)
		}
		req.LazyLoadMembers, req.Match = filter.LazyLoadMembers, match
	}
	return a.rooms.Messages(r.Context(), req)
}

// eventIDResult is the {"event_id": …} answer of the endpoints that send
// an event.
func eventIDResult(id string, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": id}, nil
}
