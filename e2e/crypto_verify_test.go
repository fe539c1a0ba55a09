//go:build goolm

// Cross-signing, user verification and server-side key backup through
// mautrix's OlmMachine (pure-Go olm: see crypto_test.go).

package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/backup"
	"maunium.net/go/mautrix/crypto/signatures"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/internal/apitest"
)

// keyDevice is a logged-in device with an olm machine whose device and
// one-time keys are uploaded, but no sync loop: everything it learns, it
// asks for (/keys/query, account data, /room_keys, /messages).
//
// The cross-signing tests use it instead of cryptoClient because mautrix
// v0.26.0's OlmMachine keeps its cross-signing keys in unlocked fields
// (CrossSigningKeys, and a cache of the public keys) that its sync handlers
// rewrite when /sync reports the user's own device list changed, which
// every signature upload causes: bootstrapping cross-signing on a syncing
// machine is a data race the race detector reports.
type keyDevice struct {
	name string
	cli  *mautrix.Client
	mach *crypto.OlmMachine
	api  *apiLog
	logs *lineLog
}

// newKeyDevice gives cli a fresh olm account and in-memory crypto store,
// and uploads its device and one-time keys.
func newKeyDevice(t *testing.T, name string, cli *mautrix.Client) *keyDevice {
	t.Helper()
	d := &keyDevice{name: name, cli: cli, logs: &lineLog{}}
	d.api = &apiLog{next: &syncRecorder{next: http.DefaultTransport}}
	cli.Client = &http.Client{Timeout: callTimeout, Transport: d.api}
	t.Cleanup(func() {
		if t.Failed() {
			d.api.dump(t, name, 30)
			d.logs.dump(t, name, 60)
		}
	})
	state := newStateStore()
	cli.StateStore = state
	log := zerolog.New(zerolog.ConsoleWriter{Out: d.logs, NoColor: true, TimeFormat: "15:04:05.000"}).
		Level(zerolog.DebugLevel).With().Timestamp().Str("client", name).Logger()
	d.mach = crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state)
	if err := d.mach.Load(ctx(t)); err != nil {
		t.Fatalf("%s: load the olm account: %v", name, err)
	}
	if err := d.mach.ShareKeys(ctx(t), -1); err != nil {
		t.Fatalf("%s: upload device and one-time keys: %v", name, err)
	}
	return d
}

// bootstrapCrossSigning does what a client's "set up cross-signing" does
// through mautrix: a secret storage key, three cross-signing keys stored in
// secret storage (account data) and published with
// /keys/device_signing/upload, then the device signed with the
// self-signing key and the master key signed with the device. The first
// upload must not ask for user-interactive authentication. It returns the
// recovery key of the secret storage.
func (d *keyDevice) bootstrapCrossSigning(t *testing.T) string {
	t.Helper()
	asked := 0
	recoveryKey, keys, err := d.mach.GenerateAndUploadCrossSigningKeys(ctx(t), func(*mautrix.RespUserInteractive) any {
		asked++
		return nil // give up: the request fails
	}, "")
	if err != nil {
		t.Fatalf("%s: GenerateAndUploadCrossSigningKeys: %v", d.name, err)
	}
	if asked != 0 {
		t.Fatalf("%s: the first /keys/device_signing/upload asked for user-interactive authentication", d.name)
	}
	if recoveryKey == "" || keys == nil || d.mach.CrossSigningKeys != keys {
		t.Fatalf("%s: GenerateAndUploadCrossSigningKeys = %q, %v; machine keys %v", d.name, recoveryKey, keys, d.mach.CrossSigningKeys)
	}
	if err := d.mach.SignOwnDevice(ctx(t), d.mach.OwnIdentity()); err != nil {
		t.Fatalf("%s: SignOwnDevice: %v", d.name, err)
	}
	if err := d.mach.SignOwnMasterKey(ctx(t)); err != nil {
		t.Fatalf("%s: SignOwnMasterKey: %v", d.name, err)
	}
	return recoveryKey
}

// fetchKeys has the machine query the users' device and cross-signing
// keys, as it does for users in device_lists.changed.
func (d *keyDevice) fetchKeys(t *testing.T, users ...id.UserID) {
	t.Helper()
	got, err := d.mach.FetchKeys(ctx(t), users, true)
	if err != nil {
		t.Fatalf("%s: FetchKeys(%v): %v", d.name, users, err)
	}
	for _, u := range users {
		if len(got[u]) == 0 {
			t.Fatalf("%s: FetchKeys(%v) returned no devices of %s: %v", d.name, users, u, got)
		}
	}
}

// storedDevice returns a device from the machine's crypto store.
func (d *keyDevice) storedDevice(t *testing.T, user id.UserID, device id.DeviceID) *id.Device {
	t.Helper()
	dev, err := d.mach.CryptoStore.GetDevice(ctx(t), user, device)
	if err != nil || dev == nil {
		t.Fatalf("%s: crypto store has no device %s of %s (%v)", d.name, device, user, err)
	}
	return dev
}

