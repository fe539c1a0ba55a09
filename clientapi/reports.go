package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
)

// reportEvent answers POST /rooms/{roomId}/report/{eventId}.
func (a *API) reportEvent(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var req struct {
		Reason string `json:"reason"`
		Score  *int64 `json:"score"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	return nil, a.rooms.ReportEvent(r.Context(), d.UserID, roomID, mux.Vars(r)["eventId"], req.Reason, req.Score)
}

// reportRoom answers POST /rooms/{roomId}/report.
func (a *API) reportRoom(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	return nil, a.rooms.ReportRoom(r.Context(), d.UserID, roomID, req.Reason)
}
