package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// upgradeRoomRequest is the body of POST /rooms/{roomId}/upgrade.
type upgradeRoomRequest struct {
	NewVersion *string `json:"new_version"`
	// AdditionalCreators is checked by the room server, and only for
	// versions that have additional creators: for others the spec says
	// it is ignored.
	AdditionalCreators json.RawMessage `json:"additional_creators"`
}

// upgradeRoom answers POST /rooms/{roomId}/upgrade.
func (a *API) upgradeRoom(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var body upgradeRoomRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.NewVersion == nil {
		return nil, mxerr.MissingParam("new_version is required")
	}
	id, err := a.rooms.UpgradeRoom(r.Context(), roomserver.UpgradeRequest{
		RoomID: roomID, UserID: d.UserID, NewVersion: *body.NewVersion, AdditionalCreators: body.AdditionalCreators,
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"replacement_room": id}, nil
}