// expectCrossSigned checks that the machine finds dev signed by its
// owner's self-signing key, itself signed by their master key.
//
// mautrix v0.26.0's ResolveTrustContext cannot tell whether the owner is
// verified: its IsUserTrusted branch is inverted (a cross-signed device of
// a user one has NOT verified comes out as cross-signed-verified, one of a
// verified user as cross-signed-tofu), so verification is checked with
// IsUserTrusted and this only checks that the device is cross-signed.
func (d *keyDevice) expectCrossSigned(t *testing.T, dev *id.Device) {
	t.Helper()
	trust, err := d.mach.ResolveTrustContext(ctx(t), dev)
	if err != nil {
		t.Fatalf("%s: ResolveTrustContext(%s's %s): %v", d.name, dev.UserID, dev.DeviceID, err)
	}
	switch trust {
	case id.TrustStateCrossSignedUntrusted, id.TrustStateCrossSignedTOFU, id.TrustStateCrossSignedVerified:
	default:
		t.Fatalf("%s: %s's device %s has trust %s; want it cross-signed by its owner (the self-signing key's signature from /keys/query)",
			d.name, dev.UserID, dev.DeviceID, trust)
	}
	if !d.mach.IsDeviceTrusted(ctx(t), dev) {
		t.Fatalf("%s: IsDeviceTrusted(%s's %s) = false with trust %s", d.name, dev.UserID, dev.DeviceID, trust)
	}
}

// expectUserTrusted checks whether the machine considers user verified:
// their master key signed by our user-signing key, itself signed by our
// master key.
func (d *keyDevice) expectUserTrusted(t *testing.T, user id.UserID, want bool) {
	t.Helper()
	got, err := d.mach.IsUserTrusted(ctx(t), user)
	if err != nil || got != want {
		t.Fatalf("%s: IsUserTrusted(%s) = %v, %v; want %v", d.name, user, got, err, want)
	}
}

// keysQueryAnswer is the raw answer of POST /keys/query.
type keysQueryAnswer struct {
	DeviceKeys      map[id.UserID]map[id.DeviceID]json.RawMessage `json:"device_keys"`
	MasterKeys      map[id.UserID]json.RawMessage                 `json:"master_keys"`
	SelfSigningKeys map[id.UserID]json.RawMessage                 `json:"self_signing_keys"`
	UserSigningKeys map[id.UserID]json.RawMessage                 `json:"user_signing_keys"`
	Failures        map[string]any                                `json:"failures"`
}

// queryKeysRaw asks /keys/query for all devices of users, with token.
func queryKeysRaw(t *testing.T, s *apitest.Server, token string, users ...id.UserID) (keysQueryAnswer, []byte) {
	t.Helper()
	req := map[id.UserID][]string{}
	for _, u := range users {
		req[u] = []string{}
	}
	r := s.Do("POST", "/_matrix/client/v3/keys/query", token, map[string]any{"device_keys": req}).Expect(t, 200, "")
	var q keysQueryAnswer
	if err := json.Unmarshal(r.Body, &q); err != nil {
		t.Fatalf("/keys/query answer %s: %v", r.Body, err)
	}
	if len(q.Failures) != 0 {
		t.Fatalf("/keys/query answer %s: failures", r.Body)
	}
	return q, r.Body
}

// signedKey is the part of a key object (device or cross-signing key) the
// checks read.
type signedKey struct {
	UserID     id.UserID                       `json:"user_id"`
	Usage      []id.CrossSigningUsage          `json:"usage"`
	Keys       map[string]string               `json:"keys"`
	Signatures map[id.UserID]map[string]string `json:"signatures"`
}

// crossSigningKeyOf checks a raw cross-signing key from /keys/query: it is
// user's key for usage, holds the one ed25519 key want, and is signed by
// each of signers (key name → public key) of user.
func crossSigningKeyOf(t *testing.T, what string, raw json.RawMessage, user id.UserID, usage id.CrossSigningUsage, want id.Ed25519, signers map[string]id.Ed25519) signedKey {
	t.Helper()
	var k signedKey
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatalf("%s: %s: %v", what, raw, err)
	}
	if k.UserID != user || !reflect.DeepEqual(k.Usage, []id.CrossSigningUsage{usage}) ||
		len(k.Keys) != 1 || k.Keys["ed25519:"+want.String()] != want.String() {
		t.Fatalf("%s: %s; want %s's %s key %s", what, raw, user, usage, want)
	}
	expectSignedBy(t, what, raw, user, signers)
	return k
}

