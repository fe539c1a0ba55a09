package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/keys"
)

// Server-side key backups: /room_keys/version[/{backupVersion}] and
// /room_keys/keys[/{roomId}[/{sessionId}]]?version=. The path variable is
// backupVersion because the route prefix already has a "version" (v3/r0).

// createRoomKeysVersion answers POST /room_keys/version.
func (a *API) createRoomKeysVersion(r *http.Request, d *auth.Device) (any, error) {
	var body keys.BackupVersionBody
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	v, err := a.backup.CreateVersion(r.Context(), d.UserID, body)
	if err != nil {
		return nil, err
	}
	return map[string]string{"version": v}, nil
}

// getRoomKeysVersion answers GET /room_keys/version (the current version)
// and GET /room_keys/version/{backupVersion}.
func (a *API) getRoomKeysVersion(r *http.Request, d *auth.Device) (any, error) {
	return a.backup.Version(r.Context(), d.UserID, mux.Vars(r)["backupVersion"])
}

// updateRoomKeysVersion answers PUT /room_keys/version/{backupVersion}.
func (a *API) updateRoomKeysVersion(r *http.Request, d *auth.Device) (any, error) {
	var body keys.BackupVersionBody
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if err := a.backup.UpdateVersion(r.Context(), d.UserID, mux.Vars(r)["backupVersion"], body); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// deleteRoomKeysVersion answers DELETE /room_keys/version/{backupVersion}.
func (a *API) deleteRoomKeysVersion(r *http.Request, d *auth.Device) (any, error) {
	if err := a.backup.DeleteVersion(r.Context(), d.UserID, mux.Vars(r)["backupVersion"]); err != nil {
		return nil, err
	}
	return emptyObject, nil
}

// backupSessions is a room's part of an upload: {"sessions": {...}}, each
// session's KeyBackupData left for the service to check.
type backupSessions struct {
	Sessions *map[string]json.RawMessage `json:"sessions"`
}

// putRoomKeys answers PUT /room_keys/keys[/{roomId}[/{sessionId}]]: the
// body is {"rooms": …}, a room's {"sessions": …} or one session's key
// data, by how much of the path is given.
func (a *API) putRoomKeys(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	rooms := map[string]map[string]json.RawMessage{}
	switch {
	case v["sessionId"] != "":
		var key json.RawMessage
		if err := decodeJSON(r, &key, false); err != nil {
			return nil, err
		}
		rooms[v["roomId"]] = map[string]json.RawMessage{v["sessionId"]: key}
	case v["roomId"] != "":
		var body backupSessions
		if err := decodeJSON(r, &body, false); err != nil {
			return nil, err
		}
		if body.Sessions == nil {
			return nil, mxerr.MissingParam("sessions is required")
		}
		rooms[v["roomId"]] = *body.Sessions
	default:
		var body struct {
			Rooms *map[string]backupSessions `json:"rooms"`
		}
		if err := decodeJSON(r, &body, false); err != nil {
			return nil, err
		}
		if body.Rooms == nil {
			return nil, mxerr.MissingParam("rooms is required")
		}
		for roomID, room := range *body.Rooms {
			if room.Sessions == nil {
				return nil, mxerr.MissingParam("sessions is required (room %s)", roomID)
			}
			rooms[roomID] = *room.Sessions
		}
	}
	return a.backup.UploadKeys(r.Context(), d.UserID, r.URL.Query().Get("version"), rooms)
}

// getRoomKeys answers GET /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) getRoomKeys(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	version := r.URL.Query().Get("version")
	switch {
	case v["sessionId"] != "":
		return a.backup.SessionKey(r.Context(), d.UserID, version, v["roomId"], v["sessionId"])
	case v["roomId"] != "":
		return a.backup.RoomKeys(r.Context(), d.UserID, version, v["roomId"])
	}
	return a.backup.AllKeys(r.Context(), d.UserID, version)
}

// deleteRoomKeys answers DELETE /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) deleteRoomKeys(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return a.backup.DeleteKeys(r.Context(), d.UserID, r.URL.Query().Get("version"), v["roomId"], v["sessionId"])
}
