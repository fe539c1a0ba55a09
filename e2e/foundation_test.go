package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"
	"maunium.net/go/mautrix/synapseadmin"

	"github.com/aula-chat/aula/internal/apitest"
)

// callTimeout bounds every client call, so a server bug fails the test
// instead of hanging it.
const callTimeout = 20 * time.Second

// ctx returns a context for one client call.
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return c
}

// newClient returns a mautrix client for the server, logged in as userID
// with token when they are not empty.
func newClient(t *testing.T, s *apitest.Server, userID id.UserID, token string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(s.URL, userID, token)
	if err != nil {
		t.Fatalf("mautrix.NewClient(%s): %v", s.URL, err)
	}
	cli.Client = &http.Client{Timeout: callTimeout}
	return cli
}

// register creates an account with m.login.dummy through the client and
// returns the client logged in as it.
func register(t *testing.T, s *apitest.Server, localpart, password string) *mautrix.Client {
	t.Helper()
	cli := newClient(t, s, "", "")
	resp, err := cli.RegisterDummy(ctx(t), &mautrix.ReqRegister{
		Username: localpart, Password: password, InitialDeviceDisplayName: "first device",
	})
	if err != nil {
		t.Fatalf("RegisterDummy(%s): %v", localpart, err)
	}
	want := id.NewUserID(localpart, apitest.ServerName)
	if resp.UserID != want || resp.AccessToken == "" || resp.DeviceID == "" {
		t.Fatalf("RegisterDummy = %+v, want user %s with a token and a device", resp, want)
	}
	cli.SetCredentials(resp.UserID, resp.AccessToken)
	cli.DeviceID = resp.DeviceID
	return cli
}

// login logs in with a password through a fresh client; user is a
// localpart or a full user ID.
func login(t *testing.T, s *apitest.Server, user, password, deviceName string) *mautrix.Client {
	t.Helper()
	cli := newClient(t, s, "", "")
	resp, err := cli.Login(ctx(t), &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:                 password,
		InitialDeviceDisplayName: deviceName,
		StoreCredentials:         true,
	})
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	want := id.UserID(user)
	if !strings.HasPrefix(user, "@") {
		want = id.NewUserID(user, apitest.ServerName)
	}
	if resp.UserID != want || resp.AccessToken == "" || resp.DeviceID == "" {
		t.Fatalf("Login = %+v", resp)
	}
	if cli.AccessToken != resp.AccessToken || cli.DeviceID != resp.DeviceID {
		t.Fatalf("StoreCredentials did not store the login: %+v", cli)
	}
	return cli
}

// passwordAuth is the auth dict of the m.login.password stage, in the
// current (identifier) form.
type passwordAuth struct {
	mautrix.BaseAuthData
	Identifier mautrix.UserIdentifier `json:"identifier"`
	Password   string                 `json:"password"`
}

func newPasswordAuth(session string, user id.UserID, password string) passwordAuth {
	return passwordAuth{
		BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: session},
		Identifier:   mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user.String()},
		Password:     password,
	}
}

// uiaChallenge sends a request without auth and decodes the 401
// user-interactive authentication answer.
func uiaChallenge(t *testing.T, cli *mautrix.Client, method, url string, body any) *mautrix.RespUserInteractive {
	t.Helper()
	raw, err := cli.MakeRequest(ctx(t), method, url, body, nil)
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusUnauthorized) {
		t.Fatalf("%s %s without auth: got %v, want a 401 UIA challenge", method, url, err)
	}
	var uia mautrix.RespUserInteractive
	if err := json.Unmarshal(raw, &uia); err != nil {
		t.Fatalf("decode UIA challenge %s: %v", raw, err)
	}
	if uia.Session == "" || !uia.HasSingleStageFlow(mautrix.AuthTypePassword) {
		t.Fatalf("UIA challenge %s: want a session and a single-stage m.login.password flow", raw)
	}
	return &uia
}

// wantErr fails unless err carries the Matrix error code of want.
func wantErr(t *testing.T, what string, err error, want mautrix.RespError) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %s", what, err, want.ErrCode)
	}
}