// expectSignedBy checks that raw carries a valid signature of user by
// each signer (key name, a device ID or a public key → public key).
func expectSignedBy(t *testing.T, what string, raw json.RawMessage, user id.UserID, signers map[string]id.Ed25519) {
	t.Helper()
	for name, pub := range signers {
		if ok, err := signatures.VerifySignatureJSON(raw, user, name, pub); !ok || err != nil {
			t.Errorf("%s: %s; want a valid signature by %s's ed25519:%s (%v)", what, raw, user, name, err)
		}
	}
}

// TestCrossSigningVerifyWithMautrix bootstraps cross-signing for three
// users through mautrix (keys in secret storage, published, device and
// master key signed), checks that replacing keys needs the password, has
// alice verify bob by signing his master key with her user-signing key,
// and checks what /keys/query shows each user: alice's signature of bob's
// master key only to alice. A second device of alice that unlocks the
// cross-signing keys from secret storage with the recovery key then trusts
// bob from what the server returns; carol does not see alice's signature.
func TestCrossSigningVerifyWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		const alicePassword, carolPassword = "alice-password", "carol-password"
		alice := newKeyDevice(t, "alice", register(t, s, "alice", alicePassword))
		bob := newKeyDevice(t, "bob", register(t, s, "bob", "bob-password"))
		carol := newKeyDevice(t, "carol", register(t, s, "carol", carolPassword))
		aliceID, bobID, carolID := alice.cli.UserID, bob.cli.UserID, carol.cli.UserID

		// 1. Everyone sets up cross-signing.
		aliceRecovery := alice.bootstrapCrossSigning(t)
		bob.bootstrapCrossSigning(t)
		carol.bootstrapCrossSigning(t)
		for _, d := range []*keyDevice{alice, bob, carol} {
			has, verified, err := d.mach.GetOwnVerificationStatus(ctx(t))
			if !has || !verified || err != nil {
				t.Fatalf("%s: GetOwnVerificationStatus = %v, %v, %v after bootstrapping", d.name, has, verified, err)
			}
		}

		// 2. Replacing cross-signing keys needs user-interactive
		// authentication with the account password.
		replacement, err := carol.mach.GenerateCrossSigningKeys()
		if err != nil {
			t.Fatalf("GenerateCrossSigningKeys: %v", err)
		}
		err = carol.mach.PublishCrossSigningKeys(ctx(t), replacement, nil)
		var httpErr mautrix.HTTPError
		if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusUnauthorized) {
			t.Fatalf("replacing carol's cross-signing keys without auth: %v; want 401 with a UIA challenge", err)
		}
		challenge, _ := carol.api.last("/keys/device_signing/upload")
		var uia mautrix.RespUserInteractive
		if err := json.Unmarshal(challenge.respBody, &uia); err != nil || uia.Session == "" ||
			!uia.HasSingleStageFlow(mautrix.AuthTypePassword) {
			t.Fatalf("replacing carol's cross-signing keys without auth: %s; want a session and an m.login.password flow", challenge.respBody)
		}
		err = carol.mach.PublishCrossSigningKeys(ctx(t), replacement, func(ui *mautrix.RespUserInteractive) any {
			return newPasswordAuth(ui.Session, carolID, "not carol's password")
		})
		if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusUnauthorized) || !errors.Is(err, mautrix.MForbidden) {
			t.Fatalf("replacing carol's cross-signing keys with a wrong password: %v; want 401 M_FORBIDDEN", err)
		}
		// mautrix's own helper sends the deprecated "user" field.
		if _, _, err := carol.mach.GenerateAndUploadCrossSigningKeysWithPassword(ctx(t), carolPassword, ""); err != nil {
			t.Fatalf("GenerateAndUploadCrossSigningKeysWithPassword(carol): %v", err)
		}
		carolXS := carol.mach.CrossSigningKeys.PublicKeys()
		if carolXS.MasterKey == replacement.MasterKey.PublicKey() {
			t.Fatalf("carol's machine kept the refused keys")
		}
		q, body := queryKeysRaw(t, s, carol.cli.AccessToken, carolID)
		crossSigningKeyOf(t, "carol's new master key", q.MasterKeys[carolID], carolID, id.XSUsageMaster, carolXS.MasterKey,
			map[string]id.Ed25519{carol.cli.DeviceID.String(): carol.mach.OwnIdentity().SigningKey})
		crossSigningKeyOf(t, "carol's new self-signing key", q.SelfSigningKeys[carolID], carolID, id.XSUsageSelfSigning, carolXS.SelfSigningKey,
			map[string]id.Ed25519{carolXS.MasterKey.String(): carolXS.MasterKey})
		crossSigningKeyOf(t, "carol's new user-signing key", q.UserSigningKeys[carolID], carolID, id.XSUsageUserSigning, carolXS.UserSigningKey,
			map[string]id.Ed25519{carolXS.MasterKey.String(): carolXS.MasterKey})
		if t.Failed() {
			t.Fatalf("/keys/query after carol replaced her keys: %s", body)
		}

		// 3. Alice looks bob up: his device is cross-signed by him, but
		// she has not verified him.
		aliceXS, bobXS := alice.mach.CrossSigningKeys.PublicKeys(), bob.mach.CrossSigningKeys.PublicKeys()
		alice.fetchKeys(t, bobID)
		bobDevice := alice.storedDevice(t, bobID, bob.cli.DeviceID)
		alice.expectCrossSigned(t, bobDevice)
		alice.expectUserTrusted(t, bobID, false)
		known, err := alice.mach.GetCrossSigningPublicKeys(ctx(t), bobID)
		if err != nil || known == nil || known.MasterKey != bobXS.MasterKey || known.SelfSigningKey != bobXS.SelfSigningKey || known.UserSigningKey != "" {
			t.Fatalf("alice's store holds bob's cross-signing keys %+v (%v); want master %s, self-signing %s and no user-signing key",
				known, err, bobXS.MasterKey, bobXS.SelfSigningKey)
		}

		// 4. Alice verifies bob: she signs his master key with her
		// user-signing key (/keys/signatures/upload).
		if err := alice.mach.SignUser(ctx(t), bobID, known.MasterKey); err != nil {
			t.Fatalf("SignUser(bob): %v", err)
		}
		if up, _ := alice.api.last("/keys/signatures/upload"); up.status != http.StatusOK || !bytes.Contains(up.respBody, []byte(`"failures":{}`)) {
			t.Fatalf("alice's /keys/signatures/upload of bob's master key answered %d %s; want 200 without failures", up.status, up.respBody)
		}
		alice.expectUserTrusted(t, bobID, true)

		// 5. What /keys/query shows each of them.
		for _, asker := range []*keyDevice{alice, bob, carol} {
			q, body := queryKeysRaw(t, s, asker.cli.AccessToken, aliceID, bobID)
			who := "as " + asker.name + ", "
			for _, d := range []struct {
				dev *keyDevice
				xs  *crypto.CrossSigningPublicKeysCache
			}{{alice, aliceXS}, {bob, bobXS}} {
				u, own := d.dev.cli.UserID, d.dev.mach.OwnIdentity()
				// The device: signed by itself and by the self-signing key.
				expectSignedBy(t, who+d.dev.name+"'s device keys", q.DeviceKeys[u][own.DeviceID], u, map[string]id.Ed25519{
					own.DeviceID.String(): own.SigningKey, d.xs.SelfSigningKey.String(): d.xs.SelfSigningKey,
				})
				// The master key: signed by the device that created it.
				master := crossSigningKeyOf(t, who+d.dev.name+"'s master key", q.MasterKeys[u], u, id.XSUsageMaster, d.xs.MasterKey,
					map[string]id.Ed25519{own.DeviceID.String(): own.SigningKey})
				crossSigningKeyOf(t, who+d.dev.name+"'s self-signing key", q.SelfSigningKeys[u], u, id.XSUsageSelfSigning, d.xs.SelfSigningKey,
					map[string]id.Ed25519{d.xs.MasterKey.String(): d.xs.MasterKey})
				// The user-signing key only to its owner.
				if usk, ok := q.UserSigningKeys[u]; ok != (asker == d.dev) {
					t.Errorf("%s%s's user-signing key in the answer: %v (%s); want it only when %s asks", who, d.dev.name, ok, usk, d.dev.name)
				} else if ok {
					crossSigningKeyOf(t, who+d.dev.name+"'s user-signing key", usk, u, id.XSUsageUserSigning, d.xs.UserSigningKey,
						map[string]id.Ed25519{d.xs.MasterKey.String(): d.xs.MasterKey})
				}
				// Alice's signature of bob's master key only to alice.
				if u == bobID {
					aliceSigs := master.Signatures[aliceID]
					if asker == alice {
						expectSignedBy(t, who+"bob's master key", q.MasterKeys[bobID], aliceID,
							map[string]id.Ed25519{aliceXS.UserSigningKey.String(): aliceXS.UserSigningKey})
						if len(aliceSigs) != 1 {
							t.Errorf("as alice, bob's master key carries alice's signatures %v; want only her user-signing key's", aliceSigs)
						}
					} else if len(aliceSigs) != 0 {
						t.Errorf("%sbob's master key carries alice's signatures %v; a user-signing key's signatures are only for its owner", who, aliceSigs)
					}
				}
			}
			if t.Failed() {
				t.Fatalf("/keys/query %s: %s", who, body)
			}
		}

		// 6. A second device of alice unlocks the cross-signing keys from
		// secret storage with the recovery key (signing itself and the
		// master key), and trusts bob from what /keys/query returns.
		alice2 := newKeyDevice(t, "alice2", login(t, s, "alice", alicePassword, "alice's laptop"))
		if err := alice2.mach.VerifyWithRecoveryKey(ctx(t), aliceRecovery); err != nil {
			t.Fatalf("alice2: VerifyWithRecoveryKey: %v", err)
		}
		if got := alice2.mach.CrossSigningKeys.PublicKeys(); *got != *aliceXS {
			t.Fatalf("alice2 read cross-signing keys %+v from secret storage; want %+v", got, aliceXS)
		}
		alice2.fetchKeys(t, aliceID, bobID)
		alice2.expectUserTrusted(t, bobID, true)
		if ok, err := alice2.mach.CryptoStore.IsKeySignedBy(ctx(t), bobID, bobXS.MasterKey, aliceID, aliceXS.UserSigningKey); !ok || err != nil {
			t.Fatalf("alice2's store: bob's master key signed by alice's user-signing key = %v, %v; want the signature from /keys/query", ok, err)
		}
		alice2.expectCrossSigned(t, alice2.storedDevice(t, bobID, bob.cli.DeviceID))
		alice2.expectCrossSigned(t, alice2.storedDevice(t, aliceID, alice.cli.DeviceID))
		if has, verified, err := alice2.mach.GetOwnVerificationStatus(ctx(t)); !has || !verified || err != nil {
			t.Fatalf("alice2: GetOwnVerificationStatus = %v, %v, %v after VerifyWithRecoveryKey", has, verified, err)
		}
		q, body = queryKeysRaw(t, s, bob.cli.AccessToken, aliceID)
		own2 := alice2.mach.OwnIdentity()
		expectSignedBy(t, "as bob, alice2's device keys", q.DeviceKeys[aliceID][own2.DeviceID], aliceID, map[string]id.Ed25519{
			own2.DeviceID.String(): own2.SigningKey, aliceXS.SelfSigningKey.String(): aliceXS.SelfSigningKey,
		})
		expectSignedBy(t, "as bob, alice's master key", q.MasterKeys[aliceID], aliceID, map[string]id.Ed25519{
			alice.cli.DeviceID.String(): alice.mach.OwnIdentity().SigningKey, own2.DeviceID.String(): own2.SigningKey,
		})
		if t.Failed() {
			t.Fatalf("/keys/query as bob: %s", body)
		}

		// 7. Carol sees bob cross-signed, without alice's signature.
		carol.fetchKeys(t, bobID)
		carol.expectCrossSigned(t, carol.storedDevice(t, bobID, bob.cli.DeviceID))
		carol.expectUserTrusted(t, bobID, false)
		if ok, err := carol.mach.CryptoStore.IsKeySignedBy(ctx(t), bobID, bobXS.MasterKey, aliceID, aliceXS.UserSigningKey); ok || err != nil {
			t.Fatalf("carol's store: bob's master key signed by alice = %v, %v; want false", ok, err)
		}
	})
}

