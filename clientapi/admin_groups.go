package clientapi

import (
	"net/http"

	"github.com/aula-chat/aula/admin"
	"github.com/aula-chat/aula/auth"
)

// adminCreateGroup answers POST /_aula/admin/v1/groups
// {name, topic?, members: [...], space?} with {room_id}: an invite-only
// room (or space) created by the calling admin, with every listed member
// already joined (admin.Ops.CreateGroup).
func (a *API) adminCreateGroup(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		Name    string   `json:"name"`
		Topic   string   `json:"topic"`
		Members []string `json:"members"`
		Space   bool     `json:"space"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	roomID, err := a.adminOps.CreateGroup(r.Context(), admin.GroupRequest{
		Creator: d.UserID, Name: req.Name, Topic: req.Topic, Members: req.Members, Space: req.Space,
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"room_id": roomID}, nil
}