func TestVersionsAndCapabilities(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		anon := newClient(t, s, "", "")
		versions, err := anon.Versions(ctx(t))
		if err != nil {
			t.Fatalf("Versions: %v", err)
		}
		if !versions.ContainsGreaterOrEqual(mautrix.SpecV11) {
			t.Fatalf("Versions %v: want at least v1.1", versions.Versions)
		}
		for _, v := range versions.Versions {
			if v.String() == "" || v.Format != mautrix.SpecVersionFormatV {
				t.Errorf("version %q did not parse as a vX.Y spec version: %+v", v.String(), v)
			}
		}
		if anon.SpecVersions != versions {
			t.Errorf("client did not remember the spec versions")
		}

		flows, err := anon.GetLoginFlows(ctx(t))
		if err != nil {
			t.Fatalf("GetLoginFlows: %v", err)
		}
		if !flows.HasFlow(mautrix.AuthTypePassword) {
			t.Errorf("login flows %+v: want m.login.password", flows.Flows)
		}

		cli := register(t, s, "caps", "caps-password")
		caps, err := cli.Capabilities(ctx(t))
		if err != nil {
			t.Fatalf("Capabilities: %v", err)
		}
		if caps.RoomVersions == nil {
			t.Fatalf("Capabilities %+v: no m.room_versions", caps)
		}
		if caps.RoomVersions.Default != s.Config.Rooms.DefaultVersion {
			t.Errorf("default room version %q, want %q", caps.RoomVersions.Default, s.Config.Rooms.DefaultVersion)
		}
		if !caps.RoomVersions.IsStable(caps.RoomVersions.Default) {
			t.Errorf("default room version %q is not listed as stable: %+v", caps.RoomVersions.Default, caps.RoomVersions.Available)
		}
		for _, v := range []string{"10", "11", "12"} {
			if !caps.RoomVersions.IsAvailable(v) || !caps.RoomVersions.IsStable(v) {
				t.Errorf("room version %s not available and stable: %+v", v, caps.RoomVersions.Available)
			}
		}
		if !caps.ChangePassword.IsEnabled() {
			t.Errorf("m.change_password not enabled although password login is")
		}
		if !caps.SetDisplayname.IsEnabled() || !caps.SetAvatarURL.IsEnabled() {
			t.Errorf("m.set_displayname / m.set_avatar_url not enabled: %+v %+v", caps.SetDisplayname, caps.SetAvatarURL)
		}
		if caps.ThreePIDChanges.IsEnabled() {
			t.Errorf("m.3pid_changes enabled, but aula has no third-party IDs")
		}
	})
}

func TestRegisterLoginWhoami(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		anon := newClient(t, s, "", "")
		if _, err := anon.RegisterAvailable(ctx(t), "alice"); err != nil {
			t.Fatalf("RegisterAvailable(alice) before registering: %v", err)
		}
		alice := register(t, s, "alice", "alice-password")
		_, err := anon.RegisterAvailable(ctx(t), "alice")
		wantErr(t, "RegisterAvailable(alice) after registering", err, mautrix.MUserInUse)

		_, err = newClient(t, s, "", "").RegisterDummy(ctx(t), &mautrix.ReqRegister{Username: "alice", Password: "x-password"})
		wantErr(t, "registering alice twice", err, mautrix.MUserInUse)

		who, err := alice.Whoami(ctx(t))
		if err != nil {
			t.Fatalf("Whoami: %v", err)
		}
		if who.UserID != alice.UserID || who.DeviceID != alice.DeviceID {
			t.Fatalf("Whoami = %+v, want %s %s", who, alice.UserID, alice.DeviceID)
		}

		second := login(t, s, "alice", "alice-password", "second device")
		if second.DeviceID == alice.DeviceID {
			t.Fatalf("a new login reused device %s", alice.DeviceID)
		}
		who, err = second.Whoami(ctx(t))
		if err != nil || who.UserID != alice.UserID || who.DeviceID != second.DeviceID {
			t.Fatalf("Whoami on the second device = %+v, %v", who, err)
		}

		// The full user ID works as identifier too.
		login(t, s, alice.UserID.String(), "alice-password", "")

		_, err = newClient(t, s, "", "").Login(ctx(t), &mautrix.ReqLogin{
			Type:       mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"},
			Password:   "wrong-password",
		})
		wantErr(t, "login with a wrong password", err, mautrix.MForbidden)

		_, err = newClient(t, s, "", "").Whoami(ctx(t))
		wantErr(t, "Whoami without a token", err, mautrix.MMissingToken)
		_, err = newClient(t, s, alice.UserID, "not-a-token").Whoami(ctx(t))
		wantErr(t, "Whoami with an unknown token", err, mautrix.MUnknownToken)
	})
}

