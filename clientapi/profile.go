package clientapi

import (
	"encoding/json"
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
	name, err := profileField(r, "displayname")
	if err != nil {
		return nil, err
	}
	if err := a.account.SetDisplayName(r.Context(), d.UserID, mux.Vars(r)["userId"], name); err != nil {
		return nil, err
	}
	return nil, a.rooms.UpdateProfile(r.Context(), d.UserID)
}

// setAvatarURL answers PUT /profile/{userId}/avatar_url.
func (a *API) setAvatarURL(r *http.Request, d *auth.Device) (any, error) {
	url, err := profileField(r, "avatar_url")
	if err != nil {
		return nil, err
	}
	if err := a.account.SetAvatarURL(r.Context(), d.UserID, mux.Vars(r)["userId"], url); err != nil {
		return nil, err
	}
	return nil, a.rooms.UpdateProfile(r.Context(), d.UserID)
}

// profileField reads the string field key from a profile PUT body. A missing
// key is 400 M_MISSING_PARAM; null or any other non-string is 400 M_BAD_JSON
// (spec v1.16: servers may reject null, and "" clears the field instead).
func profileField(r *http.Request, key string) (string, error) {
	var req map[string]json.RawMessage
	if err := decodeJSON(r, &req, false); err != nil {
		return "", err
	}
	raw, ok := req[key]
	if !ok {
		return "", mxerr.MissingParam("%s is required", key)
	}
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", mxerr.BadJSON("%s must be a string", key)
	}
	return v, nil
}
