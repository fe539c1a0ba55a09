//go:build goolm

// This file needs the pure-Go olm implementation: without the goolm tag,
// mautrix's crypto package links libolm through cgo.

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/signatures"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/internal/apitest"
)

// apiExchange is one request a crypto client made (other than /sync) and
// the server's answer.
type apiExchange struct {
	method, path string
	reqBody      []byte
	status       int
	respBody     []byte
	err          error
}

// apiLog is the HTTP transport of a crypto client: it keeps every request
// other than /sync (keys, to-device, sends) with its answer, and passes
// /sync on to a syncRecorder, so that a failure can show exactly which
// endpoint answered what.
type apiLog struct {
	next *syncRecorder

	mu  sync.Mutex
	log []*apiExchange
}

// RoundTrip implements http.RoundTripper.
func (l *apiLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/sync") {
		return l.next.RoundTrip(req)
	}
	ex := &apiExchange{method: req.Method, path: req.URL.Path}
	if req.URL.RawQuery != "" {
		ex.path += "?" + req.URL.RawQuery
	}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		ex.reqBody = body
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := l.next.RoundTrip(req)
	if err == nil {
		ex.status = resp.StatusCode
		var body []byte
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			resp = nil
		} else {
			ex.respBody = body
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	ex.err = err
	l.mu.Lock()
	l.log = append(l.log, ex)
	l.mu.Unlock()
	return resp, err
}

// last returns the last exchange whose path (without the query) holds
// part.
func (l *apiLog) last(part string) (apiExchange, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.log) - 1; i >= 0; i-- {
		if path, _, _ := strings.Cut(l.log[i].path, "?"); strings.Contains(path, part) {
			return *l.log[i], true
		}
	}
	return apiExchange{}, false
}

// dump logs the last n exchanges.
func (l *apiLog) dump(t *testing.T, who string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := func(b []byte) string {
		if len(b) > 3000 {
			return string(b[:3000]) + "…"
		}
		return string(b)
	}
	for _, ex := range l.log[max(0, len(l.log)-n):] {
		t.Logf("%s %s %s → %d (err %v)\n  request:  %s\n  response: %s", who, ex.method, ex.path, ex.status, ex.err, cut(ex.reqBody), cut(ex.respBody))
	}
}

// lineLog keeps the last lines a client's crypto machine logged.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

// Write implements io.Writer (zerolog writes one line per call).
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > 4000 {
		l.lines = l.lines[len(l.lines)-2000:]
	}
	return len(p), nil
}

// dump logs the last n lines.
func (l *lineLog) dump(t *testing.T, who string, n int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s crypto log (last %d lines):\n%s", who, n, strings.Join(l.lines[max(0, len(l.lines)-n):], "\n"))
}

// olmHelper is the mautrix.CryptoHelper of a test client: what mautrix's
// cryptohelper package does, on an in-memory crypto store. (cryptohelper
// itself imports a cgo SQLite driver through go.mau.fi/util's litestream.)
// SendMessageEvent encrypts through it in rooms with m.room.encryption.
type olmHelper struct {
	mach    *crypto.OlmMachine
	members func(id.RoomID) []id.UserID // joined and invited
}

var _ mautrix.CryptoHelper = (*olmHelper)(nil)

// Init implements mautrix.CryptoHelper; the machine is set up by
// startCryptoClient.
func (h *olmHelper) Init(context.Context) error { return nil }

// Encrypt encrypts content with the room's outbound megolm session,
// creating and sharing one with the room's joined and invited members'
// devices first when there is none (or it was invalidated by a membership
// or device change).
func (h *olmHelper) Encrypt(ctx context.Context, roomID id.RoomID, evtType event.Type, content any) (*event.EncryptedEventContent, error) {
	enc, err := h.mach.EncryptMegolmEvent(ctx, roomID, evtType, content)
	if err == nil {
		return enc, nil
	}
	if !errors.Is(err, crypto.NoGroupSession) && !errors.Is(err, crypto.SessionExpired) && !errors.Is(err, crypto.SessionNotShared) {
		return nil, err
	}
	users := h.members(roomID)
	if err := h.mach.ShareGroupSession(ctx, roomID, users); err != nil {
		return nil, fmt.Errorf("share the group session of %s with %v: %w", roomID, users, err)
	}
	return h.mach.EncryptMegolmEvent(ctx, roomID, evtType, content)
}

