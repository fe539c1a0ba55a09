package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// SignedCurve25519 is the one-time key algorithm clients use; its count
// is always reported, as Synapse does, so that clients know to upload.
const SignedCurve25519 = "signed_curve25519"

// Service stores and hands out device, one-time and fallback keys.
type Service struct {
	db         *storage.DB
	serverName string
}

// New returns the key service of the server named serverName.
func New(db *storage.DB, serverName string) *Service {
	return &Service{db: db, serverName: serverName}
}

// UploadRequest is the body of POST /keys/upload. Fields are kept raw so
// that every shape error gets a precise message.
type UploadRequest struct {
	DeviceKeys      json.RawMessage            `json:"device_keys"`
	OneTimeKeys     map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys    map[string]json.RawMessage `json:"fallback_keys"`
	FallbackKeysMSC map[string]json.RawMessage `json:"org.matrix.msc2732.fallback_keys"`
}

// deviceKeys is the shape of a DeviceKeys object (spec).
type deviceKeys struct {
	UserID     string                       `json:"user_id"`
	DeviceID   string                       `json:"device_id"`
	Algorithms []string                     `json:"algorithms"`
	Keys       map[string]string            `json:"keys"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// Upload stores the device's keys and returns its one-time key counts.
// Device keys must name the requesting user and device, and cannot change
// once uploaded (400 M_INVALID_PARAM); a one-time key ID cannot be reused
// for a different key.
func (s *Service) Upload(ctx context.Context, userID, deviceID string, req UploadRequest) (map[string]int, error) {
	u := storage.KeyUpload{UserID: userID, DeviceID: deviceID}
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		canonical, err := checkDeviceKeys(req.DeviceKeys, userID, deviceID)
		if err != nil {
			return nil, err
		}
		u.DeviceKeys = canonical
	}
	var err error
	if u.OneTimeKeys, err = parseKeys("one_time_keys", req.OneTimeKeys); err != nil {
		return nil, err
	}
	fallback := req.FallbackKeys
	if fallback == nil {
		fallback = req.FallbackKeysMSC
	}
	if u.FallbackKeys, err = parseKeys("fallback_keys", fallback); err != nil {
		return nil, err
	}
	counts, err := s.db.UploadKeys(ctx, u)
	switch {
	case errors.Is(err, storage.ErrDeviceKeysChanged):
		return nil, mxerr.InvalidParam("The device keys of %s cannot be changed; log in as a new device", deviceID)
	case errors.Is(err, storage.ErrOneTimeKeyExists):
		return nil, mxerr.InvalidParam("One-time key %s was uploaded before with a different key", strings.TrimPrefix(err.Error(), storage.ErrOneTimeKeyExists.Error()+": "))
	case err != nil:
		return nil, err
	}
	return OneTimeKeyCounts(counts), nil
}

// OneTimeKeyCounts is a device's one-time key counts as clients see them,
// with signed_curve25519 always present.
func OneTimeKeyCounts(c storage.KeyCounts) map[string]int {
	out := map[string]int{SignedCurve25519: 0}
	for alg, n := range c.OneTime {
		out[alg] = n
	}
	return out
}

// checkDeviceKeys validates uploaded device keys and returns their
// canonical JSON without "unsigned" (the server adds its own on query).
func checkDeviceKeys(raw json.RawMessage, userID, deviceID string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, mxerr.BadJSON("device_keys must be an object")
	}
	var dk deviceKeys
	if err := json.Unmarshal(raw, &dk); err != nil {
		return nil, mxerr.BadJSON("device_keys: %v", err)
	}
	switch {
	case dk.UserID != userID:
		return nil, mxerr.InvalidParam("device_keys.user_id must be %s", userID)
	case dk.DeviceID != deviceID:
		return nil, mxerr.InvalidParam("device_keys.device_id must be %s, the device of the access token", deviceID)
	case len(dk.Algorithms) == 0:
		return nil, mxerr.BadJSON("device_keys.algorithms must be a non-empty list")
	case len(dk.Keys) == 0:
		return nil, mxerr.BadJSON("device_keys.keys must be a non-empty object")
	case dk.Keys["ed25519:"+deviceID] == "":
		return nil, mxerr.InvalidParam("device_keys.keys must hold ed25519:%s", deviceID)
	case len(dk.Signatures[userID]) == 0:
		return nil, mxerr.InvalidParam("device_keys must be signed by %s", userID)
	}
	delete(obj, "unsigned")
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("keys: re-encode device keys: %w", err)
	}
	canonical, err := gomatrixserverlib.CanonicalJSON(b)
	if err != nil {
		return nil, mxerr.BadJSON("device_keys: %v", err)
	}
	return canonical, nil
}

// parseKeys reads a map of "algorithm:key_id" to a key (an object, or a
// string for unsigned keys).
func parseKeys(field string, m map[string]json.RawMessage) ([]storage.OneTimeKey, error) {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]storage.OneTimeKey, 0, len(m))
	for _, id := range ids {
		alg, keyID, ok := strings.Cut(id, ":")
		if !ok || alg == "" || keyID == "" || len(id) > 255 {
			return nil, mxerr.InvalidParam("%s: %q is not of the form algorithm:key_id", field, id)
		}
		v := m[id]
		switch kind(v) {
		case '{', '"':
		default:
			return nil, mxerr.BadJSON("%s.%s must be an object or a string", field, id)
		}
		canonical, err := gomatrixserverlib.CanonicalJSON(v)
		if err != nil {
			return nil, mxerr.BadJSON("%s.%s: %v", field, id, err)
		}
		out = append(out, storage.OneTimeKey{Algorithm: alg, KeyID: keyID, JSON: canonical})
	}
	return out, nil
}

// kind returns the first non-space byte of a JSON value.
func kind(v []byte) byte {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// QueryResponse is the answer of POST /keys/query.
type QueryResponse struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"` // stored keys, signatures merged in
	Failures        map[string]any                        `json:"failures"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
}

// Query returns the device keys of the requested users' devices (all of
// a user's devices for an empty list), with each device's display name in
// unsigned. Users of other servers are left out: this server does not
// federate, so nobody there can be in a room with the requester.
func (s *Service) Query(ctx context.Context, requester string, users map[string][]string) (*QueryResponse, error) {
	resp := &QueryResponse{
		DeviceKeys: map[string]map[string]json.RawMessage{}, Failures: map[string]any{},
		MasterKeys: map[string]json.RawMessage{}, SelfSigningKeys: map[string]json.RawMessage{}, UserSigningKeys: map[string]json.RawMessage{},
	}
	local := map[string][]string{}
	for userID, devices := range users {
		if !ids.ValidUserID(userID) {
			return nil, mxerr.InvalidParam("%q is not a user ID", userID)
		}
		if _, server, _ := strings.Cut(userID, ":"); server != s.serverName {
			continue
		}
		local[userID] = devices
		resp.DeviceKeys[userID] = map[string]json.RawMessage{}
	}
	stored, err := s.db.DeviceKeysOf(ctx, local)
	if err != nil {
		return nil, err
	}
	for _, k := range stored {
		var obj map[string]any
		if err := json.Unmarshal(k.JSON, &obj); err != nil {
			return nil, fmt.Errorf("keys: stored device keys of %s %s: %w", k.UserID, k.DeviceID, err)
		}
		if k.DisplayName != "" {
			obj["unsigned"] = map[string]string{"device_display_name": k.DisplayName}
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("keys: encode device keys: %w", err)
		}
		resp.DeviceKeys[k.UserID][k.DeviceID] = b
	}
	list := make([]string, 0, len(local))
	for u := range local {
		list = append(list, u)
	}
	sort.Strings(list)
	if err := s.addCrossSigning(ctx, requester, list, resp); err != nil { // crosssigning.go
		return nil, err
	}
	return resp, nil
}

// ClaimResponse is the answer of POST /keys/claim.
type ClaimResponse struct {
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	Failures    map[string]any                                   `json:"failures"`
}

// Claim hands out one key per requested device and algorithm (see
// storage.ClaimKeys). Devices without keys are left out.
func (s *Service) Claim(ctx context.Context, req map[string]map[string]string) (*ClaimResponse, error) {
	var claims []storage.KeyClaim
	users := make([]string, 0, len(req))
	for u := range req {
		users = append(users, u)
	}
	sort.Strings(users) // a fixed lock order
	for _, userID := range users {
		if !ids.ValidUserID(userID) {
			return nil, mxerr.InvalidParam("%q is not a user ID", userID)
		}
		if _, server, _ := strings.Cut(userID, ":"); server != s.serverName {
			continue
		}
		devices := make([]string, 0, len(req[userID]))
		for d := range req[userID] {
			devices = append(devices, d)
		}
		sort.Strings(devices)
		for _, d := range devices {
			alg := req[userID][d]
			if alg == "" {
				return nil, mxerr.InvalidParam("one_time_keys.%s.%s must name an algorithm", userID, d)
			}
			claims = append(claims, storage.KeyClaim{UserID: userID, DeviceID: d, Algorithm: alg})
		}
	}
	got, err := s.db.ClaimKeys(ctx, claims)
	if err != nil {
		return nil, err
	}
	resp := &ClaimResponse{OneTimeKeys: map[string]map[string]map[string]json.RawMessage{}, Failures: map[string]any{}}
	for _, k := range got {
		byDevice := resp.OneTimeKeys[k.UserID]
		if byDevice == nil {
			byDevice = map[string]map[string]json.RawMessage{}
			resp.OneTimeKeys[k.UserID] = byDevice
		}
		byDevice[k.DeviceID] = map[string]json.RawMessage{k.Algorithm + ":" + k.KeyID: k.JSON}
	}
	return resp, nil
}
