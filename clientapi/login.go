package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// getLoginFlows answers GET /login.
func (a *API) getLoginFlows(r *http.Request) (any, error) {
	flows := []map[string]any{}
	if a.cfg.PasswordLogin.Enabled {
		flows = append(flows, map[string]any{"type": auth.StagePassword})
	}
	flows = append(flows, a.ssoLoginFlows()...) // m.login.sso and m.login.token (sso.go)
	a.oauthAwareFlows(flows)                    // oauth_aware_preferred on m.login.sso (oauth.go)
	return map[string]any{"flows": flows}, nil
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	Type        string          `json:"type"`
	Identifier  json.RawMessage `json:"identifier"`
	User        string          `json:"user"`    // deprecated
	Medium      string          `json:"medium"`  // deprecated third-party login
	Address     string          `json:"address"` // deprecated third-party login
	Password    *string         `json:"password"`
	DeviceID    string          `json:"device_id"`
	DisplayName string          `json:"initial_device_display_name"`
	Refresh     bool            `json:"refresh_token"`
	Token       string          `json:"token"` // m.login.token
}

// tokensResponse is the answer to a login, registration or refresh.
type tokensResponse struct {
	UserID       string         `json:"user_id,omitempty"`
	AccessToken  string         `json:"access_token,omitempty"`
	DeviceID     string         `json:"device_id,omitempty"`
	HomeServer   string         `json:"home_server,omitempty"`
	WellKnown    map[string]any `json:"well_known,omitempty"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	ExpiresInMS  int64          `json:"expires_in_ms,omitempty"`
}

func (a *API) tokensResponse(t *auth.Tokens) tokensResponse {
	return tokensResponse{
		UserID:       t.UserID,
		AccessToken:  t.AccessToken,
		DeviceID:     t.DeviceID,
		HomeServer:   a.cfg.ServerName,
		RefreshToken: t.RefreshToken,
		ExpiresInMS:  t.ExpiresIn.Milliseconds(),
	}
}

// login answers POST /login.
func (a *API) login(r *http.Request) (any, error) {
	var req loginRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if req.Type == "" {
		return nil, mxerr.MissingParam("type is required")
	}
	if req.Type == auth.StageToken {
		return a.loginWithToken(r, req) // sso.go
	}
	if req.Type != auth.StagePassword {
		return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unsupported login type %q", req.Type)
	}
	if !a.cfg.PasswordLogin.Enabled {
		// A known type this server has switched off: sign-in is by SSO.
		return nil, mxerr.Forbidden("Password login is disabled on this server; sign in with single sign-on")
	}
	if req.Password == nil {
		return nil, mxerr.MissingParam("password is required")
	}
	user := req.User
	thirdParty := req.Medium != "" || req.Address != ""
	if len(req.Identifier) > 0 && string(req.Identifier) != "null" {
		var id auth.Identifier
		if err := json.Unmarshal(req.Identifier, &id); err != nil {
			return nil, mxerr.BadJSON("identifier must be an object with string fields")
		}
		switch id.Type {
		case "m.id.user":
			user, thirdParty = id.User, false
		case "m.id.thirdparty", "m.id.phone":
			thirdParty = true
		default:
			return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Unsupported identifier type %q", id.Type)
		}
	}
	if thirdParty {
		// No account has a third-party identifier (e-mail, phone) here,
		// and an unknown one is a failed login (403).
		return nil, mxerr.Forbidden("Invalid username or password")
	}
	t, err := a.auth.LoginPassword(r.Context(), auth.LoginRequest{
		User: user, Password: *req.Password, DeviceID: req.DeviceID, DisplayName: req.DisplayName, Refresh: req.Refresh,
	})
	if err != nil {
		return nil, err
	}
	resp := a.tokensResponse(t)
	resp.WellKnown = map[string]any{"m.homeserver": map[string]string{"base_url": a.cfg.PublicBaseURL}}
	return resp, nil
}

// refresh answers POST /refresh.
func (a *API) refresh(r *http.Request) (any, error) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	t, err := a.auth.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return nil, err
	}
	return struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token,omitempty"`
		ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
	}{t.AccessToken, t.RefreshToken, t.ExpiresIn.Milliseconds()}, nil
}

// logout answers POST /logout: the token and its device are removed.
func (a *API) logout(r *http.Request, d *auth.Device) (any, error) {
	if err := a.auth.Logout(r.Context(), d); err != nil {
		return nil, err
	}
	a.sliding.DropDevice(d.UserID, d.DeviceID) // its sliding-sync connections
	return nil, nil
}

// logoutAll answers POST /logout/all.
func (a *API) logoutAll(r *http.Request, d *auth.Device) (any, error) {
	return nil, a.auth.LogoutAll(r.Context(), d.UserID)
}

// whoami answers GET /account/whoami.
func (a *API) whoami(r *http.Request, d *auth.Device) (any, error) {
	return map[string]any{"user_id": d.UserID, "device_id": d.DeviceID, "is_guest": false}, nil
}