func TestSharedSecretRegistration(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		admin := synapseadmin.Client{Client: newClient(t, s, "", "")}
		resp, err := admin.SharedSecretRegister(ctx(t), apitest.SharedSecret, synapseadmin.ReqSharedSecretRegister{
			Username: "root", Password: "root-password", Admin: true,
		})
		if err != nil {
			t.Fatalf("SharedSecretRegister: %v", err)
		}
		if resp.UserID != id.NewUserID("root", apitest.ServerName) || resp.AccessToken == "" {
			t.Fatalf("SharedSecretRegister = %+v", resp)
		}
		who, err := newClient(t, s, resp.UserID, resp.AccessToken).Whoami(ctx(t))
		if err != nil || who.UserID != resp.UserID {
			t.Fatalf("Whoami with the shared-secret token = %+v, %v", who, err)
		}
		login(t, s, "root", "root-password", "")

		_, err = admin.SharedSecretRegister(ctx(t), "not-the-secret-0123456789", synapseadmin.ReqSharedSecretRegister{
			Username: "mallory", Password: "mallory-password",
		})
		wantErr(t, "SharedSecretRegister with the wrong secret", err, mautrix.MForbidden)
	})
}

func TestDevices(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		const password = "device-password"
		first := register(t, s, "dora", password)
		second := login(t, s, "dora", password, "laptop")

		devices, err := first.GetDevicesInfo(ctx(t))
		if err != nil {
			t.Fatalf("GetDevicesInfo: %v", err)
		}
		names := map[id.DeviceID]string{}
		for _, d := range devices.Devices {
			names[d.DeviceID] = d.DisplayName
		}
		if len(names) != 2 || names[first.DeviceID] != "first device" || names[second.DeviceID] != "laptop" {
			t.Fatalf("devices %+v, want %s (first device) and %s (laptop)", devices.Devices, first.DeviceID, second.DeviceID)
		}

		if err := first.SetDeviceInfo(ctx(t), second.DeviceID, &mautrix.ReqDeviceInfo{DisplayName: "old laptop"}); err != nil {
			t.Fatalf("SetDeviceInfo: %v", err)
		}
		info, err := second.GetDeviceInfo(ctx(t), second.DeviceID)
		if err != nil || info.DisplayName != "old laptop" || info.DeviceID != second.DeviceID {
			t.Fatalf("GetDeviceInfo after rename = %+v, %v", info, err)
		}
		_, err = first.GetDeviceInfo(ctx(t), "NOSUCHDEVICE")
		wantErr(t, "GetDeviceInfo of an unknown device", err, mautrix.MNotFound)
		err = first.SetDeviceInfo(ctx(t), "NOSUCHDEVICE", &mautrix.ReqDeviceInfo{DisplayName: "x"})
		wantErr(t, "SetDeviceInfo of an unknown device", err, mautrix.MNotFound)

		// Deleting a device takes user-interactive authentication.
		url := first.BuildClientURL("v3", "devices", second.DeviceID)
		uia := uiaChallenge(t, first, http.MethodDelete, url, &mautrix.ReqDeleteDevice{})

		// A wrong password fails the stage with M_FORBIDDEN and keeps the session.
		err = first.DeleteDevice(ctx(t), second.DeviceID, &mautrix.ReqDeleteDevice{
			Auth: newPasswordAuth(uia.Session, first.UserID, "wrong-password"),
		})
		wantErr(t, "DeleteDevice with a wrong password", err, mautrix.MForbidden)
		var httpErr mautrix.HTTPError
		if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusUnauthorized) ||
			httpErr.RespError.ExtraData["session"] != uia.Session {
			t.Fatalf("wrong password: got %#v, want 401 with the same session", err)
		}
		if _, err := second.Whoami(ctx(t)); err != nil {
			t.Fatalf("the device was deleted despite the wrong password: %v", err)
		}

		err = first.DeleteDevice(ctx(t), second.DeviceID, &mautrix.ReqDeleteDevice{
			Auth: newPasswordAuth(uia.Session, first.UserID, password),
		})
		if err != nil {
			t.Fatalf("DeleteDevice with the password: %v", err)
		}
		_, err = second.Whoami(ctx(t))
		wantErr(t, "Whoami on the deleted device", err, mautrix.MUnknownToken)

		devices, err = first.GetDevicesInfo(ctx(t))
		if err != nil || len(devices.Devices) != 1 || devices.Devices[0].DeviceID != first.DeviceID {
			t.Fatalf("devices after the delete = %+v, %v", devices, err)
		}

		// POST /delete_devices, the same flow for several devices.
		third := login(t, s, "dora", password, "phone")
		fourth := login(t, s, "dora", password, "tablet")
		req := &mautrix.ReqDeleteDevices{Devices: []id.DeviceID{third.DeviceID, fourth.DeviceID}}
		uia = uiaChallenge(t, first, http.MethodPost, first.BuildClientURL("v3", "delete_devices"), req)
		req.Auth = newPasswordAuth(uia.Session, first.UserID, password)
		if err := first.DeleteDevices(ctx(t), req); err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		for _, c := range []*mautrix.Client{third, fourth} {
			_, err = c.Whoami(ctx(t))
			wantErr(t, "Whoami on a device removed by delete_devices", err, mautrix.MUnknownToken)
		}
		if _, err := first.Whoami(ctx(t)); err != nil {
			t.Fatalf("the remaining device lost its session: %v", err)
		}
	})
}

