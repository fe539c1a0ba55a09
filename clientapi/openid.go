package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// requestOpenIDToken answers POST /user/{userId}/openid/request_token: a
// token a third party (Element Call's LiveKit JWT service) can exchange for
// the user's ID at /_matrix/federation/v1/openid/userinfo. Users get
// tokens only for themselves.
func (a *API) requestOpenIDToken(r *http.Request, d *auth.Device) (any, error) {
	if mux.Vars(r)["userId"] != d.UserID {
		return nil, mxerr.Forbidden("Cannot request an OpenID token for another user")
	}
	var body map[string]any
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	if a.calls.OpenID == nil {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "OpenID tokens are not available")
	}
	tok, err := a.calls.OpenID.Issue(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"access_token":       tok.AccessToken,
		"token_type":         "Bearer",
		"matrix_server_name": a.cfg.ServerName,
		"expires_in":         int64(tok.ExpiresIn.Seconds()),
	}, nil
}

// openIDUserInfo answers GET /_matrix/federation/v1/openid/userinfo, the
// one federation endpoint aula serves: it turns an OpenID token into the
// user ID it was issued for, or 401 M_UNKNOWN_TOKEN.
func (a *API) openIDUserInfo(r *http.Request) (any, error) {
	if a.calls.OpenID == nil {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "Unrecognized request")
	}
	token := r.URL.Query().Get("access_token")
	if token == "" {
		return nil, mxerr.New(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access_token")
	}
	userID, err := a.calls.OpenID.UserID(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if userID == "" {
		return nil, mxerr.New(http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Access token unknown or expired")
	}
	return map[string]string{"sub": userID}, nil
}
