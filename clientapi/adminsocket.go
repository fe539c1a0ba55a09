package clientapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// The admin socket (internal/app/adminsocket.go) serves the admin API to
// local commands over a Unix socket only the server's user can open. Being
// on the socket is the authentication: its requests carry no access token
// and act as the local operator, a built-in identity that a.admin accepts
// as an admin. Only AdminSocketHandler puts the operator into a request's
// context, under a key private to this package, so nothing arriving on the
// TCP listener (ServeHTTP) can become the operator.

// OperatorUserHeader names the local user the operator acts as, e.g. the
// creator of a group (POST /_aula/admin/v1/groups). Without it the
// operator is the server notices account. Only the admin socket reads it.
const OperatorUserHeader = "Aula-Operator-User"

// OperatorDeviceID is the device ID of the local operator's requests.
const OperatorDeviceID = "AULA_ADMIN_SOCKET"

// operatorKey is the context key of the local operator's device.
type operatorKey struct{}

// AdminSocketHandler serves the admin routes (/_synapse/admin/...,
// /_aula/admin/...) of the same route table as ServeHTTP, every request
// authenticated as the local operator. Anything else is 404 M_UNRECOGNIZED.
// Serve it only on the admin socket.
func (a *API) AdminSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAdminPath(r.URL.Path) || !isAdminPath(r.URL.EscapedPath()) {
			writeJSON(w, http.StatusNotFound, mxerr.Unrecognized(http.StatusNotFound, "Only the admin API is served on the admin socket").Body())
			return
		}
		userID := a.operatorUserID()
		if as := r.Header.Get(OperatorUserHeader); as != "" {
			if !strings.HasPrefix(as, "@") || !strings.HasSuffix(as, ":"+a.cfg.ServerName) {
				writeJSON(w, http.StatusBadRequest, mxerr.InvalidParam("%s must be a user ID of this server", OperatorUserHeader).Body())
				return
			}
			userID = as
		}
		d := &auth.Device{UserID: userID, DeviceID: OperatorDeviceID}
		a.router.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), operatorKey{}, d)))
	})
}

// isAdminPath reports whether path is under the admin API's prefixes.
func isAdminPath(path string) bool {
	return strings.HasPrefix(path, "/_synapse/admin/") || strings.HasPrefix(path, "/_aula/admin/")
}

// operatorUserID is the local operator's default identity: the server
// notices account, which aula creates at start-up and which cannot log in.
func (a *API) operatorUserID() string {
	if a.consent != nil {
		return a.consent.SystemUserID()
	}
	return "@" + a.cfg.ServerNotices.Localpart + ":" + a.cfg.ServerName
}

// localOperator returns the local operator's device when r came through
// AdminSocketHandler.
func localOperator(r *http.Request) (*auth.Device, bool) {
	d, ok := r.Context().Value(operatorKey{}).(*auth.Device)
	return d, ok && d != nil
}

// serveOperator runs the admin endpoint h for the local operator d: like
// a.admin after authentication, without token or admin check.
func (a *API) serveOperator(w http.ResponseWriter, r *http.Request, d *auth.Device, h authedFunc) {
	r, err := decodeVars(r)
	if err != nil {
		a.writeResult(w, r, nil, err)
		return
	}
	setRequester(r, d)
	res, err := h(r, d)
	a.writeResult(w, r, res, err)
}