func TestAccountDataAndFilters(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		cli := register(t, s, "ada", "ada-password")

		var missing map[string]any
		err := cli.GetAccountData(ctx(t), "org.example.settings", &missing)
		wantErr(t, "GetAccountData before it is set", err, mautrix.MNotFound)

		type settings struct {
			Theme string   `json:"theme"`
			Tags  []string `json:"tags"`
			Size  int      `json:"size"`
		}
		put := settings{Theme: "dark <&> ünïcode", Tags: []string{"a", "b"}, Size: 14}
		if err := cli.SetAccountData(ctx(t), "org.example.settings", put); err != nil {
			t.Fatalf("SetAccountData: %v", err)
		}
		var got settings
		if err := cli.GetAccountData(ctx(t), "org.example.settings", &got); err != nil {
			t.Fatalf("GetAccountData: %v", err)
		}
		if !reflect.DeepEqual(got, put) {
			t.Fatalf("GetAccountData = %+v, want %+v", got, put)
		}
		// Spec-defined content parsed by mautrix's event types.
		direct := event.DirectChatsEventContent{"@bob:aula.test": {"!room:aula.test"}}
		if err := cli.SetAccountData(ctx(t), event.AccountDataDirectChats.Type, direct); err != nil {
			t.Fatalf("SetAccountData(m.direct): %v", err)
		}
		var gotDirect event.DirectChatsEventContent
		if err := cli.GetAccountData(ctx(t), event.AccountDataDirectChats.Type, &gotDirect); err != nil || !reflect.DeepEqual(gotDirect, direct) {
			t.Fatalf("GetAccountData(m.direct) = %v, %v; want %v", gotDirect, err, direct)
		}

		// Room account data.
		room := id.RoomID("!someroom:aula.test")
		tags := event.TagEventContent{Tags: event.Tags{"m.favourite": {Order: "0.5"}}}
		if err := cli.SetRoomAccountData(ctx(t), room, event.AccountDataRoomTags.Type, tags); err != nil {
			t.Fatalf("SetRoomAccountData: %v", err)
		}
		var gotTags event.TagEventContent
		if err := cli.GetRoomAccountData(ctx(t), room, event.AccountDataRoomTags.Type, &gotTags); err != nil || gotTags.Tags["m.favourite"].Order != "0.5" {
			t.Fatalf("GetRoomAccountData = %+v, %v", gotTags, err)
		}

		// Another user's account data is not reachable.
		other := register(t, s, "eve", "eve-password")
		other.UserID = cli.UserID // address ada's account data with eve's token
		var stolen settings
		err = other.GetAccountData(ctx(t), "org.example.settings", &stolen)
		wantErr(t, "GetAccountData of another user", err, mautrix.MForbidden)

		// Filters.
		limit := 10
		filter := &mautrix.Filter{
			EventFields: []string{"type", "content.body"},
			EventFormat: mautrix.EventFormatClient,
			Presence:    &mautrix.FilterPart{NotTypes: []event.Type{event.EphemeralEventPresence}},
			Room: &mautrix.RoomFilter{
				Timeline: &mautrix.FilterPart{Limit: limit, Types: []event.Type{event.EventMessage}, LazyLoadMembers: true},
				State:    &mautrix.FilterPart{LazyLoadMembers: true},
				Rooms:    []id.RoomID{room},
			},
		}
		if err := filter.Validate(); err != nil {
			t.Fatalf("the test filter is invalid: %v", err)
		}
		created, err := cli.CreateFilter(ctx(t), filter)
		if err != nil {
			t.Fatalf("CreateFilter: %v", err)
		}
		if created.FilterID == "" || strings.HasPrefix(created.FilterID, "{") {
			t.Fatalf("CreateFilter returned filter ID %q", created.FilterID)
		}
		var gotFilter mautrix.Filter
		if _, err := cli.MakeRequest(ctx(t), http.MethodGet, cli.BuildClientURL("v3", "user", cli.UserID, "filter", created.FilterID), nil, &gotFilter); err != nil {
			t.Fatalf("get filter %s: %v", created.FilterID, err)
		}
		if !reflect.DeepEqual(&gotFilter, filter) {
			a, _ := json.Marshal(&gotFilter)
			b, _ := json.Marshal(filter)
			t.Fatalf("filter round trip:\n got  %s\n want %s", a, b)
		}
		var none mautrix.Filter
		_, err = cli.MakeRequest(ctx(t), http.MethodGet, cli.BuildClientURL("v3", "user", cli.UserID, "filter", "999999"), nil, &none)
		wantErr(t, "get an unknown filter", err, mautrix.MNotFound)
	})
}

