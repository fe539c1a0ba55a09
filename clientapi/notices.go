package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/consent"
)

// sendServerNotice answers POST /_synapse/admin/v1/send_server_notice and
// PUT .../send_server_notice/{txnId} (Synapse's admin API): it sends an
// event as the notices user into the target user's notices room.
func (a *API) sendServerNotice(r *http.Request, d *auth.Device) (any, error) {
	var body struct {
		UserID   string          `json:"user_id"`
		Content  json.RawMessage `json:"content"`
		Type     string          `json:"type"`
		StateKey *string         `json:"state_key"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	n := consent.Notice{UserID: body.UserID, Type: body.Type, StateKey: body.StateKey, Content: body.Content}
	if txn := mux.Vars(r)["txnId"]; txn != "" {
		n.DeviceID, n.TxnID = d.DeviceID, txn
	}
	eventID, err := a.consent.Send(r.Context(), n)
	if err != nil {
		return nil, err
	}
	return map[string]string{"event_id": eventID}, nil
}
