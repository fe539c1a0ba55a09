package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/syncapi"
)

// createRoomRequest is the body of POST /createRoom.
type createRoomRequest struct {
	Visibility      string                     `json:"visibility"`
	RoomAliasName   string                     `json:"room_alias_name"`
	Name            *string                    `json:"name"`
	Topic           *string                    `json:"topic"`
	Invite          []string                   `json:"invite"`
	Invite3PID      []json.RawMessage          `json:"invite_3pid"`
	RoomVersion     string                     `json:"room_version"`
	CreationContent map[string]json.RawMessage `json:"creation_content"`
	InitialState    []roomserver.StateEvent    `json:"initial_state"`
	Preset          string                     `json:"preset"`
	IsDirect        bool                       `json:"is_direct"`
	PowerLevels     map[string]json.RawMessage `json:"power_level_content_override"`
}

// createRoom answers POST /createRoom.
func (a *API) createRoom(r *http.Request, d *auth.Device) (any, error) {
	var req createRoomRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	switch req.Visibility {
	case "", "private", "public":
	default:
		return nil, mxerr.BadJSON("visibility must be public or private")
	}
	switch req.Preset {
	case "", roomserver.PresetPrivateChat, roomserver.PresetTrustedPrivateChat, roomserver.PresetPublicChat:
	default:
		return nil, mxerr.BadJSON("Unknown preset %q", req.Preset)
	}
	if len(req.Invite3PID) > 0 {
		return nil, mxerr.Forbidden("Third-party invites are not supported on this server")
	}
	for _, st := range req.InitialState {
		if st.Type == "" || len(st.Content) == 0 || st.Content[0] != '{' {
			return nil, mxerr.BadJSON("initial_state entries need a type and an object content")
		}
	}
	roomID, err := a.rooms.CreateRoom(r.Context(), roomserver.CreateRoomRequest{
		Creator: d.UserID, Visibility: req.Visibility, Preset: req.Preset, RoomAliasName: req.RoomAliasName,
		Name: req.Name, Topic: req.Topic, Invite: req.Invite, RoomVersion: req.RoomVersion,
		CreationContent: req.CreationContent, InitialState: req.InitialState, PowerLevels: req.PowerLevels,
		IsDirect: req.IsDirect,
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"room_id": roomID}, nil
}

// roomIDVar returns the {roomId} path variable, checked.
func roomIDVar(r *http.Request) (string, error) {
	id := mux.Vars(r)["roomId"]
	if !ids.ValidRoomID(id) {
		return "", mxerr.InvalidParam("%q is not a room ID", id)
	}
	return id, nil
}

// membershipRequest is the body of the membership endpoints.
type membershipRequest struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason"`
}

func decodeMembership(r *http.Request, needUser bool) (membershipRequest, string, error) {
	var req membershipRequest
	if err := decodeJSON(r, &req, !needUser); err != nil {
		return req, "", err
	}
	if needUser && !ids.ValidUserID(req.UserID) {
		return req, "", mxerr.BadJSON("user_id must be a user ID")
	}
	roomID, err := roomIDVar(r)
	return req, roomID, err
}

// joinRoom answers POST /join/{roomIdOrAlias} and POST /rooms/{roomId}/join.
func (a *API) joinRoom(r *http.Request, d *auth.Device) (any, error) {
	var req membershipRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	target := mux.Vars(r)["roomIdOrAlias"]
	if target == "" {
		target = mux.Vars(r)["roomId"]
	}
	if !ids.ValidRoomID(target) && !validAlias(target) {
		return nil, mxerr.InvalidParam("%q is not a room ID or alias", target)
	}
	roomID, err := a.rooms.Join(r.Context(), d.UserID, target, req.Reason)
	if err != nil {
		return nil, err
	}
	return map[string]string{"room_id": roomID}, nil
}

// validAlias checks the "#name:server" shape of a room alias.
func validAlias(s string) bool {
	if len(s) < 4 || len(s) > 255 || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] == ':' {
			return i > 1 && ids.ValidServerName(s[i+1:])
		}
	}
	return false
}

// leaveRoom answers POST /rooms/{roomId}/leave.
func (a *API) leaveRoom(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, false)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Leave(r.Context(), d.UserID, roomID, req.Reason)
}

// forgetRoom answers POST /rooms/{roomId}/forget.
func (a *API) forgetRoom(r *http.Request, d *auth.Device) (any, error) {
	if _, _, err := decodeMembership(r, false); err != nil {
		return nil, err
	}
	roomID, _ := roomIDVar(r)
	return nil, a.rooms.Forget(r.Context(), d.UserID, roomID)
}

// inviteUser answers POST /rooms/{roomId}/invite.
func (a *API) inviteUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Invite(r.Context(), d.UserID, roomID, req.UserID, req.Reason)
}

// kickUser answers POST /rooms/{roomId}/kick.
func (a *API) kickUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Kick(r.Context(), d.UserID, roomID, req.UserID, req.Reason)
}

// banUser answers POST /rooms/{roomId}/ban.
func (a *API) banUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Ban(r.Context(), d.UserID, roomID, req.UserID, req.Reason)
}

// unbanUser answers POST /rooms/{roomId}/unban.
func (a *API) unbanUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Unban(r.Context(), d.UserID, roomID, req.UserID, req.Reason)
}

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
	id, err := a.rooms.Send(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": id}, nil
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
	content := map[string]any{}
	if body.Reason != nil {
		content["reason"] = *body.Reason
	}
	raw, _ := json.Marshal(content)
	v := mux.Vars(r)
	id, err := a.rooms.Send(r.Context(), roomserver.SendRequest{
		RoomID: roomID, Sender: d.UserID, DeviceID: d.DeviceID, TxnID: "redact:" + v["txnId"],
		Type: "m.room.redaction", Content: raw, Redacts: v["eventId"],
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": id}, nil
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
	id, err := a.rooms.Send(r.Context(), roomserver.SendRequest{
		RoomID: roomID, Sender: d.UserID, DeviceID: d.DeviceID, Type: v["eventType"], StateKey: &key, Content: content,
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": id}, nil
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
	default:
		return nil, mxerr.InvalidParam("dir must be b or f")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, mxerr.InvalidParam("limit must be a non-negative integer")
		}
		req.Limit = min(n, maxMessagesLimit)
	}
	if f := q.Get("filter"); f != "" {
		filter, err := syncapi.ParseRoomEventFilter([]byte(f))
		if err != nil {
			return nil, err
		}
		if filter.Limit != nil && *filter.Limit > 0 && q.Get("limit") == "" {
			req.Limit = min(*filter.Limit, maxMessagesLimit)
		}
		req.LazyLoadMembers = filter.LazyLoadMembers
		req.Match = func(ev roomserver.ClientEvent) bool {
			return filter.AllowsEvent(ev.RoomID, ev.Type, ev.Sender, hasURL(ev.Content))
		}
	}
	return a.rooms.Messages(r.Context(), req)
}

// hasURL reports whether an event content has a "url" key (contains_url).
func hasURL(content json.RawMessage) bool {
	var c struct {
		URL *string `json:"url"`
	}
	return json.Unmarshal(content, &c) == nil && c.URL != nil
}