// Decrypt implements mautrix.CryptoHelper.
func (h *olmHelper) Decrypt(ctx context.Context, evt *event.Event) (*event.Event, error) {
	return h.mach.DecryptMegolmEvent(ctx, evt)
}

// WaitForSession implements mautrix.CryptoHelper.
func (h *olmHelper) WaitForSession(ctx context.Context, roomID id.RoomID, senderKey id.SenderKey, sessionID id.SessionID, timeout time.Duration) bool {
	return h.mach.WaitForSession(ctx, roomID, senderKey, sessionID, timeout)
}

// RequestSession implements mautrix.CryptoHelper. Key requests (and
// forwarding between one's own devices) need verified devices, which this
// test does not set up: it does nothing.
func (h *olmHelper) RequestSession(context.Context, id.RoomID, id.SenderKey, id.SessionID, id.UserID, id.DeviceID) {
}

// undecryptable is an encrypted event a client gave up on.
type undecryptable struct {
	evt *event.Event
	err error
}

// cryptoClient is a logged-in device with an olm machine, running
// mautrix's sync loop: its keys are uploaded, to-device messages, device
// list changes and one-time key counts go to the machine, and encrypted
// room events are decrypted and dispatched to the handlers again.
type cryptoClient struct {
	name string
	cli  *mautrix.Client
	mach *crypto.OlmMachine
	api  *apiLog
	rec  *syncRecorder
	logs *lineLog

	members, messages chan seen
	failures          chan undecryptable
	synced            chan struct{} // closed after the first sync was processed

	// membership is every room's members as the client's /sync told it.
	// (mautrix v0.26.0's MemoryStateStore returns members who left among
	// the "joined or invited" ones, and hands out its maps unlocked.)
	mu         sync.Mutex
	membership map[id.RoomID]map[id.UserID]event.Membership

	ctx     context.Context
	cancel  context.CancelFunc
	waiters sync.WaitGroup // goroutines waiting for a megolm session
	loopRun
	stop func()
}

// startCryptoClient gives cli a fresh olm account, uploads its device and
// one-time keys, and starts its sync loop (no filter: a crypto client needs
// every member of its encrypted rooms).
func startCryptoClient(t *testing.T, name string, cli *mautrix.Client) *cryptoClient {
	t.Helper()
	c := &cryptoClient{
		name: name, cli: cli, logs: &lineLog{},
		members: make(chan seen, 1000), messages: make(chan seen, 1000), failures: make(chan undecryptable, 100),
		synced:     make(chan struct{}),
		membership: map[id.RoomID]map[id.UserID]event.Membership{},
	}
	c.rec = &syncRecorder{next: http.DefaultTransport}
	c.api = &apiLog{next: c.rec}
	cli.Client = &http.Client{Timeout: syncHTTPTimeout, Transport: c.api}
	t.Cleanup(func() {
		if t.Failed() {
			c.api.dump(t, name, 30)
			c.rec.dump(t, name, 4)
			c.logs.dump(t, name, 80)
		}
	})

	state := newStateStore()
	cli.StateStore = state
	log := zerolog.New(zerolog.ConsoleWriter{Out: c.logs, NoColor: true, TimeFormat: "15:04:05.000"}).
		Level(zerolog.DebugLevel).With().Timestamp().Str("client", name).Logger()
	c.mach = crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state)
	if err := c.mach.Load(ctx(t)); err != nil {
		t.Fatalf("%s: load the olm account: %v", name, err)
	}
	if err := c.mach.ShareKeys(ctx(t), -1); err != nil {
		t.Fatalf("%s: upload device and one-time keys: %v", name, err)
	}
	cli.Crypto = &olmHelper{mach: c.mach, members: c.joinedOrInvited}

	c.ctx, c.cancel = context.WithCancel(context.Background())
	syncer := mautrix.NewDefaultSyncer()
	var once sync.Once
	cli.Syncer = failFastSyncer{DefaultSyncer: syncer, processed: func() { once.Do(func() { close(c.synced) }) }}
	pass := func(ch chan seen) mautrix.EventHandler { return passTo(c.ctx, ch) }
	// cryptohelper's order: to-device events, device lists and key counts
	// first, then the state store, then membership changes (which
	// invalidate the room's outbound session), then decryption.
	syncer.OnSync(c.mach.ProcessSyncResponse)
	syncer.OnSync(c.trackInitialMembers)
	syncer.OnEvent(cli.StateStoreSyncHandler)
	syncer.OnEventType(event.StateMember, c.trackMembership)
	syncer.OnEventType(event.StateMember, c.mach.HandleMemberEvent)
	syncer.OnEventType(event.StateMember, pass(c.members))
	syncer.OnEventType(event.EventEncrypted, func(ctx context.Context, evt *event.Event) { c.decrypt(ctx, syncer, evt) })
	syncer.OnEventType(event.EventMessage, pass(c.messages))

	c.run(c.ctx, cli)
	var stopOnce sync.Once
	c.stop = func() {
		stopOnce.Do(func() {
			if !c.halt(t, name, cli, c.cancel) {
				return
			}
			c.waiters.Wait()
			c.mach.Destroy()
			if c.failed() {
				t.Errorf("%s: the sync loop ended with %v", name, c.loopErr)
			}
		})
	}
	t.Cleanup(c.stop)
	return c
}

