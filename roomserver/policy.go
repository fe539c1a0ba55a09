package roomserver

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
)

// The closed-room policy. aula serves the members of one university: rooms
// are closed unless the admin says otherwise. Three kinds of state are
// checked wherever a client sets them (createRoom, PUT /state):
//
//   - m.room.join_rules must be one of rooms.allowed_join_rules (by
//     default everything but public);
//   - m.room.guest_access must not be can_join: there are no guests;
//   - m.room.history_visibility world_readable needs
//     rooms.allow_world_readable.
//
// The checks run before the auth rules and answer 403 M_FORBIDDEN. State a
// room already has is never re-checked, so a room created under a more
// permissive configuration keeps working.

// guestAccessCanJoin is the m.room.guest_access value that lets guests in.
const guestAccessCanJoin = "can_join"

// checkCreatePolicy refuses createRoom requests asking for a public room:
// preset public_chat and visibility public (which would publish the room in
// the directory, which is always empty here).
func (s *Server) checkCreatePolicy(req CreateRoomRequest) error {
	if req.Preset == PresetPublicChat && !s.joinRuleAllowed(spec.Public) {
		return errPublicRooms("preset public_chat")
	}
	if req.Visibility == "public" {
		return errPublicRooms("visibility public")
	}
	return nil
}

// checkStatePolicy refuses a state event that the policy does not allow.
// Other event types, and content the auth rules or clients would not read
// as one of the refused values, pass.
func (s *Server) checkStatePolicy(typ, stateKey string, content []byte) error {
	if stateKey != "" {
		return nil
	}
	switch typ {
	case spec.MRoomJoinRules:
		var c struct {
			JoinRule any `json:"join_rule"`
		}
		_ = json.Unmarshal(content, &c) // invalid content is the auth rules' business
		rule, ok := c.JoinRule.(string)
		if !ok {
			return nil
		}
		if !s.joinRuleAllowed(rule) {
			if rule == spec.Public {
				return errPublicRooms("join rule public")
			}
			return mxerr.Forbidden("The join rule %q is disabled on this server; allowed: %v", rule, s.cfg.Rooms.AllowedJoinRules)
		}
	case spec.MRoomGuestAccess:
		var c struct {
			GuestAccess any `json:"guest_access"`
		}
		_ = json.Unmarshal(content, &c)
		if c.GuestAccess == guestAccessCanJoin {
			return mxerr.Forbidden("Guest access is disabled on this server")
		}
	case spec.MRoomHistoryVisibility:
		var c struct {
			HistoryVisibility any `json:"history_visibility"`
		}
		_ = json.Unmarshal(content, &c)
		if c.HistoryVisibility == visWorldReadable && !s.cfg.Rooms.AllowWorldReadable {
			return mxerr.Forbidden("World-readable rooms are disabled on this server: only members can read a room's history")
		}
	}
	return nil
}

// joinRuleAllowed reports whether rooms may use the join rule.
func (s *Server) joinRuleAllowed(rule string) bool {
	return slices.Contains(s.cfg.Rooms.AllowedJoinRules, rule)
}

// policyStateFallback is what a room upgrade sets instead of old state the
// policy no longer allows (the old room was made under another
// configuration): the closed equivalent, or nothing for an unknown type.
func (s *Server) policyStateFallback(typ string, content []byte) ([]byte, bool) {
	if s.checkStatePolicy(typ, "", content) == nil {
		return content, true
	}
	switch typ {
	case spec.MRoomJoinRules:
		return []byte(`{"join_rule":"invite"}`), s.joinRuleAllowed(spec.Invite)
	case spec.MRoomGuestAccess:
		return []byte(`{"guest_access":"forbidden"}`), true
	case spec.MRoomHistoryVisibility:
		return []byte(`{"history_visibility":"shared"}`), true
	}
	return nil, false
}

// errPublicRooms is the answer to any attempt to make a room public.
func errPublicRooms(what string) *mxerr.Error {
	return mxerr.Forbidden("Public rooms are disabled on this server (%s): rooms are joined by invite, knock or space membership", what)
}

// checkLocalRoomID refuses a room ID that names another server: such a
// room could only be reached over federation, and no room of this server
// has one (room IDs of version 12 name no server and pass).
func (s *Server) checkLocalRoomID(roomID string) error {
	if _, server, ok := strings.Cut(roomID, ":"); ok && strings.HasPrefix(roomID, "!") && server != s.cfg.ServerName {
		return errNoFederation(roomID)
	}
	return nil
}
