package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// The public room directory. aula has closed rooms only: nothing is ever
// published, so the directory is always empty, and clients' "explore"
// dialogs (which call /publicRooms) still work.

// publicRoomsResponse is the answer of /publicRooms.
type publicRoomsResponse struct {
	Chunk                  []struct{} `json:"chunk"`
	TotalRoomCountEstimate int        `json:"total_room_count_estimate"`
}

// getPublicRooms answers GET /publicRooms (no token needed, as the spec
// says): always empty.
func (a *API) getPublicRooms(r *http.Request) (any, error) {
	if q := r.URL.Query(); q.Get("server") != "" && q.Get("server") != a.cfg.ServerName {
		return nil, mxerr.Forbidden("Federation is disabled on this server")
	}
	return publicRoomsResponse{Chunk: []struct{}{}}, nil
}

// searchPublicRooms answers POST /publicRooms (with a token): always
// empty. The body must still be a JSON object; its filter matches nothing.
func (a *API) searchPublicRooms(r *http.Request, _ *auth.Device) (any, error) {
	var body map[string]json.RawMessage
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	return a.getPublicRooms(r)
}

// getRoomVisibility answers GET /directory/list/room/{roomId}: every room
// is private here; unknown rooms are 404.
func (a *API) getRoomVisibility(r *http.Request) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	if err := a.rooms.CheckRoom(r.Context(), roomID); err != nil {
		return nil, err
	}
	return map[string]string{"visibility": "private"}, nil
}

// setRoomVisibility answers PUT /directory/list/room/{roomId}: "private"
// is what every room already is; "public" is refused.
func (a *API) setRoomVisibility(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	if err := a.rooms.CheckRoom(r.Context(), roomID); err != nil {
		return nil, err
	}
	switch v := body.Visibility; {
	case v == nil || *v == "private":
		return emptyObject, nil
	case *v == "public":
		return nil, mxerr.Forbidden("Public rooms are disabled on this server: rooms cannot be published in the room directory")
	default:
		return nil, mxerr.InvalidParam("visibility must be public or private")
	}
}