// trackMembership records a member event in c.membership.
func (c *cryptoClient) trackMembership(_ context.Context, evt *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.membership[evt.RoomID]
	if room == nil {
		room = map[id.UserID]event.Membership{}
		c.membership[evt.RoomID] = room
	}
	room[id.UserID(evt.GetStateKey())] = evt.Content.AsMember().Membership
}

// joinedOrInvited returns the room's joined and invited members.
func (c *cryptoClient) joinedOrInvited(roomID id.RoomID) []id.UserID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []id.UserID
	for u, m := range c.membership[roomID] {
		if m == event.MembershipJoin || m == event.MembershipInvite {
			out = append(out, u)
		}
	}
	return out
}

// trackInitialMembers fetches, after the initial sync, the device keys of
// everyone in the client's encrypted rooms, the user's own other devices
// included, as the spec asks a client to ("Tracking the device list for a
// user": device_lists only reports changes after a since token). mautrix
// leaves this to the application: without it, a new device would not know
// the user's older devices until one of them changes.
func (c *cryptoClient) trackInitialMembers(ctx context.Context, resp *mautrix.RespSync, since string) bool {
	if since != "" {
		return true
	}
	users := map[id.UserID]bool{c.cli.UserID: true}
	for _, room := range resp.Rooms.Join {
		encrypted := false
		members := map[id.UserID]bool{}
		for _, evt := range append(append([]*event.Event{}, room.State.Events...), room.Timeline.Events...) {
			switch {
			case evt.StateKey == nil:
			case evt.Type == event.StateEncryption:
				encrypted = true
			case evt.Type == event.StateMember:
				if m, _ := evt.Content.Raw["membership"].(string); m == string(event.MembershipJoin) {
					members[id.UserID(*evt.StateKey)] = true
				} else {
					delete(members, id.UserID(*evt.StateKey))
				}
			}
		}
		if encrypted {
			for u := range members {
				users[u] = true
			}
		}
	}
	list := make([]id.UserID, 0, len(users))
	for u := range users {
		list = append(list, u)
	}
	if _, err := c.mach.FetchKeys(ctx, list, true); err != nil {
		c.mach.Log.Error().Err(err).Msg("fetching the keys of the encrypted rooms' members after the initial sync failed")
	}
	return true
}

