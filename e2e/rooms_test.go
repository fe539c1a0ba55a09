package e2e_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// parse returns an event with its content parsed for its type (events the
// client library does not know keep only their raw content).
func parse(evt *event.Event) *event.Event {
	_ = evt.Content.ParseRaw(evt.Type)
	return evt
}

// joinedRooms returns the client's joined rooms.
func joinedRooms(t *testing.T, cli *mautrix.Client) []id.RoomID {
	t.Helper()
	resp, err := cli.JoinedRooms(ctx(t))
	if err != nil {
		t.Fatalf("JoinedRooms(%s): %v", cli.UserID, err)
	}
	return resp.JoinedRooms
}

// TestRoomLifecycleWithMautrix drives createRoom and membership through
// mautrix-go: create a room with an alias, name, topic, initial state and an
// invite; the invitee joins by alias; a message is sent and read back
// through /messages in both directions; the invitee leaves and forgets.
func TestRoomLifecycleWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := register(t, s, "alice", "alice-password")
		bob := register(t, s, "bob", "bob-password")
		if err := alice.SetDisplayName(ctx(t), "Alice A."); err != nil {
			t.Fatalf("SetDisplayName: %v", err)
		}

		stateKey := ""
		created, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{
			Preset:        "private_chat",
			RoomAliasName: "mautrix",
			Name:          "Mautrix room",
			Topic:         "Driven by mautrix-go",
			Invite:        []id.UserID{bob.UserID},
			IsDirect:      true,
			InitialState: []*event.Event{{
				Type: event.StateGuestAccess, StateKey: &stateKey,
				Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessForbidden}},
			}},
		})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		roomID := created.RoomID
		if got := joinedRooms(t, alice); !slices.Equal(got, []id.RoomID{roomID}) {
			t.Errorf("alice's joined rooms %v, want [%s]", got, roomID)
		}
		if got := joinedRooms(t, bob); len(got) != 0 {
			t.Errorf("bob, only invited, is joined to %v", got)
		}
		var name event.RoomNameEventContent
		if err := alice.StateEvent(ctx(t), roomID, event.StateRoomName, "", &name); err != nil || name.Name != "Mautrix room" {
			t.Errorf("room name %q, %v", name.Name, err)
		}
		var guest event.GuestAccessEventContent
		if err := alice.StateEvent(ctx(t), roomID, event.StateGuestAccess, "", &guest); err != nil || guest.GuestAccess != event.GuestAccessForbidden {
			t.Errorf("guest access %q (initial_state should win over the preset), %v", guest.GuestAccess, err)
		}

		// Bob joins through the alias.
		alias := id.NewRoomAlias("mautrix", apitest.ServerName)
		joined, err := bob.JoinRoom(ctx(t), alias.String(), nil)
		if err != nil {
			t.Fatalf("JoinRoom(%s): %v", alias, err)
		}
		if joined.RoomID != roomID {
			t.Errorf("joined %s, want %s", joined.RoomID, roomID)
		}
		members, err := bob.JoinedMembers(ctx(t), roomID)
		if err != nil {
			t.Fatalf("JoinedMembers: %v", err)
		}
		if len(members.Joined) != 2 || members.Joined[alice.UserID].DisplayName != "Alice A." {
			t.Errorf("joined members %+v", members.Joined)
		}

		// Alice sends; Bob reads it back, newest first and then the whole
		// room oldest first.
		sent, err := alice.SendText(ctx(t), roomID, "hello bob")
		if err != nil {
			t.Fatalf("SendText: %v", err)
		}
		back, err := bob.Messages(ctx(t), roomID, "", "", mautrix.DirectionBackward, nil, 1)
		if err != nil {
			t.Fatalf("Messages(b): %v", err)
		}
		if len(back.Chunk) != 1 || back.Chunk[0].ID != sent.EventID || back.Chunk[0].Sender != alice.UserID ||
			parse(back.Chunk[0]).Content.AsMessage().Body != "hello bob" || back.Chunk[0].RoomID != roomID {
			t.Fatalf("Messages(b) = %+v, want the message %s", back.Chunk, sent.EventID)
		}
		fwd, err := bob.Messages(ctx(t), roomID, "", "", mautrix.DirectionForward, nil, 100)
		if err != nil {
			t.Fatalf("Messages(f): %v", err)
		}
		var types []string
		for _, evt := range fwd.Chunk {
			types = append(types, evt.Type.Type)
		}
		want := []string{"m.room.create", "m.room.member", "m.room.power_levels", "m.room.canonical_alias",
			"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.name", "m.room.topic",
			"m.room.member", "m.room.member", "m.room.message"}
		if !slices.Equal(types, want) {
			t.Fatalf("Messages(f) types %v, want %v", types, want)
		}
		invite := parse(fwd.Chunk[9]).Content.AsMember()
		if *fwd.Chunk[9].StateKey != bob.UserID.String() || invite.Membership != event.MembershipInvite || !invite.IsDirect {
			t.Errorf("invite event %+v", fwd.Chunk[9])
		}
		if join := parse(fwd.Chunk[10]).Content.AsMember(); join.Membership != event.MembershipJoin || join.Displayname != "bob" {
			t.Errorf("join event %+v", join)
		}
		if fwd.Chunk[11].ID != sent.EventID {
			t.Errorf("last event %s, want %s", fwd.Chunk[11].ID, sent.EventID)
		}

		// Bob leaves with a reason, cannot come back without an invite,
		// and forgets the room.
		if _, err := bob.LeaveRoom(ctx(t), roomID, &mautrix.ReqLeave{Reason: "bye"}); err != nil {
			t.Fatalf("LeaveRoom: %v", err)
		}
		var left event.MemberEventContent
		if err := alice.StateEvent(ctx(t), roomID, event.StateMember, bob.UserID.String(), &left); err != nil ||
			left.Membership != event.MembershipLeave || left.Reason != "bye" {
			t.Errorf("bob's member event after leaving %+v, %v", left, err)
		}
		if got := joinedRooms(t, bob); len(got) != 0 {
			t.Errorf("bob left but is joined to %v", got)
		}
		_, err = bob.JoinRoomByID(ctx(t), roomID)
		wantErr(t, "join after leaving", err, mautrix.MForbidden)
		if _, err := bob.ForgetRoom(ctx(t), roomID); err != nil {
			t.Errorf("ForgetRoom: %v", err)
		}
		// (errors.Is cannot match M_UNKNOWN: mautrix compares its message.)
		_, err = alice.ForgetRoom(ctx(t), roomID)
		var httpErr mautrix.HTTPError
		if !errors.As(err, &httpErr) || !httpErr.IsStatus(http.StatusBadRequest) || httpErr.RespError == nil ||
			httpErr.RespError.ErrCode != "M_UNKNOWN" {
			t.Errorf("forget while joined: got %v, want 400 M_UNKNOWN", err)
		}
	})
}

