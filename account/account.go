// Package account owns per-user data that is not about authentication:
// profiles (display name and avatar) and account data.
package account

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Limits on profile fields, as Synapse applies them.
const (
	maxDisplayNameLen = 256
	maxAvatarURLLen   = 1000
	maxTypeLen        = 255
)

// Service implements profiles and account data.
type Service struct {
	db *storage.DB
}

// New returns the account service.
func New(db *storage.DB) *Service { return &Service{db: db} }

// Profile is a user's public profile; empty fields are unset.
type Profile struct {
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// Profile returns a user's profile; unknown and deactivated users are
// M_NOT_FOUND.
func (s *Service) Profile(ctx context.Context, userID string) (Profile, error) {
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return Profile{}, mxerr.NotFound("Profile not found")
	}
	if err != nil {
		return Profile{}, err
	}
	return Profile{DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}, nil
}

// SetDisplayName changes the requester's own display name ("" removes it).
func (s *Service) SetDisplayName(ctx context.Context, requester, userID, name string) error {
	if requester != userID {
		return mxerr.Forbidden("You can only change your own display name")
	}
	if utf8.RuneCountInString(name) > maxDisplayNameLen {
		return mxerr.New(http.StatusBadRequest, "M_TOO_LARGE", "Display name is longer than %d characters", maxDisplayNameLen)
	}
	return s.db.SetDisplayName(ctx, userID, name)
}

// SetAvatarURL changes the requester's own avatar ("" removes it). The URL
// must be an mxc:// URI.
func (s *Service) SetAvatarURL(ctx context.Context, requester, userID, url string) error {
	if requester != userID {
		return mxerr.Forbidden("You can only change your own avatar")
	}
	if len(url) > maxAvatarURLLen {
		return mxerr.New(http.StatusBadRequest, "M_TOO_LARGE", "Avatar URL is longer than %d characters", maxAvatarURLLen)
	}
	if url != "" && !strings.HasPrefix(url, "mxc://") {
		return mxerr.InvalidParam("avatar_url must be an mxc:// URI")
	}
	return s.db.SetAvatarURL(ctx, userID, url)
}

// serverManagedTypes are account-data types that clients cannot set
// through the account-data API (spec: 405 M_BAD_JSON).
var serverManagedTypes = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// PutAccountData stores one entry of the requester's account data; roomID
// is empty for global data. content must be a JSON object.
func (s *Service) PutAccountData(ctx context.Context, requester, userID, roomID, typ string, content json.RawMessage) error {
	if requester != userID {
		return mxerr.Forbidden("Cannot add account data for other users")
	}
	if err := checkAccountDataKey(roomID, typ); err != nil {
		return err
	}
	if serverManagedTypes[typ] {
		return mxerr.New(http.StatusMethodNotAllowed, "M_BAD_JSON", "Cannot set %s through this API", typ)
	}
	_, err := s.db.PutAccountData(ctx, userID, roomID, typ, content)
	return err
}

// AccountData returns one entry of the requester's account data.
func (s *Service) AccountData(ctx context.Context, requester, userID, roomID, typ string) (json.RawMessage, error) {
	if requester != userID {
		return nil, mxerr.Forbidden("Cannot get account data for other users")
	}
	if err := checkAccountDataKey(roomID, typ); err != nil {
		return nil, err
	}
	c, err := s.db.AccountData(ctx, userID, roomID, typ)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("Account data not found")
	}
	return c, err
}

func checkAccountDataKey(roomID, typ string) error {
	if typ == "" || len(typ) > maxTypeLen {
		return mxerr.InvalidParam("Invalid account data type")
	}
	if roomID != "" && !validRoomID(roomID) {
		return mxerr.InvalidParam("%q is not a valid room ID", roomID)
	}
	return nil
}

// validRoomID checks the shape of a room ID: "!opaque:server", or "!hash"
// without a server part in room version 12.
func validRoomID(id string) bool {
	return len(id) > 1 && len(id) <= 255 && strings.HasPrefix(id, "!") && !strings.HasSuffix(id, ":")
}
