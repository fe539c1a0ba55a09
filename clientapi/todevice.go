package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/syncapi"
)

// sendToDevice answers PUT /sendToDevice/{eventType}/{txnId}: 200 {} once
// the messages are stored (or dropped, for unknown recipients), and for a
// repeated transaction ID.
func (a *API) sendToDevice(r *http.Request, d *auth.Device) (any, error) {
	var body struct {
		Messages *map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.Messages == nil {
		return nil, mxerr.MissingParam("Missing messages")
	}
	v := mux.Vars(r)
	overflows, err := a.sync.SendToDevice(r.Context(), syncapi.ToDeviceRequest{
		Sender: d.UserID, SenderDevice: d.DeviceID, Type: v["eventType"], TxnID: v["txnId"], Messages: *body.Messages,
	})
	if err != nil {
		return nil, err
	}
	for _, o := range overflows {
		a.log.WarnContext(r.Context(), "to-device inbox full: dropped the oldest messages",
			"user", o.UserID, "device", o.DeviceID, "dropped", o.Dropped)
	}
	return emptyObject, nil
}
