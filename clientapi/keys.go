package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/keys"
	"github.com/aula-chat/aula/syncapi"
)

// uploadKeys answers POST /keys/upload.
func (a *API) uploadKeys(r *http.Request, d *auth.Device) (any, error) {
	var body keys.UploadRequest
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	// Room-mates' syncs learn about new device keys at once only when the
	// notifier knows the user's rooms.
	if err := a.sync.WatchUser(r.Context(), d.UserID); err != nil {
		return nil, err
	}
	counts, err := a.keys.Upload(r.Context(), d.UserID, d.DeviceID, body)
	if err != nil {
		return nil, err
	}
	return map[string]any{"one_time_key_counts": counts}, nil
}

// queryKeysRequest is the body of POST /keys/query.
type queryKeysRequest struct {
	DeviceKeys map[string][]string `json:"device_keys"`
	Timeout    json.RawMessage     `json:"timeout"` // ignored: no federation to wait for
}

// queryKeys answers POST /keys/query.
func (a *API) queryKeys(r *http.Request, d *auth.Device) (any, error) {
	var body queryKeysRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.DeviceKeys == nil {
		return nil, mxerr.MissingParam("device_keys is required")
	}
	return a.keys.Query(r.Context(), d.UserID, body.DeviceKeys)
}

// claimKeysRequest is the body of POST /keys/claim.
type claimKeysRequest struct {
	OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	Timeout     json.RawMessage              `json:"timeout"` // ignored
}

// claimKeys answers POST /keys/claim.
func (a *API) claimKeys(r *http.Request, d *auth.Device) (any, error) {
	var body claimKeysRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.OneTimeKeys == nil {
		return nil, mxerr.MissingParam("one_time_keys is required")
	}
	return a.keys.Claim(r.Context(), body.OneTimeKeys)
}

// keyChanges answers GET /keys/changes?from=&to=.
func (a *API) keyChanges(r *http.Request, d *auth.Device) (any, error) {
	q := r.URL.Query()
	var tokens [2]syncapi.Token
	for i, name := range []string{"from", "to"} {
		v := q.Get(name)
		if v == "" {
			return nil, mxerr.MissingParam("%s is required", name)
		}
		t, err := syncapi.ParseToken(v)
		if err != nil {
			return nil, err
		}
		tokens[i] = t
	}
	changed, left, err := a.sync.KeyChanges(r.Context(), d.UserID, tokens[0], tokens[1])
	if err != nil {
		return nil, err
	}
	return map[string][]string{"changed": changed, "left": left}, nil
}

// uploadCrossSigningKeys answers POST /keys/device_signing/upload. The
// first upload needs no user-interactive authentication; replacing keys
// does (m.oauth for devices signed in through the OAuth 2.0 API).
func (a *API) uploadCrossSigningKeys(r *http.Request, d *auth.Device) (any, error) {
	var body keys.DeviceSigningUpload
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	need, err := a.keys.CrossSigningNeedsAuth(r.Context(), d.UserID, body)
	if err != nil {
		return nil, err
	}
	if need {
		if err := a.auth.ConfirmCrossSigningReset(r.Context(), d, "POST /keys/device_signing/upload", body.Auth); err != nil {
			return nil, err
		}
	}
	if err := a.sync.WatchUser(r.Context(), d.UserID); err != nil {
		return nil, err
	}
	return emptyObject, a.keys.UploadCrossSigning(r.Context(), d.UserID, body)
}

// uploadSignatures answers POST /keys/signatures/upload.
func (a *API) uploadSignatures(r *http.Request, d *auth.Device) (any, error) {
	var body map[string]map[string]json.RawMessage
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if err := a.sync.WatchUser(r.Context(), d.UserID); err != nil {
		return nil, err
	}
	failures, err := a.keys.UploadSignatures(r.Context(), d.UserID, body)
	if err != nil {
		return nil, err
	}
	return map[string]any{"failures": failures}, nil
}
