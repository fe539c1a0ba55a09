package clientapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/internal/apitest"
)

// edKey is an ed25519 key pair with its unpadded base64 public key.
type edKey struct {
	pub  string
	priv ed25519.PrivateKey
}

func newEdKey(t *testing.T) edKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return edKey{pub: base64.RawStdEncoding.EncodeToString(pub), priv: priv}
}

// sign signs obj as user with key ID keyID.
func sign(t *testing.T, obj any, user, keyID string, k edKey) map[string]any {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := gomatrixserverlib.SignJSON(user, gomatrixserverlib.KeyID(keyID), k.priv, raw)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal(signed, &out)
	return out
}

func crossKey(user, usage string, k edKey) map[string]any {
	return map[string]any{"user_id": user, "usage": []string{usage}, "keys": map[string]string{"ed25519:" + k.pub: k.pub}}
}

// signedDevice uploads u's device keys signed with a real device key.
func signedDevice(t *testing.T, s *apitest.Server, u apitest.User) (map[string]any, edKey) {
	t.Helper()
	dk := newEdKey(t)
	obj := map[string]any{
		"user_id": u.ID, "device_id": u.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"ed25519:" + u.DeviceID: dk.pub, "curve25519:" + u.DeviceID: "curve"},
	}
	signed := sign(t, obj, u.ID, "ed25519:"+u.DeviceID, dk)
	uploadKeys(t, s, u, map[string]any{"device_keys": signed})
	return signed, dk
}