// testRoom is the room a push rule is evaluated in.
type testRoom struct {
	displayName string
	members     int
}

func (r testRoom) GetOwnDisplayname() string { return r.displayName }
func (r testRoom) GetMemberCount() int       { return r.members }

func TestPushRules(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		cli := register(t, s, "pia", "pia-password")
		rules, err := cli.GetPushRules(ctx(t))
		if err != nil {
			t.Fatalf("GetPushRules: %v", err)
		}
		ids := func(rs pushrules.PushRuleArray) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.RuleID)
			}
			return out
		}
		override, content, underride := ids(rules.Override), ids(rules.Content), ids(rules.Underride)
		if len(override) == 0 || override[0] != ".m.rule.master" {
			t.Fatalf("override rules %v: want .m.rule.master first", override)
		}
		for _, want := range []string{".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
			".m.rule.is_user_mention", ".m.rule.is_room_mention", ".m.rule.tombstone", ".m.rule.reaction"} {
			if !slices.Contains(override, want) {
				t.Errorf("override rules %v: %s missing", override, want)
			}
		}
		if !slices.Contains(content, ".m.rule.contains_user_name") {
			t.Errorf("content rules %v: .m.rule.contains_user_name missing", content)
		}
		for _, want := range []string{".m.rule.call", ".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted"} {
			if !slices.Contains(underride, want) {
				t.Errorf("underride rules %v: %s missing", underride, want)
			}
		}
		for _, r := range slices.Concat(rules.Override, rules.Content, rules.Underride) {
			if !r.Default {
				t.Errorf("rule %s is not marked default", r.RuleID)
			}
			if r.RuleID == ".m.rule.master" {
				if r.Enabled {
					t.Errorf(".m.rule.master is enabled by default")
				}
			} else if !r.Enabled { // everything else the spec defines is on by default
				t.Errorf("rule %s is disabled by default", r.RuleID)
			}
		}
		if len(rules.Room.Map) != 0 || len(rules.Sender.Map) != 0 {
			t.Errorf("a new account has room or sender rules: %v %v", rules.Room.Map, rules.Sender.Map)
		}

		// mautrix evaluates the server's default rules as a client would.
		msg := func(content map[string]any) *event.Event {
			return &event.Event{
				Type: event.EventMessage, Sender: "@bob:aula.test", RoomID: "!r:aula.test",
				Content: event.Content{Raw: content},
			}
		}
		group := testRoom{displayName: "Pia P.", members: 5}
		dm := testRoom{displayName: "Pia P.", members: 2}
		cases := []struct {
			name      string
			room      testRoom
			evt       *event.Event
			rule      string
			notify    bool
			highlight bool
		}{
			{"plain message in a group", group, msg(map[string]any{"msgtype": "m.text", "body": "hello all"}), ".m.rule.message", true, false},
			{"plain message in a DM", dm, msg(map[string]any{"msgtype": "m.text", "body": "hi"}), ".m.rule.room_one_to_one", true, false},
			{"notice", group, msg(map[string]any{"msgtype": "m.notice", "body": "bot says"}), ".m.rule.suppress_notices", false, false},
			{"mention through m.mentions", group, msg(map[string]any{"msgtype": "m.text", "body": "hey",
				"m.mentions": map[string]any{"user_ids": []any{cli.UserID.String()}}}), ".m.rule.is_user_mention", true, true},
			{"localpart in the body", group, msg(map[string]any{"msgtype": "m.text", "body": "ask pia about it"}), ".m.rule.contains_user_name", true, true},
			{"display name in the body", group, msg(map[string]any{"msgtype": "m.text", "body": "thanks Pia P. !"}), ".m.rule.contains_display_name", true, true},
		}
		for _, c := range cases {
			rule := rules.GetMatchingRule(c.room, c.evt)
			if rule == nil || rule.RuleID != c.rule {
				t.Errorf("%s: matched %v, want %s", c.name, rule, c.rule)
				continue
			}
			should := rule.GetActions().Should()
			if should.Notify != c.notify || should.Highlight != c.highlight {
				t.Errorf("%s: %s gives notify=%v highlight=%v, want %v %v", c.name, c.rule, should.Notify, should.Highlight, c.notify, c.highlight)
			}
		}

		// Single rules through the client's other push-rule calls.
		master, err := cli.GetPushRule(ctx(t), "global", pushrules.OverrideRule, ".m.rule.master")
		if err != nil || master.RuleID != ".m.rule.master" || master.Enabled {
			t.Fatalf("GetPushRule(.m.rule.master) = %+v, %v", master, err)
		}
		_, err = cli.GetPushRule(ctx(t), "global", pushrules.OverrideRule, "no.such.rule")
		wantErr(t, "GetPushRule of an unknown rule", err, mautrix.MNotFound)
		err = cli.PutPushRule(ctx(t), "global", pushrules.ContentRule, "cake", &mautrix.ReqPutPushRule{
			Actions: []pushrules.PushActionType{pushrules.ActionNotify}, Pattern: "cake",
		})
		if err != nil {
			t.Fatalf("PutPushRule: %v", err)
		}
		rules, err = cli.GetPushRules(ctx(t))
		if err != nil {
			t.Fatalf("GetPushRules after PutPushRule: %v", err)
		}
		if content := ids(rules.Content); len(content) == 0 || content[0] != "cake" {
			t.Fatalf("content rules %v: want the user's rule cake before the defaults", content)
		}
		if rule := rules.GetMatchingRule(group, msg(map[string]any{"msgtype": "m.text", "body": "Cake for everyone"})); rule == nil || rule.RuleID != "cake" {
			t.Fatalf("message about cake matched %v, want the user rule cake", rule)
		}
		if err := cli.DeletePushRule(ctx(t), "global", pushrules.ContentRule, "cake"); err != nil {
			t.Fatalf("DeletePushRule: %v", err)
		}
	})
}

