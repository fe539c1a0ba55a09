package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// EnsureSystemUser creates the notices account if it is missing (without a
// password, so nobody can log in as it) and keeps its profile as
// configured. It runs at start-up.
func (s *Service) EnsureSystemUser(ctx context.Context) error {
	n := s.cfg.ServerNotices
	u, err := s.db.User(ctx, s.system)
	if errors.Is(err, storage.ErrNotFound) {
		err = s.db.CreateUser(ctx, storage.User{
			UserID: s.system, Localpart: n.Localpart, DisplayName: n.DisplayName, AvatarURL: n.AvatarURL,
		})
		if errors.Is(err, storage.ErrConflict) { // created concurrently
			return nil
		}
		if err != nil {
			return fmt.Errorf("consent: create notices user: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("consent: notices user: %w", err)
	}
	if u.PasswordHash != "" {
		s.log.Warn("the server notices account has a password; anyone who knows it can send notices", "user", s.system)
	}
	if u.DisplayName != n.DisplayName {
		if err := s.db.SetDisplayName(ctx, s.system, n.DisplayName); err != nil {
			return err
		}
	}
	if u.AvatarURL != n.AvatarURL {
		if err := s.db.SetAvatarURL(ctx, s.system, n.AvatarURL); err != nil {
			return err
		}
	}
	return nil
}

// noticeContent is the consent notice for userID: the configured text with
// the personal link, and an HTML version where the link is clickable.
func (s *Service) noticeContent(userID string) json.RawMessage {
	uri := s.URI(userID)
	text := s.cfg.Consent.ServerNoticeContent
	var formatted strings.Builder
	for i, part := range strings.Split(text, uriPlaceholder) {
		if i > 0 {
			fmt.Fprintf(&formatted, `<a href="%s">%s</a>`, html.EscapeString(uri), html.EscapeString(uri))
		}
		formatted.WriteString(html.EscapeString(part))
	}
	raw, _ := json.Marshal(map[string]string{
		"msgtype":        "m.text",
		"body":           strings.ReplaceAll(text, uriPlaceholder, uri),
		"format":         "org.matrix.custom.html",
		"formatted_body": formatted.String(),
	})
	return raw
}

// Notice is one server notice to send.
type Notice struct {
	UserID   string
	Type     string          // event type; default m.room.message
	StateKey *string         // set for a state event
	Content  json.RawMessage // the event content (a JSON object)
	DeviceID string          // with TxnID: the admin's device and transaction ID, for retries
	TxnID    string
}

// Send sends a notice into the user's notices room, creating the room (and
// inviting the user) first if needed, and returns the event ID. Only local,
// active users other than the notices user can get notices.
func (s *Service) Send(ctx context.Context, n Notice) (string, error) {
	if _, server, ok := strings.Cut(n.UserID, ":"); !ok || !strings.HasPrefix(n.UserID, "@") || server != s.cfg.ServerName {
		return "", mxerr.InvalidParam("Server notices can only be sent to local users")
	}
	if n.UserID == s.system {
		return "", mxerr.InvalidParam("Server notices cannot be sent to the notices user")
	}
	u, err := s.db.User(ctx, n.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return "", mxerr.NotFound("User not found")
	}
	if err != nil {
		return "", err
	}
	if n.Type == "" {
		n.Type = "m.room.message"
	}
	var obj map[string]json.RawMessage
	if len(n.Content) == 0 || json.Unmarshal(n.Content, &obj) != nil || obj == nil {
		return "", mxerr.BadJSON("content must be a JSON object")
	}
	mu := s.lock(n.UserID)
	mu.Lock()
	defer mu.Unlock()
	return s.sendLocked(ctx, n.UserID, n.Type, n.StateKey, n.Content, n.DeviceID, n.TxnID)
}

// sendLocked sends a notice; the caller holds the user's lock.
func (s *Service) sendLocked(ctx context.Context, userID, typ string, stateKey *string, content json.RawMessage, deviceID, txnID string) (string, error) {
	roomID, err := s.noticeRoom(ctx, userID, true)
	if err != nil {
		return "", err
	}
	return s.rooms.Send(ctx, roomserver.SendRequest{
		RoomID: roomID, Sender: s.system, DeviceID: deviceID, TxnID: txnID,
		Type: typ, StateKey: stateKey, Content: content,
	})
}

// noticeRoom returns the user's notices room: the recorded one if the user
// is still invited or joined and the notices user still joined, otherwise
// (with create) a new one. Without create it returns storage.ErrNotFound
// when there is no usable room.
func (s *Service) noticeRoom(ctx context.Context, userID string, create bool) (string, error) {
	roomID, err := s.db.NoticeRoom(ctx, userID)
	switch {
	case err == nil:
		user, system, err := s.memberships(ctx, roomID, userID)
		if err != nil {
			return "", err
		}
		if (user == "invite" || user == "join") && system == "join" {
			return roomID, nil
		}
	case !errors.Is(err, storage.ErrNotFound):
		return "", err
	}
	if !create {
		return "", storage.ErrNotFound
	}
	return s.createNoticeRoom(ctx, userID)
}

// memberships returns the current membership of userID and of the notices
// user in roomID.
func (s *Service) memberships(ctx context.Context, roomID, userID string) (user, system string, err error) {
	state, err := s.db.CurrentState(ctx, roomID)
	if err != nil {
		return "", "", err
	}
	for _, ev := range state {
		if ev.Type != "m.room.member" || ev.StateKey == nil {
			continue
		}
		var c struct {
			Membership string `json:"membership"`
		}
		var e struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(ev.JSON, &e) != nil || json.Unmarshal(e.Content, &c) != nil {
			continue
		}
		switch *ev.StateKey {
		case userID:
			user = c.Membership
		case s.system:
			system = c.Membership
		}
	}
	return user, system, nil
}

// createNoticeRoom creates a notices room for userID: invite-only, made by
// the notices user, the user invited (or joined, with auto_join) at a power
// level below what sending needs, and tagged m.server_notice for the user.
func (s *Service) createNoticeRoom(ctx context.Context, userID string) (string, error) {
	n := s.cfg.ServerNotices
	name := n.RoomName
	roomID, err := s.rooms.CreateRoom(ctx, roomserver.CreateRoomRequest{
		Creator:     s.system,
		Preset:      roomserver.PresetPrivateChat,
		Name:        &name,
		Invite:      []string{userID},
		PowerLevels: map[string]json.RawMessage{"users_default": json.RawMessage("-10")},
	})
	if err != nil {
		return "", fmt.Errorf("consent: create notices room: %w", err)
	}
	if err := s.account.PutTag(ctx, userID, userID, roomID, NoticeTag, json.RawMessage(`{}`)); err != nil {
		return "", fmt.Errorf("consent: tag notices room: %w", err)
	}
	if err := s.db.SetNoticeRoom(ctx, userID, roomID); err != nil {
		return "", err
	}
	if n.AutoJoin {
		if _, err := s.rooms.Join(ctx, userID, roomID, "", nil); err != nil {
			return "", fmt.Errorf("consent: join notices room: %w", err)
		}
	}
	return roomID, nil
}

// IsNoticeRoom reports whether roomID is userID's current notices room.
func (s *Service) IsNoticeRoom(ctx context.Context, userID, roomID string) (bool, error) {
	got, err := s.db.NoticeRoom(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return got == roomID, nil
}

// CheckLeave refuses a user's rejecting the invite to their notices room
// (403 M_CANNOT_LEAVE_SERVER_NOTICE_ROOM). Leaving after joining is allowed,
// as in Synapse: the next notice creates a new room.
func (s *Service) CheckLeave(ctx context.Context, userID, roomID string) error {
	ok, err := s.IsNoticeRoom(ctx, userID, roomID)
	if err != nil || !ok {
		return err
	}
	user, _, err := s.memberships(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if user == "invite" {
		return mxerr.New(http.StatusForbidden, ErrCodeCannotLeave, "You cannot reject this invite")
	}
	return nil
}
