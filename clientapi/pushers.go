package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/push"
)

// getPushers answers GET /pushers.
func (a *API) getPushers(r *http.Request, d *auth.Device) (any, error) {
	ps, err := a.push.Pushers(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"pushers": ps}, nil
}

// setPusher answers POST /pushers/set: create, replace, or (kind null)
// delete one of the user's pushers, tied to the calling device.
func (a *API) setPusher(r *http.Request, d *auth.Device) (any, error) {
	var req push.SetPusherRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if err := a.push.SetPusher(r.Context(), d.UserID, d.DeviceID, req); err != nil {
		return nil, err
	}
	return emptyObject, nil
}