// decrypt decrypts an m.room.encrypted event and dispatches the result to
// the syncer's handlers, as cryptohelper does. When the room key has not
// arrived yet (it may come in a later /sync), it waits for it in the
// background; an event that cannot be decrypted goes to c.failures.
func (c *cryptoClient) decrypt(ctx context.Context, syncer *mautrix.DefaultSyncer, evt *event.Event) {
	dispatch := func(ctx context.Context) {
		decrypted, err := c.mach.DecryptMegolmEvent(ctx, evt)
		if err != nil {
			select {
			case c.failures <- undecryptable{evt: evt, err: err}:
			case <-c.ctx.Done():
			}
			return
		}
		decrypted.Mautrix.EventSource = evt.Mautrix.EventSource | event.SourceDecrypted
		syncer.Dispatch(ctx, decrypted)
	}
	if _, err := c.mach.DecryptMegolmEvent(ctx, evt); !errors.Is(err, crypto.NoSessionFound) {
		dispatch(ctx)
		return
	}
	content := evt.Content.AsEncrypted()
	c.waiters.Add(1)
	go func() {
		defer c.waiters.Done()
		c.mach.WaitForSession(c.ctx, evt.RoomID, content.SenderKey, content.SessionID, 2*syncWait)
		if c.ctx.Err() == nil {
			dispatch(c.ctx)
		}
	}()
}

// waitSynced waits until the loop has processed its initial sync.
func (c *cryptoClient) waitSynced(t *testing.T) {
	t.Helper()
	select {
	case <-c.synced:
	case <-c.stopped:
		t.Fatalf("%s: the sync loop ended before its initial sync was processed: %v", c.name, c.loopErr)
	case <-time.After(syncWait):
		t.Fatalf("%s: no sync was processed within %v", c.name, syncWait)
	}
}

// awaitMember waits until the client's sync loop has handled user's
// membership in roomID (and so its state store holds it).
func (c *cryptoClient) awaitMember(t *testing.T, roomID id.RoomID, user id.UserID, membership event.Membership) {
	t.Helper()
	deadline := time.After(syncWait)
	for {
		select {
		case s := <-c.members:
			if s.evt.RoomID == roomID && s.evt.GetStateKey() == user.String() && s.evt.Content.AsMember().Membership == membership {
				return
			}
		case <-c.stopped:
			t.Fatalf("%s waiting for %s's %s: the sync loop ended: %v", c.name, user, membership, c.loopErr)
		case <-deadline:
			t.Fatalf("%s: %s's %s in %s not seen within %v", c.name, user, membership, roomID, syncWait)
		}
	}
}

// awaitDecrypted waits until the client has decrypted the message eventID
// and checks it: sent encrypted by sender in roomID, with the text body.
// Other messages are skipped; a failure to decrypt eventID fails the test.
func (c *cryptoClient) awaitDecrypted(t *testing.T, roomID id.RoomID, eventID id.EventID, sender id.UserID, body string) {
	t.Helper()
	deadline := time.After(2 * syncWait)
	for {
		select {
		case s := <-c.messages:
			evt := s.evt
			if evt.ID != eventID {
				continue
			}
			msg := evt.Content.AsMessage()
			if !evt.Mautrix.WasEncrypted || evt.Mautrix.EventSource&event.SourceDecrypted == 0 {
				t.Fatalf("%s: message %s (%q) reached the client unencrypted (%s)", c.name, eventID, msg.Body, evt.Mautrix.EventSource)
			}
			if evt.RoomID != roomID || evt.Sender != sender || msg.MsgType != event.MsgText || msg.Body != body {
				t.Fatalf("%s decrypted %s in %s from %s: %s %q; want %s from %s: m.text %q",
					c.name, eventID, evt.RoomID, evt.Sender, msg.MsgType, msg.Body, roomID, sender, body)
			}
			return
		case f := <-c.failures:
			if f.evt.ID == eventID {
				t.Fatalf("%s could not decrypt %s from %s: %v", c.name, eventID, f.evt.Sender, f.err)
			}
			t.Logf("%s could not decrypt %s from %s (not the awaited event): %v", c.name, f.evt.ID, f.evt.Sender, f.err)
		case <-c.stopped:
			t.Fatalf("%s waiting for %s: the sync loop ended: %v", c.name, eventID, c.loopErr)
		case <-deadline:
			t.Fatalf("%s: message %s (%q from %s) not decrypted within %v", c.name, eventID, body, sender, 2*syncWait)
		}
	}
}