// sentMessage is an encrypted message a test sent and expects to read.
type sentMessage struct {
	id     id.EventID
	sender id.UserID
	body   string
}

// createEncryptedRoom has owner create a private room with
// m.room.encryption in its initial state, invite guest and wait until
// both clients see guest joined.
func createEncryptedRoom(t *testing.T, owner, guest *cryptoClient) id.RoomID {
	t.Helper()
	empty := ""
	created, err := owner.cli.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "Backed-up room", Invite: []id.UserID{guest.cli.UserID},
		InitialState: []*event.Event{{
			Type: event.StateEncryption, StateKey: &empty,
			Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		}},
	})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	guest.awaitMember(t, created.RoomID, guest.cli.UserID, event.MembershipInvite)
	if _, err := guest.cli.JoinRoomByID(ctx(t), created.RoomID); err != nil {
		t.Fatalf("%s's JoinRoomByID: %v", guest.name, err)
	}
	for _, c := range []*cryptoClient{owner, guest} {
		c.awaitMember(t, created.RoomID, guest.cli.UserID, event.MembershipJoin)
	}
	return created.RoomID
}

// backUpRoomKeys does what a client's backup loop does: it encrypts every
// megolm session in c's crypto store with the backup's public key and
// uploads them with PUT /room_keys/keys?version=. It returns the answer
// and the uploaded session IDs (all of them each time: a key the backup
// already holds as well must change nothing).
func backUpRoomKeys(t *testing.T, c *cryptoClient, version id.KeyBackupVersion, key *backup.MegolmBackupKey) (*mautrix.RespRoomKeysUpdate, map[id.SessionID]id.RoomID) {
	t.Helper()
	sessions, err := c.mach.CryptoStore.GetGroupSessionsWithoutKeyBackupVersion(ctx(t), "no such version").AsList()
	if err != nil {
		t.Fatalf("%s: list megolm sessions: %v", c.name, err)
	}
	own := c.mach.OwnIdentity()
	req := &mautrix.ReqKeyBackup{Rooms: map[id.RoomID]mautrix.ReqRoomKeyBackup{}}
	uploaded := map[id.SessionID]id.RoomID{}
	for _, sess := range sessions {
		first := sess.Internal.FirstKnownIndex()
		exported, err := sess.Internal.Export(first)
		if err != nil {
			t.Fatalf("%s: export session %s: %v", c.name, sess.ID(), err)
		}
		encrypted, err := backup.EncryptSessionData(key, backup.MegolmSessionData{
			Algorithm:          id.AlgorithmMegolmV1,
			ForwardingKeyChain: append([]string{}, sess.ForwardingChains...),
			SenderClaimedKeys:  backup.SenderClaimedKeys{Ed25519: sess.SigningKey},
			SenderKey:          sess.SenderKey,
			SessionKey:         string(exported),
		})
		if err != nil {
			t.Fatalf("%s: encrypt session %s for the backup: %v", c.name, sess.ID(), err)
		}
		data, err := json.Marshal(encrypted)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		room, ok := req.Rooms[sess.RoomID]
		if !ok {
			room = mautrix.ReqRoomKeyBackup{Sessions: map[id.SessionID]mautrix.ReqKeyBackupData{}}
			req.Rooms[sess.RoomID] = room
		}
		room.Sessions[sess.ID()] = mautrix.ReqKeyBackupData{
			FirstMessageIndex: int(first),
			ForwardedCount:    len(sess.ForwardingChains),
			IsVerified:        sess.SenderKey == own.IdentityKey, // the device's own session
			SessionData:       data,
		}
		uploaded[sess.ID()] = sess.RoomID
	}
	resp, err := c.cli.PutKeysInBackup(ctx(t), version, req)
	if err != nil {
		t.Fatalf("%s: PutKeysInBackup(%s) with %d sessions: %v", c.name, version, len(uploaded), err)
	}
	return resp, uploaded
}

