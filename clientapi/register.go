package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// register answers POST /register.
func (a *API) register(r *http.Request) (any, error) {
	if kind := r.URL.Query().Get("kind"); kind != "" && kind != "user" {
		if kind == "guest" {
			return nil, mxerr.Forbidden("Guest access is disabled on this server")
		}
		return nil, mxerr.InvalidParam("Unknown kind %q", kind)
	}
	var req auth.RegisterRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	req.ClientIP = a.clientAddr(r)
	t, err := a.auth.Register(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return a.tokensResponse(t), nil
}

// registerAvailable answers GET /register/available.
func (a *API) registerAvailable(r *http.Request) (any, error) {
	if !a.cfg.Registration.Enabled {
		return nil, mxerr.Forbidden("Registration is disabled on this server")
	}
	username := r.URL.Query().Get("username")
	if username == "" {
		return nil, mxerr.MissingParam("username is required")
	}
	if err := a.auth.Available(r.Context(), username); err != nil {
		return nil, err
	}
	return map[string]bool{"available": true}, nil
}

// registrationTokenValidity answers GET
// /v1/register/m.login.registration_token/validity.
func (a *API) registrationTokenValidity(r *http.Request) (any, error) {
	if !a.cfg.Registration.Enabled {
		return nil, mxerr.Forbidden("Registration is disabled on this server")
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		return nil, mxerr.MissingParam("token is required")
	}
	valid, err := a.auth.RegistrationTokenValid(token, a.clientAddr(r))
	if err != nil {
		return nil, err
	}
	return map[string]bool{"valid": valid}, nil
}

// sharedSecretNonce answers GET /_synapse/admin/v1/register.
func (a *API) sharedSecretNonce(r *http.Request) (any, error) {
	nonce, err := a.auth.SharedSecretNonce()
	if err != nil {
		return nil, err
	}
	return map[string]string{"nonce": nonce}, nil
}

// sharedSecretRegister answers POST /_synapse/admin/v1/register.
func (a *API) sharedSecretRegister(r *http.Request) (any, error) {
	var req auth.SharedSecretRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	t, err := a.auth.RegisterWithSharedSecret(r.Context(), req)
	if err != nil {
		return nil, err
	}
	return a.tokensResponse(t), nil
}
