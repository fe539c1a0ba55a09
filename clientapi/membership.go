package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// createRoomRequest is the body of POST /createRoom.
type createRoomRequest struct {
	Visibility      string                     `json:"visibility"`
	RoomAliasName   *string                    `json:"room_alias_name"`
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
	var aliasName string
	if req.RoomAliasName != nil {
		if *req.RoomAliasName == "" {
			return nil, mxerr.InvalidParam("room_alias_name may not be empty")
		}
		aliasName = *req.RoomAliasName
	}
	roomID, err := a.rooms.CreateRoom(r.Context(), roomserver.CreateRoomRequest{
		Creator: d.UserID, Visibility: req.Visibility, Preset: req.Preset, RoomAliasName: aliasName,
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
	UserID *string `json:"user_id"`
	Reason string  `json:"reason"`
}

// decodeMembership checks the {roomId} path variable and reads the body; the
// endpoints that act on another user (needUser) require user_id.
func decodeMembership(r *http.Request, needUser bool) (membershipRequest, string, error) {
	var req membershipRequest
	roomID, err := roomIDVar(r)
	if err != nil {
		return req, "", err
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return req, "", err
	}
	if needUser {
		if req.UserID == nil {
			return req, "", mxerr.MissingParam("user_id is required")
		}
		if !ids.ValidUserID(*req.UserID) {
			return req, "", mxerr.InvalidParam("%q is not a user ID", *req.UserID)
		}
	}
	return req, roomID, nil
}

// joinRoom answers POST /join/{roomIdOrAlias}, whose body's other keys go
// into the member event (as in Synapse), and POST /rooms/{roomId}/join,
// which takes only a reason.
func (a *API) joinRoom(r *http.Request, d *auth.Device) (any, error) {
	var (
		req    membershipRequest
		target string
		extra  map[string]json.RawMessage
	)
	if t, ok := mux.Vars(r)["roomIdOrAlias"]; ok {
		if !ids.ValidRoomID(t) && !validAlias(t) {
			return nil, mxerr.InvalidParam("%q is not a room ID or alias", t)
		}
		body, err := readJSON(r)
		if err != nil {
			return nil, err
		}
		if err := unmarshalObject(body, &req, true); err != nil {
			return nil, err
		}
		if err := unmarshalObject(body, &extra, true); err != nil {
			return nil, err
		}
		target = t
	} else {
		id, err := roomIDVar(r)
		if err != nil {
			return nil, err
		}
		if err := decodeJSON(r, &req, true); err != nil {
			return nil, err
		}
		target = id
	}
	roomID, err := a.rooms.Join(r.Context(), d.UserID, target, req.Reason, extra)
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

// knockRoom answers POST /knock/{roomIdOrAlias}.
func (a *API) knockRoom(r *http.Request, d *auth.Device) (any, error) {
	t := mux.Vars(r)["roomIdOrAlias"]
	if !ids.ValidRoomID(t) && !validAlias(t) {
		return nil, mxerr.InvalidParam("%q is not a room ID or alias", t)
	}
	var req membershipRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	roomID, err := a.rooms.Knock(r.Context(), d.UserID, t, req.Reason)
	if err != nil {
		return nil, err
	}
	return map[string]string{"room_id": roomID}, nil
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
	_, roomID, err := decodeMembership(r, false)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Forget(r.Context(), d.UserID, roomID)
}

// inviteUser answers POST /rooms/{roomId}/invite.
func (a *API) inviteUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Invite(r.Context(), d.UserID, roomID, *req.UserID, req.Reason)
}

// kickUser answers POST /rooms/{roomId}/kick.
func (a *API) kickUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Kick(r.Context(), d.UserID, roomID, *req.UserID, req.Reason)
}

// banUser answers POST /rooms/{roomId}/ban.
func (a *API) banUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Ban(r.Context(), d.UserID, roomID, *req.UserID, req.Reason)
}

// unbanUser answers POST /rooms/{roomId}/unban.
func (a *API) unbanUser(r *http.Request, d *auth.Device) (any, error) {
	req, roomID, err := decodeMembership(r, true)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.Unban(r.Context(), d.UserID, roomID, *req.UserID, req.Reason)
}
