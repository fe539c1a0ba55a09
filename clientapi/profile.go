package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// getProfile answers GET /profile/{userId}.
func (a *API) getProfile(r *http.Request, d *auth.Device) (any, error) {
	return a.account.Profile(r.Context(), mux.Vars(r)["userId"])
}

// getDisplayName answers GET /profile/{userId}/displayname.
func (a *API) getDisplayName(r *http.Request, d *auth.Device) (any, error) {
	p, err := a.account.Profile(r.Context(), mux.Vars(r)["userId"])
	if err != nil {
		return nil, err
	}
	if p.DisplayName == "" {
		return nil, mxerr.NotFound("The user has no display name")
	}
	return map[string]string{"displayname": p.DisplayName}, nil
}

// getAvatarURL answers GET /profile/{userId}/avatar_url.
func (a *API) getAvatarURL(r *http.Request, d *auth.Device) (any, error) {
	p, err := a.account.Profile(r.Context(), mux.Vars(r)["userId"])
	if err != nil {
		return nil, err
	}
	if p.AvatarURL == "" {
		return nil, mxerr.NotFound("The user has no avatar")
	}
	return map[string]string{"avatar_url": p.AvatarURL}, nil
}

// setDisplayName answers PUT /profile/{userId}/displayname.
func (a *API) setDisplayName(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		DisplayName *string `json:"displayname"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if req.DisplayName == nil {
		return nil, mxerr.MissingParam("displayname is required")
	}
	return nil, a.account.SetDisplayName(r.Context(), d.UserID, mux.Vars(r)["userId"], *req.DisplayName)
}

// setAvatarURL answers PUT /profile/{userId}/avatar_url.
func (a *API) setAvatarURL(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		AvatarURL *string `json:"avatar_url"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if req.AvatarURL == nil {
		return nil, mxerr.MissingParam("avatar_url is required")
	}
	return nil, a.account.SetAvatarURL(r.Context(), d.UserID, mux.Vars(r)["userId"], *req.AvatarURL)
}
