package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// admin adapts an endpoint of the admin API: like authed, and the user must
// be a server admin (403 M_FORBIDDEN otherwise, as Synapse answers).
func (a *API) admin(h authedFunc) http.Handler {
	return a.authed(func(r *http.Request, d *auth.Device) (any, error) {
		ok, err := a.auth.IsAdmin(r.Context(), d.UserID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, mxerr.Forbidden("You are not a server admin")
		}
		return h(r, d)
	})
}

// adminGetUser answers GET /_synapse/admin/v2/users/{userId}.
func (a *API) adminGetUser(r *http.Request, _ *auth.Device) (any, error) {
	return a.adminSvc.User(r.Context(), mux.Vars(r)["userId"])
}
