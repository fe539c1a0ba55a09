package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
)

// getRoomAlias answers GET /directory/room/{roomAlias}.
func (a *API) getRoomAlias(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := a.rooms.LookupAlias(r.Context(), mux.Vars(r)["roomAlias"])
	if err != nil {
		return nil, err
	}
	return map[string]any{"room_id": roomID, "servers": []string{a.cfg.ServerName}}, nil
}

// putRoomAlias answers PUT /directory/room/{roomAlias}.
func (a *API) putRoomAlias(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		RoomID string `json:"room_id"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if !ids.ValidRoomID(req.RoomID) {
		return nil, mxerr.BadJSON("room_id must be a room ID")
	}
	return nil, a.rooms.PutAlias(r.Context(), d.UserID, mux.Vars(r)["roomAlias"], req.RoomID)
}

// deleteRoomAlias answers DELETE /directory/room/{roomAlias}.
func (a *API) deleteRoomAlias(r *http.Request, d *auth.Device) (any, error) {
	admin, err := a.auth.IsAdmin(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return nil, a.rooms.DeleteAlias(r.Context(), d.UserID, admin, mux.Vars(r)["roomAlias"])
}

// getRoomAliases answers GET /rooms/{roomId}/aliases.
func (a *API) getRoomAliases(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	aliases, err := a.rooms.Aliases(r.Context(), d.UserID, roomID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"aliases": aliases}, nil
}