// checkBackupVersion checks GET /room_keys/version raw: the current
// version is version, of the megolm backup algorithm, with auth_data as
// uploaded (its device signature still valid), count keys and etag.
func checkBackupVersion(t *testing.T, s *apitest.Server, c *cryptoClient, version id.KeyBackupVersion, authData json.RawMessage, count int, etag string) {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/room_keys/version", c.cli.AccessToken, nil).Expect(t, 200, "")
	var got struct {
		Algorithm string          `json:"algorithm"`
		AuthData  json.RawMessage `json:"auth_data"`
		Count     *int            `json:"count"`
		Etag      *string         `json:"etag"`
		Version   string          `json:"version"`
	}
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("GET /room_keys/version: %s: %v", r.Body, err)
	}
	var gotAuth, wantAuth any
	_ = json.Unmarshal(got.AuthData, &gotAuth)
	_ = json.Unmarshal(authData, &wantAuth)
	if got.Version != string(version) || got.Algorithm != string(id.KeyBackupAlgorithmMegolmBackupV1) ||
		!reflect.DeepEqual(gotAuth, wantAuth) || got.Count == nil || *got.Count != count || got.Etag == nil || *got.Etag == "" ||
		(etag != "" && *got.Etag != etag) {
		t.Fatalf("GET /room_keys/version: %s; want version %s, algorithm %s, auth_data %s, count %d and etag %q",
			r.Body, version, id.KeyBackupAlgorithmMegolmBackupV1, authData, count, etag)
	}
	own := c.mach.OwnIdentity()
	if ok, err := signatures.VerifySignatureJSON(got.AuthData, c.cli.UserID, own.DeviceID.String(), own.SigningKey); !ok || err != nil {
		t.Fatalf("GET /room_keys/version: auth_data %s: %s's signature does not verify (%v)", got.AuthData, c.name, err)
	}
}