func TestProfile(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		cli := register(t, s, "paul", "paul-password")
		if err := cli.SetDisplayName(ctx(t), "Paul Ö. <Example>"); err != nil {
			t.Fatalf("SetDisplayName: %v", err)
		}
		profile, err := cli.GetProfile(ctx(t), cli.UserID)
		if err != nil {
			t.Fatalf("GetProfile: %v", err)
		}
		if profile.DisplayName != "Paul Ö. <Example>" {
			t.Fatalf("GetProfile = %+v", profile)
		}
		name, err := cli.GetOwnDisplayName(ctx(t))
		if err != nil || name.DisplayName != "Paul Ö. <Example>" {
			t.Fatalf("GetOwnDisplayName = %+v, %v", name, err)
		}
		avatar := id.ContentURI{Homeserver: apitest.ServerName, FileID: "abcdef"}
		if err := cli.SetAvatarURL(ctx(t), avatar); err != nil {
			t.Fatalf("SetAvatarURL: %v", err)
		}

		// Another user sees the profile.
		other := register(t, s, "quinn", "quinn-password")
		profile, err = other.GetProfile(ctx(t), cli.UserID)
		if err != nil || profile.DisplayName != "Paul Ö. <Example>" || profile.AvatarURL != avatar {
			t.Fatalf("GetProfile by another user = %+v, %v", profile, err)
		}
		_, err = other.GetProfile(ctx(t), id.NewUserID("nobody", apitest.ServerName))
		wantErr(t, "GetProfile of an unknown user", err, mautrix.MNotFound)

		// Nobody sets another user's display name.
		other.UserID = cli.UserID
		err = other.SetDisplayName(ctx(t), "hijacked")
		wantErr(t, "SetDisplayName of another user", err, mautrix.MForbidden)
	})
}