func TestCrossSigning(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		aliceDevice, aliceDevKey := signedDevice(t, s, alice)
		master, ssk, usk := newEdKey(t), newEdKey(t), newEdKey(t)
		upload := map[string]any{
			"master_key":       crossKey(alice.ID, "master", master),
			"self_signing_key": sign(t, crossKey(alice.ID, "self_signing", ssk), alice.ID, "ed25519:"+master.pub, master),
			"user_signing_key": sign(t, crossKey(alice.ID, "user_signing", usk), alice.ID, "ed25519:"+master.pub, master),
		}
		// A self-signing key not signed by the master key is refused.
		bad := map[string]any{"master_key": upload["master_key"], "self_signing_key": crossKey(alice.ID, "self_signing", ssk)}
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, bad).Expect(t, 400, "M_INVALID_SIGNATURE")
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, map[string]any{
			"master_key": crossKey(bob.ID, "master", master)}).Expect(t, 400, "M_INVALID_PARAM")
		// The first upload needs no user-interactive auth; the same again neither.
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, upload).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, upload).Expect(t, 200, "")
		// Replacing the keys does.
		master2 := newEdKey(t)
		replace := map[string]any{"master_key": crossKey(alice.ID, "master", master2)}
		r := s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, replace).Expect(t, 401, "")
		if r.JSON["flows"] == nil || r.String("session") == "" {
			t.Fatalf("replacement without auth: %s, want a user-interactive auth challenge", r.Body)
		}
		// (Completing it is checked at the end, so as not to disturb the rest.)
		session := r.String("session")

		// Alice signs her device with her self-signing key.
		selfSigned := sign(t, aliceDevice, alice.ID, "ed25519:"+ssk.pub, ssk)
		r = s.Do("POST", "/_matrix/client/v3/keys/signatures/upload", alice.Token, map[string]any{
			alice.ID: map[string]any{alice.DeviceID: selfSigned}}).Expect(t, 200, "")
		if f, _ := r.JSON["failures"].(map[string]any); len(f) != 0 {
			t.Errorf("device signature failures: %v", f)
		}
		// She signs her master key with her device.
		masterSigned := sign(t, crossKey(alice.ID, "master", master), alice.ID, "ed25519:"+alice.DeviceID, aliceDevKey)
		r = s.Do("POST", "/_matrix/client/v3/keys/signatures/upload", alice.Token, map[string]any{
			alice.ID: map[string]any{master.pub: masterSigned}}).Expect(t, 200, "")
		if f, _ := r.JSON["failures"].(map[string]any); len(f) != 0 {
			t.Errorf("master signature failures: %v", f)
		}

		// Bob bootstraps too, and verifies alice: signs her master key with his
		// user-signing key.
		bobMaster, bobUSK := newEdKey(t), newEdKey(t)
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", bob.Token, map[string]any{
			"master_key":       crossKey(bob.ID, "master", bobMaster),
			"user_signing_key": sign(t, crossKey(bob.ID, "user_signing", bobUSK), bob.ID, "ed25519:"+bobMaster.pub, bobMaster),
		}).Expect(t, 200, "")
		verified := sign(t, crossKey(alice.ID, "master", master), bob.ID, "ed25519:"+bobUSK.pub, bobUSK)
		r = s.Do("POST", "/_matrix/client/v3/keys/signatures/upload", bob.Token, map[string]any{
			alice.ID: map[string]any{master.pub: verified}}).Expect(t, 200, "")
		if f, _ := r.JSON["failures"].(map[string]any); len(f) != 0 {
			t.Errorf("verification signature failures: %v", f)
		}
		// A bad signature and an unknown key are reported per key.
		forged := sign(t, crossKey(alice.ID, "master", master), bob.ID, "ed25519:"+bobUSK.pub, newEdKey(t))
		r = s.Do("POST", "/_matrix/client/v3/keys/signatures/upload", bob.Token, map[string]any{
			alice.ID: map[string]any{master.pub: forged, "NOPE": map[string]any{}}}).Expect(t, 200, "")
		var fr struct {
			Failures map[string]map[string]struct {
				Errcode string `json:"errcode"`
			} `json:"failures"`
		}
		_ = json.Unmarshal(r.Body, &fr)
		if fr.Failures[alice.ID][master.pub].Errcode != "M_INVALID_SIGNATURE" || fr.Failures[alice.ID]["NOPE"].Errcode != "M_NOT_FOUND" {
			t.Errorf("failures %s", r.Body)
		}

		// /keys/query: signatures merged; user-signing keys only for oneself;
		// bob's signature of alice's master key shown to bob.
		query := func(u apitest.User) (q struct {
			DeviceKeys      map[string]map[string]map[string]any `json:"device_keys"`
			MasterKeys      map[string]map[string]any            `json:"master_keys"`
			SelfSigningKeys map[string]map[string]any            `json:"self_signing_keys"`
			UserSigningKeys map[string]map[string]any            `json:"user_signing_keys"`
		}) {
			r := s.Do("POST", "/_matrix/client/v3/keys/query", u.Token, map[string]any{"device_keys": map[string]any{alice.ID: []string{}, bob.ID: []string{}}}).Expect(t, 200, "")
			_ = json.Unmarshal(r.Body, &q)
			return q
		}
		qb := query(bob)
		devSigs, _ := qb.DeviceKeys[alice.ID][alice.DeviceID]["signatures"].(map[string]any)
		if aliceSigs, _ := devSigs[alice.ID].(map[string]any); aliceSigs["ed25519:"+ssk.pub] == nil || aliceSigs["ed25519:"+alice.DeviceID] == nil {
			t.Errorf("alice's device signatures %v, want her device's and her self-signing key's", devSigs)
		}
		mSigs, _ := qb.MasterKeys[alice.ID]["signatures"].(map[string]any)
		if mSigs[bob.ID] == nil || mSigs[alice.ID] == nil {
			t.Errorf("alice's master key as bob sees it: signatures %v, want alice's and bob's", mSigs)
		}
		if qb.SelfSigningKeys[alice.ID] == nil || qb.UserSigningKeys[alice.ID] != nil || qb.UserSigningKeys[bob.ID] == nil {
			t.Errorf("bob's view: self-signing %v, user-signing %v", qb.SelfSigningKeys, qb.UserSigningKeys)
		}
		// Carol does not see bob's signature of alice's key.
		carol := s.Register("carol", "pw-carol-123")
		qc := query(carol)
		if mSigs, _ := qc.MasterKeys[alice.ID]["signatures"].(map[string]any); mSigs[bob.ID] != nil {
			t.Errorf("carol sees bob's verification of alice: %v", mSigs)
		}
		if len(qc.UserSigningKeys) != 0 {
			t.Errorf("carol sees user-signing keys: %v", qc.UserSigningKeys)
		}

		// With the password, alice replaces her master key.
		replace["auth"] = alice.PasswordAuth(session)
		s.Do("POST", "/_matrix/client/v3/keys/device_signing/upload", alice.Token, replace).Expect(t, 200, "")
		if keys, _ := query(bob).MasterKeys[alice.ID]["keys"].(map[string]any); keys["ed25519:"+master2.pub] == nil {
			t.Errorf("master key after replacement: %v", keys)
		}
	})
}

// Dehydrated devices (MSC3814) are not implemented: the endpoints answer
// 404 M_UNRECOGNIZED, which clients read as "not supported" (M_NOT_FOUND
// would mean "supported, no device").
func TestDehydratedDevicesUnsupported(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		s.Do("GET", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device", alice.Token, nil).Expect(t, 404, "M_UNRECOGNIZED")
		s.Do("PUT", "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device", alice.Token, map[string]any{}).Expect(t, 404, "M_UNRECOGNIZED")
	})
}