// fetchEncrypted returns the room's m.room.encrypted events read with
// GET /messages (backwards from the end), by event ID, content parsed.
func fetchEncrypted(t *testing.T, d *keyDevice, roomID id.RoomID) map[id.EventID]*event.Event {
	t.Helper()
	resp, err := d.cli.Messages(ctx(t), roomID, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Fatalf("%s: Messages(%s): %v", d.name, roomID, err)
	}
	out := map[id.EventID]*event.Event{}
	for _, evt := range resp.Chunk {
		if evt.Type != event.EventEncrypted {
			continue
		}
		if err := evt.Content.ParseRaw(evt.Type); err != nil {
			t.Fatalf("%s: /messages event %s: %v", d.name, evt.ID, err)
		}
		if evt.RoomID != roomID {
			t.Fatalf("%s: /messages event %s has room_id %q; want %s (megolm decryption needs it)", d.name, evt.ID, evt.RoomID, roomID)
		}
		out[evt.ID] = evt
	}
	return out
}

// TestKeyBackupRestoreWithMautrix is the key backup acceptance test: alice
// sets up secret storage and a megolm backup (its private key stored in
// secret storage), backs up the room keys of an encrypted room as messages
// arrive, and a new device of hers, which cannot decrypt the earlier
// messages, unlocks the backup key with the recovery key, restores the
// backup through mautrix and decrypts the messages /messages returns.
func TestKeyBackupRestoreWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		const alicePassword = "alice-password"
		alice := startCryptoClient(t, "alice", register(t, s, "alice", alicePassword))
		bob := startCryptoClient(t, "bob", register(t, s, "bob", "bob-password"))
		for _, c := range []*cryptoClient{alice, bob} {
			c.waitSynced(t)
		}
		roomID := createEncryptedRoom(t, alice, bob)
		var sent []sentMessage
		say := func(from *cryptoClient, body string) {
			t.Helper()
			evtID := from.send(t, roomID, body)
			for _, c := range []*cryptoClient{alice, bob} {
				c.awaitDecrypted(t, roomID, evtID, from.cli.UserID, body)
			}
			sent = append(sent, sentMessage{id: evtID, sender: from.cli.UserID, body: body})
		}
		say(alice, "alice's first secret")
		say(alice, "alice's second secret")

		// 1. Secret storage: a key whose recovery key the user writes
		// down, made the default key (account data).
		ssssKey, err := alice.mach.SSSS.GenerateAndUploadKey(ctx(t), "")
		if err != nil {
			t.Fatalf("SSSS.GenerateAndUploadKey: %v", err)
		}
		if err := alice.mach.SSSS.SetDefaultKeyID(ctx(t), ssssKey.ID); err != nil {
			t.Fatalf("SSSS.SetDefaultKeyID: %v", err)
		}
		recoveryKey := ssssKey.RecoveryKey()

		// 2. The backup: a curve25519 key pair, the public key in a new
		// version's auth_data signed by the device, the private key in
		// secret storage as m.megolm_backup.v1.
		backupKey, err := backup.NewMegolmBackupKey()
		if err != nil {
			t.Fatalf("NewMegolmBackupKey: %v", err)
		}
		authData := backup.MegolmAuthData{PublicKey: id.Ed25519(base64.RawStdEncoding.EncodeToString(backupKey.PublicKey().Bytes()))}
		sig, err := alice.mach.GetAccount().SignJSON(authData)
		if err != nil {
			t.Fatalf("sign auth_data: %v", err)
		}
		authData.Signatures = signatures.NewSingleSignature(alice.cli.UserID, id.KeyAlgorithmEd25519, alice.cli.DeviceID.String(), sig)
		authJSON, err := json.Marshal(authData)
		if err != nil {
			t.Fatal(err)
		}
		created, err := alice.cli.CreateKeyBackupVersion(ctx(t), &mautrix.ReqRoomKeysVersionCreate[backup.MegolmAuthData]{
			Algorithm: id.KeyBackupAlgorithmMegolmBackupV1, AuthData: authData,
		})
		if err != nil || created.Version == "" {
			t.Fatalf("CreateKeyBackupVersion = %+v, %v", created, err)
		}
		version := created.Version
		if err := alice.mach.SSSS.SetEncryptedAccountData(ctx(t), event.AccountDataMegolmBackupKey, backupKey.Bytes(), ssssKey); err != nil {
			t.Fatalf("store the backup key in secret storage: %v", err)
		}
		checkBackupVersion(t, s, alice, version, authJSON, 0, "")

		// 3. Alice's client backs up the keys it holds: her own session.
		first, uploaded := backUpRoomKeys(t, alice, version, backupKey)
		if len(uploaded) == 0 || first.Count != len(uploaded) || first.ETag == "" {
			t.Fatalf("backing up %d sessions: PUT /room_keys/keys answered %+v; want count %d and an etag", len(uploaded), first, len(uploaded))
		}

		// 4. Bob answers (a session of his), alice writes again; her
		// client backs up all its keys again: only the new one counts.
		say(bob, "bob's secret reply")
		say(bob, "bob's second secret")
		say(alice, "alice's third secret")
		second, uploaded := backUpRoomKeys(t, alice, version, backupKey)
		if second.Count != len(uploaded) || second.Count <= first.Count || second.ETag == "" || second.ETag == first.ETag {
			t.Fatalf("backing up %d sessions after bob wrote: %+v (before: %+v); want count %d and a new etag",
				len(uploaded), second, first, len(uploaded))
		}
		again, _ := backUpRoomKeys(t, alice, version, backupKey)
		if again.Count != second.Count || again.ETag != second.ETag {
			t.Fatalf("backing up the same %d sessions again: %+v; want count and etag unchanged: %+v", len(uploaded), again, second)
		}
		checkBackupVersion(t, s, alice, version, authJSON, len(uploaded), second.ETag)
		r := s.Do("GET", "/_matrix/client/v3/room_keys/keys?version="+url.QueryEscape(string(version)), alice.cli.AccessToken, nil).Expect(t, 200, "")
		var all mautrix.RespRoomKeys[json.RawMessage]
		if err := json.Unmarshal(r.Body, &all); err != nil {
			t.Fatalf("GET /room_keys/keys: %s: %v", r.Body, err)
		}
		var backedUp, want []string
		for sid := range all.Rooms[roomID].Sessions {
			backedUp = append(backedUp, sid.String())
		}
		for sid := range uploaded {
			want = append(want, sid.String())
		}
		sort.Strings(backedUp)
		sort.Strings(want)
		if len(all.Rooms) != 1 || !reflect.DeepEqual(backedUp, want) {
			t.Fatalf("GET /room_keys/keys: %s; want the sessions %v of %s", r.Body, want, roomID)
		}
		for _, c := range []*cryptoClient{alice, bob} {
			c.stop()
		}

		// 5. Alice logs in on a new device: it has none of the keys.
		fresh := newKeyDevice(t, "alice's new device", login(t, s, "alice", alicePassword, "alice's new phone"))
		events := fetchEncrypted(t, fresh, roomID)
		for _, m := range sent {
			evt := events[m.id]
			if evt == nil {
				t.Fatalf("/messages did not return %s (%q); encrypted events: %d", m.id, m.body, len(events))
			}
			if sid := evt.Content.AsEncrypted().SessionID; uploaded[sid] != roomID {
				t.Fatalf("%s (%q) is of session %s, which was not backed up (%v)", m.id, m.body, sid, uploaded)
			}
			if _, err := fresh.mach.DecryptMegolmEvent(ctx(t), evt); !errors.Is(err, crypto.NoSessionFound) {
				t.Fatalf("the new device decrypting %s (%q) before restoring: %v; want %v", m.id, m.body, err, crypto.NoSessionFound)
			}
		}

		// 6. It unlocks secret storage with the recovery key, reads the
		// backup key and restores the backup.
		keyID, keyData, err := fresh.mach.SSSS.GetDefaultKeyData(ctx(t))
		if err != nil || keyID != ssssKey.ID {
			t.Fatalf("SSSS.GetDefaultKeyData = %q, %v; want key %s", keyID, err, ssssKey.ID)
		}
		unlocked, err := keyData.VerifyRecoveryKey(keyID, recoveryKey)
		if err != nil {
			t.Fatalf("VerifyRecoveryKey: %v", err)
		}
		secret, err := fresh.mach.SSSS.GetDecryptedAccountData(ctx(t), event.AccountDataMegolmBackupKey, unlocked)
		if err != nil {
			t.Fatalf("read m.megolm_backup.v1 from secret storage: %v", err)
		}
		restoredKey, err := backup.MegolmBackupKeyFromBytes(secret)
		if err != nil || !bytes.Equal(restoredKey.Bytes(), backupKey.Bytes()) {
			t.Fatalf("backup key from secret storage: %v (equal: %v)", err, err == nil && bytes.Equal(restoredKey.Bytes(), backupKey.Bytes()))
		}
		restored, err := fresh.mach.DownloadAndStoreLatestKeyBackup(ctx(t), restoredKey)
		if err != nil || restored != version {
			t.Fatalf("DownloadAndStoreLatestKeyBackup = %q, %v; want version %s", restored, err, version)
		}
		for sid, room := range uploaded {
			sess, err := fresh.mach.CryptoStore.GetGroupSession(ctx(t), room, sid)
			if err != nil || sess == nil || sess.KeyBackupVersion != version {
				t.Fatalf("the new device's store after restoring: session %s = %v, %v; want it from backup %s", sid, sess, err, version)
			}
		}

		// 7. It decrypts every message sent before it existed.
		for _, m := range sent {
			decrypted, err := fresh.mach.DecryptMegolmEvent(ctx(t), events[m.id])
			if err != nil {
				t.Fatalf("the new device decrypting %s (%q) after restoring: %v", m.id, m.body, err)
			}
			msg := decrypted.Content.AsMessage()
			if decrypted.Type != event.EventMessage || decrypted.Sender != m.sender || msg.MsgType != event.MsgText || msg.Body != m.body {
				t.Fatalf("the new device decrypted %s as %s from %s: %s %q; want m.room.message from %s: m.text %q",
					m.id, decrypted.Type.Type, decrypted.Sender, msg.MsgType, msg.Body, m.sender, m.body)
			}
		}
		t.Logf("restored %d sessions from backup %s and decrypted %d earlier messages", len(uploaded), version, len(sent))
	})
}
