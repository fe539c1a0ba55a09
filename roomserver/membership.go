package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// ResolveRoom turns a room ID or a local alias into a room ID.
func (s *Server) ResolveRoom(ctx context.Context, roomIDOrAlias string) (string, error) {
	if !strings.HasPrefix(roomIDOrAlias, "#") {
		return roomIDOrAlias, s.checkLocalRoomID(roomIDOrAlias) // policy.go
	}
	if _, server, _ := strings.Cut(roomIDOrAlias, ":"); server != s.cfg.ServerName {
		return "", errNoFederation(roomIDOrAlias)
	}
	roomID, err := s.db.AliasRoom(ctx, roomIDOrAlias)
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.NotFound("Room alias %s not found", roomIDOrAlias)
	}
	return roomID, err
}

// Content keys of a join or knock body that the server sets itself or does
// not support; the other keys of POST /join/{roomIdOrAlias} go into the
// member event as they are (as in Synapse, which Complement tests).
var serverMemberKeys = []string{"membership", "third_party_signed", "third_party_invite", "join_authorised_via_users_server", "is_direct"}

// Join makes the user join a room (by ID or alias) and returns the room ID.
// extra, if not nil, is more content for the member event (the body of
// POST /join/{roomIdOrAlias}); a displayname or avatar_url in it replaces
// the profile's in this room. Joining again with the same content changes
// nothing.
func (s *Server) Join(ctx context.Context, userID, roomIDOrAlias, reason string, extra map[string]json.RawMessage) (string, error) {
	r, content, err := s.lockForSelfMember(ctx, spec.Join, userID, roomIDOrAlias, reason, extra)
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	roomID := r.id
	if err := s.authoriseRestrictedJoin(ctx, r, userID, content); err != nil {
		return "", err
	}
	if err := s.appendMember(ctx, r, userID, userID, content, false); err != nil {
		return "", err
	}
	if old := r.predecessor(); old != "" {
		s.carryOverUserState(ctx, userID, old, roomID)
	}
	return roomID, nil
}

// authoriseRestrictedJoin handles the restricted join rules: a user who is
// not invited may join when they are in one of the rooms the rule allows,
// and the join must name a member who may invite ("authorised via users
// server", which for a server of one is simply such a member). r is locked.
func (s *Server) authoriseRestrictedJoin(ctx context.Context, r *room, userID string, content map[string]any) error {
	jr, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomJoinRules}]
	if !ok {
		return nil
	}
	var rule struct {
		JoinRule string `json:"join_rule"`
		Allow    []struct {
			Type   string `json:"type"`
			RoomID string `json:"room_id"`
		} `json:"allow"`
	}
	_ = json.Unmarshal(jr.Content(), &rule)
	if rule.JoinRule != spec.Restricted && rule.JoinRule != spec.KnockRestricted {
		return nil
	}
	if m := r.membership(userID); m == spec.Join || m == spec.Invite {
		return nil // an invite (or being in the room) needs no authoriser
	}
	allowed := false
	for _, a := range rule.Allow {
		if a.Type != "m.room_membership" || a.RoomID == "" || a.RoomID == r.id {
			continue
		}
		// Read, not lock, the other room: two joins in opposite directions
		// must not wait for each other's room lock.
		ev, err := s.db.StateEventAt(ctx, a.RoomID, spec.MRoomMember, userID, 0)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if membershipOf(ev) == spec.Join {
			allowed = true
			break
		}
	}
	if !allowed {
		return mxerr.Forbidden("You are not a member of any room that gives access to this room")
	}
	pl := r.powerLevels()
	var members []string
	for t := range r.state {
		if t.EventType == spec.MRoomMember && r.membership(t.StateKey) == spec.Join && r.userLevel(t.StateKey) >= pl.Invite {
			members = append(members, t.StateKey)
		}
	}
	if len(members) == 0 {
		return mxerr.Forbidden("No member of this room may let you in")
	}
	slices.Sort(members) // the same authoriser for the same room state
	content["join_authorised_via_users_server"] = members[0]
	return nil
}

// Knock asks to join a room whose join rule is knock, and returns the room
// ID.
func (s *Server) Knock(ctx context.Context, userID, roomIDOrAlias, reason string) (string, error) {
	r, content, err := s.lockForSelfMember(ctx, spec.Knock, userID, roomIDOrAlias, reason, nil)
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	return r.id, s.appendMember(ctx, r, userID, userID, content, false)
}

