package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// deviceJSON is the spec's Device object.
type deviceJSON struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

func toDeviceJSON(d storage.Device) deviceJSON {
	return deviceJSON{DeviceID: d.DeviceID, DisplayName: d.DisplayName, LastSeenIP: d.LastSeenIP, LastSeenTS: d.LastSeenTS}
}

// getDevices answers GET /devices.
func (a *API) getDevices(r *http.Request, d *auth.Device) (any, error) {
	ds, err := a.auth.Devices(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]deviceJSON, 0, len(ds))
	for _, dev := range ds {
		out = append(out, toDeviceJSON(dev))
	}
	return map[string]any{"devices": out}, nil
}

// getDevice answers GET /devices/{deviceId}.
func (a *API) getDevice(r *http.Request, d *auth.Device) (any, error) {
	dev, err := a.auth.Device(r.Context(), d.UserID, mux.Vars(r)["deviceId"])
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Device not found")
	}
	if err != nil {
		return nil, err
	}
	return toDeviceJSON(dev), nil
}

// updateDevice answers PUT /devices/{deviceId}.
func (a *API) updateDevice(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	err := a.auth.RenameDevice(r.Context(), d.UserID, mux.Vars(r)["deviceId"], req.DisplayName)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Device not found")
	}
	return nil, err
}

// deleteDevice answers DELETE /devices/{deviceId}. Deleting a device that
// does not exist (any more) succeeds, as the spec says ("or had been removed
// previously") and Synapse does, so that a retried request is not an error;
// user-interactive authentication is still required.
func (a *API) deleteDevice(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		Auth json.RawMessage `json:"auth"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	id := mux.Vars(r)["deviceId"]
	if err := a.auth.DeleteDevices(r.Context(), d, "DELETE /devices/"+id, []string{id}, req.Auth); err != nil {
		return nil, err
	}
	a.sliding.DropDevice(d.UserID, id)
	return nil, nil
}

// deleteDevices answers POST /delete_devices.
func (a *API) deleteDevices(r *http.Request, d *auth.Device) (any, error) {
	var req struct {
		Devices *[]string       `json:"devices"`
		Auth    json.RawMessage `json:"auth"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		return nil, err
	}
	if req.Devices == nil {
		return nil, mxerr.MissingParam("devices is required")
	}
	if err := a.auth.DeleteDevices(r.Context(), d, "POST /delete_devices", *req.Devices, req.Auth); err != nil {
		return nil, err
	}
	for _, id := range *req.Devices {
		a.sliding.DropDevice(d.UserID, id)
	}
	return nil, nil
}
