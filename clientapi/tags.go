package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
)

// getTags answers GET /user/{userId}/rooms/{roomId}/tags.
func (a *API) getTags(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	tags, err := a.account.Tags(r.Context(), d.UserID, v["userId"], v["roomId"])
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tags}, nil
}

// putTag answers PUT /user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) putTag(r *http.Request, d *auth.Device) (any, error) {
	var body json.RawMessage
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	return nil, a.account.PutTag(r.Context(), d.UserID, v["userId"], v["roomId"], v["tag"], body)
}

// deleteTag answers DELETE /user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) deleteTag(r *http.Request, d *auth.Device) (any, error) {
	v := mux.Vars(r)
	return nil, a.account.DeleteTag(r.Context(), d.UserID, v["userId"], v["roomId"], v["tag"])
}
