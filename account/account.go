// Package account owns per-user data that is not about authentication:
// profiles (display name and avatar) and account data.
package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aula-chat/aula/internal/ids"
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

// Profile returns a user's profile; a malformed user ID is 400
// M_INVALID_PARAM, unknown and deactivated users are 404 M_NOT_FOUND.
func (s *Service) Profile(ctx context.Context, userID string) (Profile, error) {
	if !ids.ValidUserID(userID) {
		return Profile{}, mxerr.InvalidParam("%q is not a valid user ID", userID)
	}
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
	if strings.IndexByte(name, 0) >= 0 {
		return mxerr.InvalidParam("Display name must not contain NUL characters")
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
	if url != "" && !validMXC(url) {
		return mxerr.InvalidParam("avatar_url must be an mxc://server/media-id URI")
	}
	return s.db.SetAvatarURL(ctx, userID, url)
}

// validMXC checks the shape of a content URI: "mxc://", a server name and a
// media ID, neither empty nor holding a "/", whitespace, "?" or "#".
func validMXC(uri string) bool {
	rest, ok := strings.CutPrefix(uri, "mxc://")
	if !ok {
		return false
	}
	server, media, ok := strings.Cut(rest, "/")
	bad := func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' || r == '?' || r == '#' }
	return ok && server != "" && media != "" && !strings.ContainsFunc(server, bad) && !strings.ContainsFunc(media, bad)
}

// serverManagedTypes are account-data types that clients cannot set
// through the account-data API (spec: 405 M_BAD_JSON).
var serverManagedTypes = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// PutAccountData stores one entry of the requester's account data; roomID
// is empty for global data. body is the request body, which must be a JSON
// object (400 M_NOT_JSON or M_BAD_JSON otherwise); it is checked after the
// requester, the room ID and the type, as Synapse does.
func (s *Service) PutAccountData(ctx context.Context, requester, userID, roomID, typ string, body []byte) error {
	if requester != userID {
		return mxerr.Forbidden("Cannot add account data for other users")
	}
	if err := checkAccountDataKey(roomID, typ); err != nil {
		return err
	}
	if serverManagedTypes[typ] {
		return mxerr.New(http.StatusMethodNotAllowed, "M_BAD_JSON", "Cannot set %s through this API", typ)
	}
	var content bytes.Buffer
	if !utf8.Valid(body) || json.Compact(&content, body) != nil {
		return mxerr.NotJSON("Content not JSON")
	}
	if content.Len() == 0 || content.Bytes()[0] != '{' {
		return mxerr.BadJSON("Content must be a JSON object")
	}
	if roomID == "" && typ == IgnoredUserListType {
		if err := checkIgnoredUsers(userID, content.Bytes()); err != nil {
			return err
		}
	}
	_, err := s.db.PutAccountData(ctx, userID, roomID, typ, content.Bytes())
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
	if roomID != "" && (len(roomID) > 255 || !ids.ValidRoomID(roomID)) {
		return mxerr.InvalidParam("%q is not a valid room ID", roomID)
	}
	return nil
}
