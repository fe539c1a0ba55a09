package roomserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// ResolveRoom turns a room ID or a local alias into a room ID.
func (s *Server) ResolveRoom(ctx context.Context, roomIDOrAlias string) (string, error) {
	if !strings.HasPrefix(roomIDOrAlias, "#") {
		return roomIDOrAlias, nil
	}
	roomID, err := s.db.AliasRoom(ctx, roomIDOrAlias)
	if errors.Is(err, storage.ErrNotFound) {
		return "", mxerr.NotFound("Room alias %s not found", roomIDOrAlias)
	}
	return roomID, err
}

// Join makes the user join a room (by ID or alias) and returns the room ID.
// Joining a room the user is already in changes nothing.
func (s *Server) Join(ctx context.Context, userID, roomIDOrAlias, reason string) (string, error) {
	roomID, err := s.ResolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return "", err
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	if r.membership(userID) == spec.Join {
		return roomID, nil
	}
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return "", err
	}
	return roomID, s.appendMember(ctx, r, userID, userID, memberContent(spec.Join, u, false, reason))
}

// Leave makes the user leave a room, or rejects an invite. Leaving a room
// the user is not in changes nothing.
func (s *Server) Leave(ctx context.Context, userID, roomID, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch r.membership(userID) {
	case "", spec.Leave:
		return nil
	}
	return s.appendMember(ctx, r, userID, userID, memberContent(spec.Leave, storage.User{}, false, reason))
}

// Invite invites target into the room on behalf of sender. Inviting someone
// already invited changes nothing.
func (s *Server) Invite(ctx context.Context, sender, roomID, target, reason string) error {
	if err := s.checkInvitee(ctx, target); err != nil {
		return err
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch r.membership(target) {
	case spec.Join:
		return mxerr.Forbidden("%s is already in the room", target)
	case spec.Ban:
		return mxerr.Forbidden("%s is banned from the room", target)
	case spec.Invite:
		if r.membership(sender) == spec.Join {
			return nil
		}
	}
	u, err := s.db.User(ctx, target)
	if err != nil {
		return err
	}
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Invite, u, false, reason))
}

// Kick removes target from the room on behalf of sender.
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
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Leave, storage.User{}, false, reason))
}

// Ban bans target from the room on behalf of sender.
func (s *Server) Ban(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Ban, storage.User{}, false, reason))
}

// Unban lifts a ban on target on behalf of sender.
func (s *Server) Unban(ctx context.Context, sender, roomID, target, reason string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if r.membership(target) != spec.Ban {
		return mxerr.Forbidden("%s is not banned", target)
	}
	return s.appendMember(ctx, r, sender, target, memberContent(spec.Leave, storage.User{}, false, reason))
}

// Forget hides a room the user has left from them for good.
func (s *Server) Forget(ctx context.Context, userID, roomID string) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	switch r.membership(userID) {
	case spec.Join, spec.Invite, spec.Knock:
		return mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Leave the room before forgetting it")
	}
	return s.db.ForgetRoom(ctx, userID, roomID)
}

// appendMember builds, authorises and stores a member event; r is locked.
func (s *Server) appendMember(ctx context.Context, r *room, sender, target string, content map[string]any) error {
	ev, err := s.build(r, stateProto(sender, spec.MRoomMember, target, content), time.Now())
	if err != nil {
		return err
	}
	if err := s.persist(ctx, r, newEvent(ev)); err != nil {
		return err
	}
	r.apply(ev)
	return nil
}