func TestLogout(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		first := register(t, s, "lou", "lou-password")
		second := login(t, s, "lou", "lou-password", "")
		if _, err := first.Logout(ctx(t)); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		_, err := first.Whoami(ctx(t))
		wantErr(t, "Whoami after Logout", err, mautrix.MUnknownToken)
		var httpErr mautrix.HTTPError
		if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusUnauthorized) {
			t.Fatalf("Whoami after Logout: %#v, want HTTP 401", err)
		}
		if soft, _ := httpErr.RespError.ExtraData["soft_logout"].(bool); soft {
			t.Errorf("a logged-out token is reported as soft-logged-out")
		}
		if _, err := second.Whoami(ctx(t)); err != nil {
			t.Fatalf("Logout ended another device's session: %v", err)
		}
		devices, err := second.GetDevicesInfo(ctx(t))
		if err != nil || len(devices.Devices) != 1 || devices.Devices[0].DeviceID != second.DeviceID {
			t.Fatalf("devices after Logout = %+v, %v; want only %s", devices, err, second.DeviceID)
		}
		_, err = first.Logout(ctx(t))
		wantErr(t, "Logout twice", err, mautrix.MUnknownToken)

		third := login(t, s, "lou", "lou-password", "")
		if _, err := third.LogoutAll(ctx(t)); err != nil {
			t.Fatalf("LogoutAll: %v", err)
		}
		for _, c := range []*mautrix.Client{second, third} {
			_, err := c.Whoami(ctx(t))
			wantErr(t, "Whoami after LogoutAll", err, mautrix.MUnknownToken)
		}
		login(t, s, "lou", "lou-password", "") // the password still works
	})
}
