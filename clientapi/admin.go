package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// admin adapts an endpoint of the admin API: like authed, and the user must
// be a server admin (403 M_FORBIDDEN otherwise, as Synapse answers). On
// the admin socket the local operator is an admin without a token
// (adminsocket.go).
func (a *API) admin(h authedFunc) http.Handler {
	authed := a.authed(func(r *http.Request, d *auth.Device) (any, error) {
		ok, err := a.auth.IsAdmin(r.Context(), d.UserID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, mxerr.Forbidden("You are not a server admin")
		}
		return h(r, d)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := localOperator(r); ok {
			a.serveOperator(w, r, d, h)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// adminGetUser answers GET /_synapse/admin/v2/users/{userId}.
func (a *API) adminGetUser(r *http.Request, _ *auth.Device) (any, error) {
	return a.adminSvc.User(r.Context(), mux.Vars(r)["userId"])
}
