package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// presenceRequest is the body of PUT /presence/{userId}/status. The fields
// are kept raw so that a value of the wrong type (null included) is a
// clear 400 M_BAD_JSON naming the field.
type presenceRequest struct {
	Presence  json.RawMessage `json:"presence"`
	StatusMsg json.RawMessage `json:"status_msg"`
}

// getPresence answers GET /presence/{userId}/status.
func (a *API) getPresence(r *http.Request, d *auth.Device) (any, error) {
	return a.sync.GetPresence(r.Context(), d.UserID, mux.Vars(r)["userId"])
}

// putPresence answers PUT /presence/{userId}/status: presence is required
// (online, unavailable or offline), status_msg is an optional string; a
// request without it clears the status message, as in Synapse. Unknown
// keys are ignored.
func (a *API) putPresence(r *http.Request, d *auth.Device) (any, error) {
	var body presenceRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.Presence == nil {
		return nil, mxerr.MissingParam("presence is required")
	}
	state, ok := presenceString(body.Presence)
	if !ok {
		return nil, mxerr.BadJSON("presence must be a string")
	}
	var msg string
	if body.StatusMsg != nil {
		if msg, ok = presenceString(body.StatusMsg); !ok {
			return nil, mxerr.BadJSON("status_msg must be a string")
		}
	}
	return emptyObject, a.sync.SetPresence(r.Context(), d.UserID, d.DeviceID, mux.Vars(r)["userId"], state, msg)
}

// presenceString decodes a raw JSON value that must be a string.
func presenceString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