// send sends an m.text message through the client, which encrypts it.
func (c *cryptoClient) send(t *testing.T, roomID id.RoomID, body string) id.EventID {
	t.Helper()
	resp, err := c.cli.SendText(ctx(t), roomID, body)
	if err != nil {
		t.Fatalf("%s: SendText(%q): %v", c.name, body, err)
	}
	if sent, _ := c.api.last("/send/"); !strings.Contains(sent.path, "/send/"+event.EventEncrypted.Type+"/") {
		t.Fatalf("%s: %q was sent as %s, want m.room.encrypted", c.name, body, sent.path)
	}
	return resp.EventID
}

// awaitDevice waits until the client's crypto store holds user's device:
// it learnt of the device through /sync's device_lists and /keys/query.
func (c *cryptoClient) awaitDevice(t *testing.T, user id.UserID, device id.DeviceID, identity *id.Device) {
	t.Helper()
	deadline := time.Now().Add(syncWait)
	for {
		d, err := c.mach.CryptoStore.GetDevice(ctx(t), user, device)
		if err != nil {
			t.Fatalf("%s: crypto store: %v", c.name, err)
		}
		if d != nil {
			if d.IdentityKey != identity.IdentityKey || d.SigningKey != identity.SigningKey {
				t.Fatalf("%s knows %s's device %s with keys %s / %s, want %s / %s", c.name, user, device,
					d.IdentityKey, d.SigningKey, identity.IdentityKey, identity.SigningKey)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not learn of %s's new device %s within %v (device_lists.changed in /sync, then /keys/query)",
				c.name, user, device, syncWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// uploadedDeviceKeys returns the device keys the client uploaded.
func (c *cryptoClient) uploadedDeviceKeys(t *testing.T) json.RawMessage {
	t.Helper()
	c.api.mu.Lock()
	defer c.api.mu.Unlock()
	for _, ex := range c.api.log {
		var req struct {
			DeviceKeys json.RawMessage `json:"device_keys"`
		}
		if strings.HasSuffix(ex.path, "/keys/upload") && json.Unmarshal(ex.reqBody, &req) == nil && len(req.DeviceKeys) > 0 {
			return req.DeviceKeys
		}
	}
	t.Fatalf("%s never uploaded device keys", c.name)
	return nil
}

// awaitDeviceListLeft waits until one of the client's /sync answers lists
// user in device_lists.left.
func (c *cryptoClient) awaitDeviceListLeft(t *testing.T, user id.UserID) {
	t.Helper()
	deadline := time.Now().Add(syncWait)
	for {
		c.rec.mu.Lock()
		for _, ex := range c.rec.log {
			var resp struct {
				DeviceLists struct {
					Left []id.UserID `json:"left"`
				} `json:"device_lists"`
			}
			if json.Unmarshal(ex.body, &resp) == nil && slices.Contains(resp.DeviceLists.Left, user) {
				c.rec.mu.Unlock()
				return
			}
		}
		c.rec.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no /sync answer listed %s in device_lists.left within %v", c.name, user, syncWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkToDeviceOnce fails if an incremental /sync of the client delivered
// the same to-device message twice: the server must delete messages once
// the client has synced past them.
func (c *cryptoClient) checkToDeviceOnce(t *testing.T) {
	t.Helper()
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	seenAt := map[string]string{}
	for _, ex := range c.rec.log {
		var resp struct {
			ToDevice struct {
				Events []json.RawMessage `json:"events"`
			} `json:"to_device"`
		}
		if ex.status != http.StatusOK || json.Unmarshal(ex.body, &resp) != nil {
			continue
		}
		for _, evt := range resp.ToDevice.Events {
			if first, dup := seenAt[string(evt)]; dup {
				t.Errorf("%s: /sync?%s delivered a to-device message again that /sync?%s delivered: %s", c.name, ex.query, first, evt)
				continue
			}
			seenAt[string(evt)] = ex.query
		}
	}
}

// checkDeviceKeys checks through raw HTTP that /keys/query returns the
// devices' keys as their clients uploaded them, signed, with the device
// display names in unsigned; devices are all of one user's devices.
func checkDeviceKeys(t *testing.T, s *apitest.Server, token string, user id.UserID, devices map[*cryptoClient]string) {
	t.Helper()
	r := s.Do("POST", "/_matrix/client/v3/keys/query", token, map[string]any{
		"device_keys": map[string][]string{user.String(): {}},
	}).Expect(t, 200, "")
	var resp struct {
		DeviceKeys map[id.UserID]map[id.DeviceID]json.RawMessage `json:"device_keys"`
		Failures   map[string]any                                `json:"failures"`
	}
	if err := json.Unmarshal(r.Body, &resp); err != nil {
		t.Fatalf("/keys/query answer %s: %v", r.Body, err)
	}
	if len(resp.DeviceKeys[user]) != len(devices) || len(resp.Failures) != 0 {
		t.Fatalf("/keys/query for %s: %s; want %d devices and no failures", user, r.Body, len(devices))
	}
	for c, displayName := range devices {
		own := c.mach.OwnIdentity()
		raw, ok := resp.DeviceKeys[user][own.DeviceID]
		if !ok {
			t.Fatalf("/keys/query for %s: %s; device %s (%s) missing", user, r.Body, own.DeviceID, c.name)
		}
		var dk mautrix.DeviceKeys
		if err := json.Unmarshal(raw, &dk); err != nil {
			t.Fatalf("device keys %s: %v", raw, err)
		}
		if dk.UserID != user || dk.DeviceID != own.DeviceID ||
			dk.Keys.GetEd25519(own.DeviceID) != own.SigningKey || dk.Keys.GetCurve25519(own.DeviceID) != own.IdentityKey {
			t.Errorf("/keys/query: %s's device keys %s; want user %s, device %s, ed25519 %s, curve25519 %s",
				c.name, raw, user, own.DeviceID, own.SigningKey, own.IdentityKey)
		}
		var got, uploaded map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("device keys %s: %v", raw, err)
		}
		delete(got, "unsigned")
		if up := c.uploadedDeviceKeys(t); json.Unmarshal(up, &uploaded) != nil || !reflect.DeepEqual(got, uploaded) {
			t.Errorf("/keys/query: %s's device keys %s; want them as uploaded: %s", c.name, raw, up)
		}
		if ok, err := signatures.VerifySignatureJSON(raw, user, own.DeviceID.String(), own.SigningKey); !ok || err != nil {
			t.Errorf("/keys/query: %s's device keys %s: the device's signature does not verify (%v)", c.name, raw, err)
		}
		if got, _ := dk.Unsigned["device_display_name"].(string); got != displayName {
			t.Errorf("/keys/query: %s's unsigned %v; want device_display_name %q", c.name, dk.Unsigned, displayName)
		}
	}

	// One device asked for by ID: only that one comes back.
	for c := range devices {
		r := s.Do("POST", "/_matrix/client/v3/keys/query", token, map[string]any{
			"device_keys": map[string][]string{user.String(): {c.cli.DeviceID.String()}},
		}).Expect(t, 200, "")
		got, _ := r.JSON["device_keys"].(map[string]any)[user.String()].(map[string]any)
		if _, ok := got[c.cli.DeviceID.String()]; !ok || len(got) != 1 {
			t.Errorf("/keys/query for %s's device %s only: %s", user, c.cli.DeviceID, r.Body)
		}
	}
}

// checkOneTimeKeyCount checks through a raw /sync of the client's device
// that device_one_time_keys_count.signed_curve25519 is the count the
// server answered the client's last /keys/upload with, and not zero.
func checkOneTimeKeyCount(t *testing.T, s *apitest.Server, c *cryptoClient) {
	t.Helper()
	// The client's own loop may upload more keys (or others claim some)
	// between reading its last upload and the raw /sync: compare again
	// until the two agree or syncWait has passed.
	deadline := time.Now().Add(syncWait)
	for {
		up, ok := c.api.last("/keys/upload")
		if !ok || up.status != http.StatusOK {
			t.Fatalf("%s: no successful /keys/upload: %+v", c.name, up)
		}
		var uploaded mautrix.RespUploadKeys
		if err := json.Unmarshal(up.respBody, &uploaded); err != nil {
			t.Fatalf("%s: /keys/upload answer %s: %v", c.name, up.respBody, err)
		}
		want := uploaded.OneTimeKeyCounts.SignedCurve25519
		if want <= 0 {
			t.Fatalf("%s: /keys/upload answered %s after the client uploaded one-time keys", c.name, up.respBody)
		}
		r := s.Do("GET", "/_matrix/client/v3/sync?timeout=0", c.cli.AccessToken, nil).Expect(t, 200, "")
		if _, ok := r.JSON["device_unused_fallback_key_types"].([]any); !ok {
			t.Fatalf("%s: /sync device_unused_fallback_key_types %v; want a list", c.name, r.JSON["device_unused_fallback_key_types"])
		}
		counts, _ := r.JSON["device_one_time_keys_count"].(map[string]any)
		got, _ := counts["signed_curve25519"].(float64)
		if int(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /sync device_one_time_keys_count %v; want signed_curve25519 %d as /keys/upload answered", c.name, counts, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkEncryptedOnServer checks that the server holds eventID as an
// m.room.encrypted megolm event with no plaintext.
func checkEncryptedOnServer(t *testing.T, s *apitest.Server, token string, roomID id.RoomID, eventID id.EventID, plaintext string) {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(roomID.String())+"/event/"+url.PathEscape(eventID.String()), token, nil).
		Expect(t, 200, "")
	content, _ := r.JSON["content"].(map[string]any)
	if r.String("type") != event.EventEncrypted.Type || content["algorithm"] != string(id.AlgorithmMegolmV1) ||
		content["ciphertext"] == "" || content["session_id"] == "" || content["body"] != nil || bytes.Contains(r.Body, []byte(plaintext)) {
		t.Fatalf("event %s on the server: %s; want an m.room.encrypted megolm event without the plaintext", eventID, r.Body)
	}
}

// TestEncryptedRoomWithMautrixCrypto is the acceptance test of end-to-end
// encryption: mautrix-go clients with the pure-Go olm implementation upload
// keys, share megolm sessions over olm-encrypted to-device messages, and
// decrypt each other's messages in an encrypted room; a device that logs in
// later receives the keys of messages sent after it appeared.
func TestEncryptedRoomWithMautrixCrypto(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		const alicePassword = "alice-password"
		alice := startCryptoClient(t, "alice", register(t, s, "alice", alicePassword))
		bob := startCryptoClient(t, "bob", register(t, s, "bob", "bob-password"))
		carol := startCryptoClient(t, "carol", register(t, s, "carol", "carol-password"))
		for _, c := range []*cryptoClient{alice, bob, carol} {
			c.waitSynced(t)
		}

		// The keys are on the server, as each client uploaded them.
		checkDeviceKeys(t, s, bob.cli.AccessToken, alice.cli.UserID, map[*cryptoClient]string{alice: "first device"})
		checkDeviceKeys(t, s, alice.cli.AccessToken, bob.cli.UserID, map[*cryptoClient]string{bob: "first device"})
		for _, c := range []*cryptoClient{alice, bob, carol} {
			checkOneTimeKeyCount(t, s, c)
		}

		// 1. Alice creates an encrypted room and invites bob, who joins.
		empty := ""
		created, err := alice.cli.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset: "private_chat", Name: "Secret room", Invite: []id.UserID{bob.cli.UserID},
			InitialState: []*event.Event{{
				Type: event.StateEncryption, StateKey: &empty,
				Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
			}},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		roomID := created.RoomID
		bob.awaitMember(t, roomID, bob.cli.UserID, event.MembershipInvite)
		if _, err := bob.cli.JoinRoomByID(ctx(t), roomID); err != nil {
			t.Fatalf("bob's JoinRoomByID: %v", err)
		}
		for _, c := range []*cryptoClient{alice, bob} {
			c.awaitMember(t, roomID, bob.cli.UserID, event.MembershipJoin)
			if enc, err := c.cli.StateStore.IsEncrypted(ctx(t), roomID); err != nil || !enc {
				t.Fatalf("%s's state store: room encrypted %v, %v; want the m.room.encryption from initial_state", c.name, enc, err)
			}
		}

		// 2. Alice and bob exchange encrypted messages.
		hello := alice.send(t, roomID, "hello bob, this is secret")
		checkEncryptedOnServer(t, s, bob.cli.AccessToken, roomID, hello, "hello bob")
		bob.awaitDecrypted(t, roomID, hello, alice.cli.UserID, "hello bob, this is secret")
		alice.awaitDecrypted(t, roomID, hello, alice.cli.UserID, "hello bob, this is secret")
		reply := bob.send(t, roomID, "hi alice, got it")
		checkEncryptedOnServer(t, s, alice.cli.AccessToken, roomID, reply, "got it")
		alice.awaitDecrypted(t, roomID, reply, bob.cli.UserID, "hi alice, got it")

		// 3. Carol joins; all three read each other.
		if _, err := alice.cli.InviteUser(ctx(t), roomID, &mautrix.ReqInviteUser{UserID: carol.cli.UserID}); err != nil {
			t.Fatalf("InviteUser(carol): %v", err)
		}
		carol.awaitMember(t, roomID, carol.cli.UserID, event.MembershipInvite)
		if _, err := carol.cli.JoinRoomByID(ctx(t), roomID); err != nil {
			t.Fatalf("carol's JoinRoomByID: %v", err)
		}
		three := []*cryptoClient{alice, bob, carol}
		for _, c := range three {
			c.awaitMember(t, roomID, carol.cli.UserID, event.MembershipJoin)
		}
		for i, sender := range []*cryptoClient{carol, alice, bob} {
			body := fmt.Sprintf("message %d from %s to everyone", i, sender.name)
			evtID := sender.send(t, roomID, body)
			for _, c := range three {
				c.awaitDecrypted(t, roomID, evtID, sender.cli.UserID, body)
			}
		}

		// 4. Alice logs in on a second device. Her room-mates' clients and
		// her first device learn of it through /sync's device_lists and
		// share the keys of later messages with it.
		alice2 := startCryptoClient(t, "alice2", login(t, s, "alice", alicePassword, "alice's laptop"))
		alice2.waitSynced(t)
		checkDeviceKeys(t, s, carol.cli.AccessToken, alice.cli.UserID, map[*cryptoClient]string{alice: "first device", alice2: "alice's laptop"})
		checkOneTimeKeyCount(t, s, alice2)
		for _, c := range three {
			c.awaitDevice(t, alice.cli.UserID, alice2.cli.DeviceID, alice2.mach.OwnIdentity())
		}
		four := []*cryptoClient{alice, alice2, bob, carol}
		for _, sender := range []*cryptoClient{bob, alice2, carol, alice} {
			body := fmt.Sprintf("%s writes after alice's second login", sender.name)
			evtID := sender.send(t, roomID, body)
			for _, c := range four {
				c.awaitDecrypted(t, roomID, evtID, sender.cli.UserID, body)
			}
		}

		// Carol leaves: her room-mates' /sync lists her in
		// device_lists.left, and the next room key is not shared with her.
		if _, err := carol.cli.LeaveRoom(ctx(t), roomID); err != nil {
			t.Fatalf("carol's LeaveRoom: %v", err)
		}
		stay := []*cryptoClient{alice, alice2, bob}
		for _, c := range stay {
			c.awaitMember(t, roomID, carol.cli.UserID, event.MembershipLeave)
			c.awaitDeviceListLeft(t, carol.cli.UserID)
		}
		body := "bob writes after carol left"
		evtID := bob.send(t, roomID, body)
		for _, c := range stay {
			c.awaitDecrypted(t, roomID, evtID, bob.cli.UserID, body)
		}
		share, _ := bob.api.last("/sendToDevice/m.room.encrypted/")
		var shared struct {
			Messages map[id.UserID]map[id.DeviceID]json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(share.reqBody, &shared); err != nil || len(shared.Messages) != 1 ||
			len(shared.Messages[alice.cli.UserID]) != 2 {
			t.Errorf("bob shared the room key after carol left with %s; want alice's two devices only", share.reqBody)
		}

		for _, c := range four {
			c.stop()
			c.checkToDeviceOnce(t)
		}
	})
}
