package clientapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// adminDeactivate answers POST /_synapse/admin/v1/deactivate/{userId}
// with an optional body {"erase": true}, as Synapse does: the user leaves
// every room and loses password, profile, devices and tokens; with erase
// the content of every event they sent is removed (docs/privacy.md).
func (a *API) adminDeactivate(r *http.Request, _ *auth.Device) (any, error) {
	var req struct {
		Erase bool `json:"erase"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	if err := a.adminOps.Deactivate(r.Context(), mux.Vars(r)["userId"], req.Erase); err != nil {
		return nil, err
	}
	return map[string]string{"id_server_unbind_result": "success"}, nil
}

// adminExport answers GET /_aula/admin/v1/users/{userId}/export with a
// zip archive of the user's data (admin.Ops.Export). It writes the
// archive itself, so it checks the token and admin rights like a.admin.
func (a *API) adminExport() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := decodeVars(r)
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		d, err := a.auth.Authenticate(r.Context(), accessToken(r), a.clientIP(r))
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		setRequester(r, d)
		ok, err := a.auth.IsAdmin(r.Context(), d.UserID)
		if err == nil && !ok {
			err = mxerr.Forbidden("You are not a server admin")
		}
		userID := mux.Vars(r)["userId"]
		if err == nil {
			err = a.adminOps.CheckExport(r.Context(), userID)
		}
		if err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		// Built in memory first, so that a failure half-way is still a
		// proper error response rather than a truncated archive.
		var buf bytes.Buffer
		if err := a.adminOps.Export(r.Context(), userID, &buf); err != nil {
			a.writeResult(w, r, nil, err)
			return
		}
		local, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+exportFileName(local)+`"`)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	})
}

// exportFileName is the archive's file name: export-<localpart>.zip, with
// anything but letters, digits, '.', '_', '=' and '-' replaced.
func exportFileName(localpart string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._=-", r) {
			return r
		}
		return '_'
	}, localpart)
	return "export-" + safe + ".zip"
}