// TestModerationWithMautrix drives invite, kick, ban and unban through
// mautrix-go, with their error cases.
func TestModerationWithMautrix(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Rooms.AllowedJoinRules = append(c.Rooms.AllowedJoinRules, "public") }, func(t *testing.T, s *apitest.Server) {
		alice := register(t, s, "alice", "alice-password")
		bob := register(t, s, "bob", "bob-password")
		carol := register(t, s, "carol", "carol-password")

		_, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{RoomVersion: "13"})
		wantErr(t, "unsupported version", err, mautrix.MUnsupportedRoomVersion)
		created, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: id.RoomV12, RoomAliasName: "mod"})
		if err != nil {
			t.Fatalf("CreateRoom: %v", err)
		}
		roomID := created.RoomID
		_, err = bob.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{RoomAliasName: "mod"})
		wantErr(t, "taken alias", err, mautrix.MRoomInUse)

		for _, cli := range []*mautrix.Client{bob, carol} {
			if _, err := cli.JoinRoomByID(ctx(t), roomID); err != nil {
				t.Fatalf("JoinRoomByID(%s): %v", cli.UserID, err)
			}
		}
		// Carol (level 0) may not kick; Alice (creator) may.
		_, err = carol.KickUser(ctx(t), roomID, &mautrix.ReqKickUser{UserID: bob.UserID})
		wantErr(t, "kick without power", err, mautrix.MForbidden)
		if _, err := alice.KickUser(ctx(t), roomID, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "cool off"}); err != nil {
			t.Fatalf("KickUser: %v", err)
		}
		var kicked event.MemberEventContent
		if err := alice.StateEvent(ctx(t), roomID, event.StateMember, bob.UserID.String(), &kicked); err != nil ||
			kicked.Membership != event.MembershipLeave || kicked.Reason != "cool off" {
			t.Errorf("kicked member %+v, %v", kicked, err)
		}
		_, err = alice.KickUser(ctx(t), roomID, &mautrix.ReqKickUser{UserID: bob.UserID})
		wantErr(t, "kick a user who left", err, mautrix.MForbidden)

		// Ban: Bob cannot rejoin until unbanned.
		if _, err := alice.BanUser(ctx(t), roomID, &mautrix.ReqBanUser{UserID: bob.UserID, Reason: "spam"}); err != nil {
			t.Fatalf("BanUser: %v", err)
		}
		_, err = bob.JoinRoomByID(ctx(t), roomID)
		wantErr(t, "banned join", err, mautrix.MForbidden)
		_, err = alice.InviteUser(ctx(t), roomID, &mautrix.ReqInviteUser{UserID: bob.UserID})
		wantErr(t, "invite banned", err, mautrix.MForbidden)
		_, err = alice.UnbanUser(ctx(t), roomID, &mautrix.ReqUnbanUser{UserID: carol.UserID})
		wantErr(t, "unban a member", err, mautrix.MBadState)
		if _, err := alice.UnbanUser(ctx(t), roomID, &mautrix.ReqUnbanUser{UserID: bob.UserID}); err != nil {
			t.Fatalf("UnbanUser: %v", err)
		}
		if _, err := bob.JoinRoom(ctx(t), "#mod:"+apitest.ServerName, &mautrix.ReqJoinRoom{Reason: "back"}); err != nil {
			t.Fatalf("JoinRoom after unban: %v", err)
		}

		// Invites: unknown users and bad IDs fail.
		_, err = alice.InviteUser(ctx(t), roomID, &mautrix.ReqInviteUser{UserID: "@nobody:" + apitest.ServerName})
		wantErr(t, "invite unknown", err, mautrix.MNotFound)
		_, err = alice.InviteUser(ctx(t), roomID, &mautrix.ReqInviteUser{UserID: "nobody"})
		wantErr(t, "invite malformed", err, mautrix.MInvalidParam)
		_, err = bob.JoinRoomByID(ctx(t), "!unknown:"+apitest.ServerName)
		wantErr(t, "join unknown room", err, mautrix.MNotFound)
	})
}