// lockForSelfMember prepares a user's own join or knock: it resolves the
// room, builds the member content and returns the room locked.
func (s *Server) lockForSelfMember(ctx context.Context, membership, userID, roomIDOrAlias, reason string, extra map[string]json.RawMessage) (*room, map[string]any, error) {
	roomID, err := s.ResolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return nil, nil, err
	}
	content, err := s.selfMemberContent(ctx, membership, userID, reason, extra)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.lockRoom(ctx, roomID)
	if e, ok := mxerr.As(err); ok && e.Status == http.StatusNotFound {
		// A room this server does not have, named with another server's
		// domain, could only be reached over federation.
		if _, server, ok := strings.Cut(roomID, ":"); ok && server != s.cfg.ServerName {
			return nil, nil, errNoFederation(roomID)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return r, content, nil
}

// errNoFederation is the answer for rooms and users on other servers:
// this server never talks to them, so it refuses at once.
func errNoFederation(what string) *mxerr.Error {
	return mxerr.Forbidden("Federation is disabled on this server: %s is on another server", what)
}

// selfMemberContent is the content of a join or knock: the user's profile,
// then extra, then the reason.
func (s *Server) selfMemberContent(ctx context.Context, membership, userID, reason string, extra map[string]json.RawMessage) (map[string]any, error) {
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	content := memberContent(membership, u, false, reason)
	for k, v := range extra {
		if slices.Contains(serverMemberKeys, k) || k == "reason" {
			continue
		}
		if k == "displayname" || k == "avatar_url" {
			var str *string
			if json.Unmarshal(v, &str) != nil {
				return nil, mxerr.BadJSON("%s must be a string", k)
			}
			if str == nil || *str == "" {
				delete(content, k)
			} else {
				content[k] = *str
			}
			continue
		}
		content[k] = v
	}
	return content, nil
}

// Leave makes the user leave a room, or rejects an invite or withdraws a
// knock. Leaving a room the user has already left changes nothing; a user
// who was never in the room, or is banned, may not leave it (403).
func (s *Server) Leave(ctx context.Context, userID, roomID, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch r.membership(userID) {
	case "":
		return mxerr.Forbidden("You are not in the room")
	case spec.Leave:
		return nil
	}
	return s.appendMember(ctx, r, userID, userID, memberContent(spec.Leave, storage.User{}, false, reason), false)
}

// Invite invites target into the room on behalf of sender. Inviting someone
// who is already invited changes nothing, if the sender may invite.
func (s *Server) Invite(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if err := s.checkInvitee(ctx, target); err != nil {
		return err
	}
	switch r.membership(target) {
	case spec.Join:
		return mxerr.Forbidden("%s is already in the room", target)
	case spec.Ban:
		return mxerr.Forbidden("%s is banned from the room", target)
	}
	u, err := s.db.User(ctx, target)
	if err != nil {
		return err
	}
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Invite, u, false, reason), true)
}

// Kick removes target (joined, invited or knocking) from the room on behalf
// of sender.
func (s *Server) Kick(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch r.membership(target) {
	case spec.Join, spec.Invite, spec.Knock:
	default:
		return mxerr.Forbidden("%s is not in the room", target)
	}
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Leave, storage.User{}, false, reason), false)
}

// Ban bans target from the room on behalf of sender; target need not be in
// the room.
func (s *Server) Ban(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Ban, storage.User{}, false, reason), false)
}

// Unban lifts a ban on target on behalf of sender. Unbanning a user who is
// not banned is 403 M_BAD_STATE (the spec's example of that code).
func (s *Server) Unban(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if r.membership(target) != spec.Ban {
		return mxerr.New(http.StatusForbidden, "M_BAD_STATE", "%s is not banned", target)
	}
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Leave, storage.User{}, false, reason), false)
}

// Forget hides a room the user has left (or was never in) from them for
// good. Members, invitees and knockers must leave first: 400 M_UNKNOWN.
func (s *Server) Forget(ctx context.Context, userID, roomID string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch m := r.membership(userID); m {
	case spec.Join, spec.Invite, spec.Knock:
		return mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "User %s is in room %s (membership %s); leave it before forgetting it", userID, roomID, m)
	}
	return s.db.ForgetRoom(ctx, userID, roomID)
}

// appendMember builds, authorises and stores a member event; r is locked.
// The event is not stored, and the call succeeds, when it would change
// nothing: the target's member event already has this sender and content
// (as in Synapse), or, with keepInvite, the target is already invited.
func (s *Server) appendMember(ctx context.Context, r *room, sender, target string, content map[string]any, keepInvite bool) error {
	ev, err := s.build(r, stateProto(sender, spec.MRoomMember, target, content), time.Now())
	if err != nil {
		return err
	}
	if prev, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomMember, StateKey: target}]; ok {
		if keepInvite && r.membership(target) == spec.Invite {
			return nil
		}
		if string(prev.SenderID()) == sender && sameContent(prev.Content(), ev.Content()) {
			return nil
		}
	}
	if err := s.persist(ctx, r, newEvent(ev)); err != nil {
		return err
	}
	r.apply(ev)
	return nil
}

// sameContent reports whether two event contents are the same JSON value.
func sameContent(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// UpdateProfile puts the user's new global display name and avatar into
// their member event in every room they are joined to, so that other
// members see the change (as Synapse does). A room whose rules refuse the
// update is skipped and logged; the profile change itself has happened.
func (s *Server) UpdateProfile(ctx context.Context, userID string) error {
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return err
	}
	ms, err := s.db.MembershipsOf(ctx, userID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Membership != spec.Join {
			continue
		}
		if err := s.updateRoomProfile(ctx, m.RoomID, u); err != nil {
			if _, ok := mxerr.As(err); !ok {
				return err
			}
			s.log.Warn("profile not updated in room", "room_id", m.RoomID, "user_id", userID, "err", err)
		}
	}
	return nil
}

func (s *Server) updateRoomProfile(ctx context.Context, roomID string, u storage.User) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	cur, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomMember, StateKey: u.UserID}]
	if !ok || r.membership(u.UserID) != spec.Join {
		return nil
	}
	content := map[string]any{}
	if err := json.Unmarshal(cur.Content(), &content); err != nil {
		return err
	}
	delete(content, "displayname")
	delete(content, "avatar_url")
	delete(content, "reason")
	delete(content, "join_authorised_via_users_server")
	if u.DisplayName != "" {
		content["displayname"] = u.DisplayName
	}
	if u.AvatarURL != "" {
		content["avatar_url"] = u.AvatarURL
	}
	return s.appendMember(ctx, r, u.UserID, u.UserID, content, false)
}
