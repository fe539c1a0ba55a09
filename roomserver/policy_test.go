package roomserver

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage/storagetest"
)

// policyServer is a Server with only the configuration the policy reads.
func policyServer(change func(c *config.Config)) *Server {
	c := config.Default()
	if change != nil {
		change(c)
	}
	return &Server{cfg: c}
}

func TestCheckStatePolicy(t *testing.T) {
	closed := policyServer(nil)
	open := policyServer(func(c *config.Config) {
		c.Rooms.AllowedJoinRules = append(c.Rooms.AllowedJoinRules, "public")
		c.Rooms.AllowWorldReadable = true
	})
	inviteOnly := policyServer(func(c *config.Config) { c.Rooms.AllowedJoinRules = []string{"invite"} })
	tests := []struct {
		name     string
		s        *Server
		typ, key string
		content  string
		refused  bool
	}{
		{"public join rule", closed, "m.room.join_rules", "", `{"join_rule":"public"}`, true},
		{"invite", closed, "m.room.join_rules", "", `{"join_rule":"invite"}`, false},
		{"knock", closed, "m.room.join_rules", "", `{"join_rule":"knock"}`, false},
		{"restricted", closed, "m.room.join_rules", "", `{"join_rule":"restricted","allow":[]}`, false},
		{"knock_restricted", closed, "m.room.join_rules", "", `{"join_rule":"knock_restricted"}`, false},
		{"private is not in the default list", closed, "m.room.join_rules", "", `{"join_rule":"private"}`, true},
		{"public when allowed", open, "m.room.join_rules", "", `{"join_rule":"public"}`, false},
		{"knock when only invite is allowed", inviteOnly, "m.room.join_rules", "", `{"join_rule":"knock"}`, true},
		{"join rule of the wrong type is the auth rules' business", closed, "m.room.join_rules", "", `{"join_rule":7}`, false},
		{"join rules with a state key are not the room's", closed, "m.room.join_rules", "x", `{"join_rule":"public"}`, false},
		{"guests", closed, "m.room.guest_access", "", `{"guest_access":"can_join"}`, true},
		{"guests even when open", open, "m.room.guest_access", "", `{"guest_access":"can_join"}`, true},
		{"no guests", closed, "m.room.guest_access", "", `{"guest_access":"forbidden"}`, false},
		{"world_readable", closed, "m.room.history_visibility", "", `{"history_visibility":"world_readable"}`, true},
		{"world_readable when allowed", open, "m.room.history_visibility", "", `{"history_visibility":"world_readable"}`, false},
		{"shared", closed, "m.room.history_visibility", "", `{"history_visibility":"shared"}`, false},
		{"joined", closed, "m.room.history_visibility", "", `{"history_visibility":"joined"}`, false},
		{"other state", closed, "m.room.topic", "", `{"topic":"public"}`, false},
		{"invalid JSON", closed, "m.room.join_rules", "", `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.checkStatePolicy(tt.typ, tt.key, []byte(tt.content))
			if !tt.refused {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			e, ok := mxerr.As(err)
			if !ok || e.Status != 403 || e.Code != "M_FORBIDDEN" {
				t.Errorf("got %v, want 403 M_FORBIDDEN", err)
			}
		})
	}
}

func TestCheckCreatePolicy(t *testing.T) {
	closed := policyServer(nil)
	open := policyServer(func(c *config.Config) { c.Rooms.AllowedJoinRules = append(c.Rooms.AllowedJoinRules, "public") })
	for _, tt := range []struct {
		name    string
		s       *Server
		req     CreateRoomRequest
		refused bool
	}{
		{"default", closed, CreateRoomRequest{}, false},
		{"private_chat", closed, CreateRoomRequest{Preset: PresetPrivateChat, Visibility: "private"}, false},
		{"trusted_private_chat", closed, CreateRoomRequest{Preset: PresetTrustedPrivateChat}, false},
		{"public_chat", closed, CreateRoomRequest{Preset: PresetPublicChat}, true},
		{"visibility public", closed, CreateRoomRequest{Visibility: "public"}, true},
		{"visibility public with a private preset", closed, CreateRoomRequest{Visibility: "public", Preset: PresetPrivateChat}, true},
		{"public_chat when allowed", open, CreateRoomRequest{Preset: PresetPublicChat}, false},
		{"the directory stays empty even when public rooms are allowed", open, CreateRoomRequest{Visibility: "public"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.checkCreatePolicy(tt.req)
			if (err != nil) != tt.refused {
				t.Fatalf("err = %v, refused want %v", err, tt.refused)
			}
			if e, ok := mxerr.As(err); tt.refused && (!ok || e.Code != "M_FORBIDDEN" || e.Status != 403) {
				t.Errorf("got %v, want 403 M_FORBIDDEN", err)
			}
		})
	}
}

func TestPolicyStateFallback(t *testing.T) {
	s := policyServer(nil)
	for _, tt := range []struct{ typ, in, want string }{
		{"m.room.join_rules", `{"join_rule":"public"}`, `{"join_rule":"invite"}`},
		{"m.room.join_rules", `{"join_rule":"knock"}`, `{"join_rule":"knock"}`},
		{"m.room.guest_access", `{"guest_access":"can_join"}`, `{"guest_access":"forbidden"}`},
		{"m.room.history_visibility", `{"history_visibility":"world_readable"}`, `{"history_visibility":"shared"}`},
		{"m.room.name", `{"name":"x"}`, `{"name":"x"}`},
	} {
		got, ok := s.policyStateFallback(tt.typ, []byte(tt.in))
		if !ok || string(got) != tt.want {
			t.Errorf("%s %s: got %s %v, want %s", tt.typ, tt.in, got, ok, tt.want)
		}
	}
}

// TestUpgradeClosesOldOpenRoom: a room made public while the configuration
// allowed it, upgraded after the policy was tightened, becomes invite-only
// with shared history; PUT /state of its public join rule is refused.
func TestUpgradeClosesOldOpenRoom(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		const alice = "@alice:aula.test"
		s := testServer(t, dsn, alice)
		ctx := context.Background()
		s.cfg.Rooms.AllowedJoinRules = append(s.cfg.Rooms.AllowedJoinRules, spec.Public)
		s.cfg.Rooms.AllowWorldReadable = true
		room, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Preset: PresetPublicChat, InitialState: []StateEvent{
			{Type: spec.MRoomHistoryVisibility, Content: json.RawMessage(`{"history_visibility":"world_readable"}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.Rooms.AllowedJoinRules = config.Default().Rooms.AllowedJoinRules
		s.cfg.Rooms.AllowWorldReadable = false

		// Existing state is not checked again: the room still works.
		if _, err := s.Send(ctx, SendRequest{RoomID: room, Sender: alice, Type: "m.room.message", Content: json.RawMessage(`{"msgtype":"m.text","body":"hi"}`)}); err != nil {
			t.Fatalf("send to the old public room: %v", err)
		}
		key := ""
		_, err = s.Send(ctx, SendRequest{RoomID: room, Sender: alice, Type: spec.MRoomJoinRules, StateKey: &key, Content: json.RawMessage(`{"join_rule":"public"}`)})
		wantCode(t, "set public again", err, 403, "M_FORBIDDEN")

		newRoom, err := s.UpgradeRoom(ctx, UpgradeRequest{RoomID: room, UserID: alice, NewVersion: "11"})
		if err != nil {
			t.Fatal(err)
		}
		for typ, want := range map[string]string{
			spec.MRoomJoinRules:         `{"join_rule":"invite"}`,
			spec.MRoomHistoryVisibility: `{"history_visibility":"shared"}`,
			spec.MRoomGuestAccess:       `{"guest_access":"forbidden"}`,
		} {
			ev, err := s.db.StateEventAt(ctx, newRoom, typ, "", 0)
			if err != nil {
				t.Fatalf("%s of the new room: %v", typ, err)
			}
			var pdu struct {
				Content json.RawMessage `json:"content"`
			}
			_ = json.Unmarshal(ev.JSON, &pdu)
			if !sameJSON(pdu.Content, []byte(want)) {
				t.Errorf("%s of the new room = %s, want %s", typ, pdu.Content, want)
			}
		}
	})
}

func TestCheckLocalRoomID(t *testing.T) {
	s := policyServer(func(c *config.Config) { c.ServerName = "aula.test" })
	for id, refused := range map[string]bool{
		"!abc:aula.test":         false,
		"!domainlessv12hash":     false,
		"!abc:elsewhere.example": true,
		"!abc:aula.test:8448":    true,
		"#alias:elsewhere":       false, // aliases are ResolveRoom's business
	} {
		err := s.checkLocalRoomID(id)
		if (err != nil) != refused {
			t.Errorf("%s: %v, refused want %v", id, err, refused)
		}
		if e, ok := mxerr.As(err); refused && (!ok || e.Status != 403 || e.Code != "M_FORBIDDEN") {
			t.Errorf("%s: %v, want 403 M_FORBIDDEN", id, err)
		}
	}
}
