package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
)

// changePassword answers POST /account/password.
func (a *API) changePassword(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		NewPassword   string          `json:"new_password"`
		LogoutDevices *bool           `json:"logout_devices"`
		Auth          json.RawMessage `json:"auth"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	return nil, a.auth.ChangePassword(r.Context(), d, req.NewPassword, logout, req.Auth)
}

// deactivate answers POST /account/deactivate.
func (a *API) deactivate(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		Auth  json.RawMessage `json:"auth"`
		Erase bool            `json:"erase"` // also remove the content of every event sent
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	if err := a.auth.Deactivate(r.Context(), d, req.Auth); err != nil {
		return nil, err
	}
	// Leave every room, and with erase remove the content of every event
	// the user sent (admin/erase.go, docs/privacy.md).
	if err := a.adminOps.AfterDeactivation(r.Context(), d.UserID, req.Erase); err != nil {
		return nil, err
	}
	// Accounts have no third-party identifiers here, so there is nothing to
	// unbind, and the spec says the result must then be "success".
	return map[string]string{"id_server_unbind_result": "success"}, nil
}

// getThreePIDs answers GET /account/3pid: the e-mail addresses single
// sign-on recorded from the provider's claims (users cannot add
// their own).
func (a *API) getThreePIDs(r *http.Request, d *auth.Device) (any, error) {
	return a.ssoThreePIDs(r.Context(), d.UserID) // sso.go
}
