package clientapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
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
// zip archive of the user's data (admin.Ops.Export). The archive is built
// in memory first, so that a failure half-way is still a proper error
// response rather than a truncated archive.
func (a *API) adminExport(r *http.Request, _ *auth.Device) (any, error) {
	userID := mux.Vars(r)["userId"]
	if err := a.adminOps.CheckExport(r.Context(), userID); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := a.adminOps.Export(r.Context(), userID, &buf); err != nil {
		return nil, err
	}
	local, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	h := http.Header{}
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+exportFileName(local)+`"`)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	return rawResponse{header: h, body: buf.Bytes()}, nil
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
