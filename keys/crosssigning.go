package keys

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Cross-signing key usages.
const (
	UsageMaster      = "master"
	UsageSelfSigning = "self_signing"
	UsageUserSigning = "user_signing"
)

// crossSigningKey is the spec's CrossSigningKey object.
type crossSigningKey struct {
	UserID     string                       `json:"user_id"`
	Usage      []string                     `json:"usage"`
	Keys       map[string]string            `json:"keys"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// publicKey returns the key's only ed25519 key ID and public key.
func (k crossSigningKey) publicKey() (string, ed25519.PublicKey, bool) {
	if len(k.Keys) != 1 {
		return "", nil, false
	}
	for id, pub := range k.Keys {
		raw, err := base64.RawStdEncoding.DecodeString(pub)
		if !strings.HasPrefix(id, "ed25519:") || id != "ed25519:"+pub || err != nil || len(raw) != ed25519.PublicKeySize {
			return "", nil, false
		}
		return id, ed25519.PublicKey(raw), true
	}
	return "", nil, false
}

// DeviceSigningUpload is the body of POST /keys/device_signing/upload.
type DeviceSigningUpload struct {
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
	UserSigningKey json.RawMessage `json:"user_signing_key"`
	Auth           json.RawMessage `json:"auth"`
}

// parsedUpload holds the checked keys of an upload, as canonical JSON by
// usage.
type parsedUpload map[string][]byte

// checkCrossSigning validates an upload against the stored keys: each key
// names the user and its usage and holds one ed25519 key; the self-signing
// and user-signing keys must be signed by the master key (uploaded with
// them, or stored).
func (s *Service) checkCrossSigning(ctx context.Context, userID string, req DeviceSigningUpload) (parsedUpload, map[string][]byte, error) {
	stored, err := s.db.CrossSigningKeys(ctx, []string{userID})
	if err != nil {
		return nil, nil, err
	}
	out := parsedUpload{}
	parsed := map[string]crossSigningKey{}
	for _, f := range []struct {
		usage string
		raw   json.RawMessage
		field string
	}{{UsageMaster, req.MasterKey, "master_key"}, {UsageSelfSigning, req.SelfSigningKey, "self_signing_key"}, {UsageUserSigning, req.UserSigningKey, "user_signing_key"}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		var k crossSigningKey
		if kind(f.raw) != '{' || json.Unmarshal(f.raw, &k) != nil {
			return nil, nil, mxerr.BadJSON("%s must be a CrossSigningKey object", f.field)
		}
		if k.UserID != userID {
			return nil, nil, mxerr.InvalidParam("%s.user_id must be %s", f.field, userID)
		}
		if !slices.Equal(k.Usage, []string{f.usage}) {
			return nil, nil, mxerr.InvalidParam("%s.usage must be [%q]", f.field, f.usage)
		}
		if _, _, ok := k.publicKey(); !ok {
			return nil, nil, mxerr.InvalidParam("%s.keys must hold one ed25519 public key, as \"ed25519:<key>\": \"<key>\"", f.field)
		}
		canonical, err := gomatrixserverlib.CanonicalJSON(f.raw)
		if err != nil {
			return nil, nil, mxerr.BadJSON("%s: %v", f.field, err)
		}
		parsed[f.usage], out[f.usage] = k, canonical
	}
	if len(out) == 0 {
		return nil, nil, mxerr.MissingParam("Upload at least one of master_key, self_signing_key and user_signing_key")
	}
	master, ok := parsed[UsageMaster]
	if !ok {
		raw := stored[userID][UsageMaster]
		if raw == nil {
			return nil, nil, mxerr.MissingParam("master_key is required: %s has none yet", userID)
		}
		if err := json.Unmarshal(raw, &master); err != nil {
			return nil, nil, fmt.Errorf("keys: stored master key of %s: %w", userID, err)
		}
	}
	masterID, masterPub, _ := master.publicKey()
	for _, usage := range []string{UsageSelfSigning, UsageUserSigning} {
		if raw, ok := out[usage]; ok {
			if err := gomatrixserverlib.VerifyJSON(userID, gomatrixserverlib.KeyID(masterID), masterPub, raw); err != nil {
				return nil, nil, mxerr.New(http.StatusBadRequest, "M_INVALID_SIGNATURE", "The %s key must be signed by the master key: %v", usage, err)
			}
		}
	}
	return out, stored[userID], nil
}

// CrossSigningNeedsAuth reports whether an upload must be confirmed with
// user-interactive authentication: when the user already has a master key
// and the upload would replace one of the stored keys. The first upload,
// and uploading the same keys again, need none (MSC3967, as Synapse).
func (s *Service) CrossSigningNeedsAuth(ctx context.Context, userID string, req DeviceSigningUpload) (bool, error) {
	keys, stored, err := s.checkCrossSigning(ctx, userID, req)
	if err != nil {
		return false, err
	}
	if stored[UsageMaster] == nil {
		return false, nil
	}
	for usage, js := range keys {
		if string(stored[usage]) != string(js) {
			return true, nil
		}
	}
	return false, nil
}

// UploadCrossSigning stores the user's cross-signing keys (the caller has
// confirmed the user when CrossSigningNeedsAuth asked for it).
func (s *Service) UploadCrossSigning(ctx context.Context, userID string, req DeviceSigningUpload) error {
	keys, _, err := s.checkCrossSigning(ctx, userID, req)
	if err != nil {
		return err
	}
	return s.db.PutCrossSigningKeys(ctx, userID, keys)
}

// SignatureFailure is one entry of /keys/signatures/upload's failures.
type SignatureFailure struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// UploadSignatures stores the signatures in an upload of
// /keys/signatures/upload (user → key ID → signed object) that verify:
// the user's own devices signed by their self-signing key, their own
// master key signed by one of their devices, and other users' master keys
// signed by their user-signing key. The rest are reported as failures.
func (s *Service) UploadSignatures(ctx context.Context, userID string, body map[string]map[string]json.RawMessage) (map[string]map[string]SignatureFailure, error) {
	failures := map[string]map[string]SignatureFailure{}
	fail := func(user, key, code, format string, args ...any) {
		if failures[user] == nil {
			failures[user] = map[string]SignatureFailure{}
		}
		failures[user][key] = SignatureFailure{Errcode: code, Error: fmt.Sprintf(format, args...)}
	}
	users := make([]string, 0, len(body)+1)
	for u := range body {
		users = append(users, u)
	}
	users = append(users, userID)
	xs, err := s.db.CrossSigningKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	keyOf := func(user, usage string) (string, ed25519.PublicKey, bool) {
		var k crossSigningKey
		if raw := xs[user][usage]; raw == nil || json.Unmarshal(raw, &k) != nil {
			return "", nil, false
		}
		return k.publicKey()
	}
	ownDevices, err := s.db.DeviceKeysOf(ctx, map[string][]string{userID: nil})
	if err != nil {
		return nil, err
	}
	devices := map[string][]byte{}
	for _, d := range ownDevices {
		devices[d.DeviceID] = d.JSON
	}

	var sigs []storage.KeySignature
	sortedUsers := users[:len(users)-1]
	sort.Strings(sortedUsers)
	for _, target := range sortedUsers {
		ids := make([]string, 0, len(body[target]))
		for id := range body[target] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, keyID := range ids {
			raw := body[target][keyID]
			var signed struct {
				Signatures map[string]map[string]string `json:"signatures"`
			}
			if kind(raw) != '{' || json.Unmarshal(raw, &signed) != nil {
				fail(target, keyID, "M_BAD_JSON", "The signed object must be a JSON object")
				continue
			}
			mine := signed.Signatures[userID]
			var signerID string
			var signerPub ed25519.PublicKey
			var storedObj []byte
			switch {
			case target == userID && devices[keyID] != nil:
				// One of the user's devices, signed by their self-signing key.
				id, pub, ok := keyOf(userID, UsageSelfSigning)
				if !ok {
					fail(target, keyID, "M_INVALID_SIGNATURE", "You have no self-signing key")
					continue
				}
				signerID, signerPub, storedObj = id, pub, devices[keyID]
			case target == userID:
				// The user's master key, signed by one of their devices.
				masterID, _, ok := keyOf(userID, UsageMaster)
				if !ok || masterID != "ed25519:"+keyID {
					fail(target, keyID, "M_NOT_FOUND", "No device or master key %s", keyID)
					continue
				}
				storedObj = xs[userID][UsageMaster]
				for id := range mine {
					dev := strings.TrimPrefix(id, "ed25519:")
					if d := devices[dev]; d != nil {
						var dk deviceKeys
						if json.Unmarshal(d, &dk) == nil {
							if raw, err := base64.RawStdEncoding.DecodeString(dk.Keys["ed25519:"+dev]); err == nil && len(raw) == ed25519.PublicKeySize {
								signerID, signerPub = id, ed25519.PublicKey(raw)
							}
						}
					}
				}
				if signerPub == nil {
					fail(target, keyID, "M_INVALID_SIGNATURE", "The master key must be signed by one of your devices")
					continue
				}
			default:
				// Another user's master key, signed by the user-signing key.
				masterID, _, ok := keyOf(target, UsageMaster)
				if !ok || masterID != "ed25519:"+keyID {
					fail(target, keyID, "M_NOT_FOUND", "%s has no master key %s", target, keyID)
					continue
				}
				id, pub, ok := keyOf(userID, UsageUserSigning)
				if !ok {
					fail(target, keyID, "M_INVALID_SIGNATURE", "You have no user-signing key")
					continue
				}
				signerID, signerPub, storedObj = id, pub, xs[target][UsageMaster]
			}
			sig := mine[signerID]
			if sig == "" {
				fail(target, keyID, "M_INVALID_SIGNATURE", "No signature by %s", signerID)
				continue
			}
			if !sameSignedContent(raw, storedObj) {
				fail(target, keyID, "M_INVALID_PARAM", "The signed object differs from the stored key")
				continue
			}
			if err := gomatrixserverlib.VerifyJSON(userID, gomatrixserverlib.KeyID(signerID), signerPub, raw); err != nil {
				fail(target, keyID, "M_INVALID_SIGNATURE", "Invalid signature by %s: %v", signerID, err)
				continue
			}
			sigs = append(sigs, storage.KeySignature{SignerUserID: userID, SignerKeyID: signerID, TargetUserID: target, TargetKeyID: keyID, Signature: sig})
		}
	}
	if len(sigs) > 0 {
		if err := s.db.PutKeySignatures(ctx, sigs, []string{userID}); err != nil {
			return nil, err
		}
	}
	return failures, nil
}

// sameSignedContent reports whether two key objects are the same apart
// from their signatures and unsigned data.
func sameSignedContent(a, b []byte) bool {
	strip := func(raw []byte) []byte {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		delete(m, "signatures")
		delete(m, "unsigned")
		js, err := json.Marshal(m)
		if err != nil {
			return nil
		}
		c, err := gomatrixserverlib.CanonicalJSON(js)
		if err != nil {
			return nil
		}
		return c
	}
	x, y := strip(a), strip(b)
	return x != nil && string(x) == string(y)
}

// addCrossSigning fills a /keys/query answer's cross-signing keys and
// merges the stored signatures into the device and master keys. Other
// users' signatures of a master key are shown only to their signer.
func (s *Service) addCrossSigning(ctx context.Context, requester string, users []string, resp *QueryResponse) error {
	xs, err := s.db.CrossSigningKeys(ctx, users)
	if err != nil {
		return err
	}
	sigs, err := s.db.KeySignaturesOf(ctx, users)
	if err != nil {
		return err
	}
	byTarget := map[[2]string][]storage.KeySignature{}
	for _, sg := range sigs {
		k := [2]string{sg.TargetUserID, sg.TargetKeyID}
		byTarget[k] = append(byTarget[k], sg)
	}
	merge := func(raw []byte, list []storage.KeySignature) ([]byte, error) {
		if len(list) == 0 {
			return raw, nil
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("keys: stored key: %w", err)
		}
		all, _ := obj["signatures"].(map[string]any)
		if all == nil {
			all = map[string]any{}
		}
		for _, sg := range list {
			bySigner, _ := all[sg.SignerUserID].(map[string]any)
			if bySigner == nil {
				bySigner = map[string]any{}
				all[sg.SignerUserID] = bySigner
			}
			bySigner[sg.SignerKeyID] = sg.Signature
		}
		obj["signatures"] = all
		return json.Marshal(obj)
	}
	for userID, devices := range resp.DeviceKeys {
		for deviceID, raw := range devices {
			merged, err := merge(raw, byTarget[[2]string{userID, deviceID}])
			if err != nil {
				return err
			}
			devices[deviceID] = merged
		}
	}
	for _, userID := range users {
		keys := xs[userID]
		if m := keys[UsageMaster]; m != nil {
			var k crossSigningKey
			_ = json.Unmarshal(m, &k)
			id, _, _ := k.publicKey()
			var visible []storage.KeySignature
			for _, sg := range byTarget[[2]string{userID, strings.TrimPrefix(id, "ed25519:")}] {
				if sg.SignerUserID == userID || sg.SignerUserID == requester {
					visible = append(visible, sg)
				}
			}
			merged, err := merge(m, visible)
			if err != nil {
				return err
			}
			resp.MasterKeys[userID] = merged
		}
		if k := keys[UsageSelfSigning]; k != nil {
			resp.SelfSigningKeys[userID] = k
		}
		if k := keys[UsageUserSigning]; k != nil && userID == requester {
			resp.UserSigningKeys[userID] = k
		}
	}
	return nil
}
