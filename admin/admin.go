// Package admin holds the operations of the admin HTTP API and the CLI that
// belong to no other service: looking up accounts as an admin sees them,
// and (in later files) groups, exports and erasure. Both the admin API in
// clientapi and the subcommands of cmd/aula call it, so the two cannot
// drift apart.
package admin

import (
	"context"
	"errors"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Service runs admin operations against the database.
type Service struct {
	db         *storage.DB
	serverName string
}

// New returns the admin service of the server called serverName.
func New(db *storage.DB, serverName string) *Service {
	return &Service{db: db, serverName: serverName}
}

// User is an account as the admin API shows it, in the shape of Synapse's
// GET /_synapse/admin/v2/users/{userId} so existing admin tools work.
type User struct {
	Name        string       `json:"name"`
	Admin       bool         `json:"admin"`
	Deactivated bool         `json:"deactivated"`
	Erased      bool         `json:"erased"`
	UserType    *string      `json:"user_type"`
	DisplayName *string      `json:"displayname"`
	AvatarURL   *string      `json:"avatar_url"`
	CreationTS  int64        `json:"creation_ts"` // milliseconds, as Synapse reports it
	Devices     int          `json:"devices"`
	ThreePIDs   []ThreePID   `json:"threepids"`
	External    []ExternalID `json:"external_ids"`
}

// ThreePID is an email address (or phone number) bound to an account.
type ThreePID struct {
	Medium  string `json:"medium"`
	Address string `json:"address"`
	AddedAt int64  `json:"added_at"`
}

// ExternalID links an account to a subject at a single sign-on provider.
type ExternalID struct {
	AuthProvider string `json:"auth_provider"`
	ExternalID   string `json:"external_id"`
}

// User returns the account userID as admins see it; 404 M_NOT_FOUND if
// there is no such local account.
func (s *Service) User(ctx context.Context, userID string) (*User, error) {
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("User not found")
	}
	if err != nil {
		return nil, err
	}
	devices, err := s.db.Devices(ctx, userID)
	if err != nil {
		return nil, err
	}
	return &User{
		Name:        u.UserID,
		Admin:       u.IsAdmin,
		Deactivated: u.Deactivated,
		UserType:    optional(u.UserType),
		DisplayName: optional(u.DisplayName),
		AvatarURL:   optional(u.AvatarURL),
		CreationTS:  u.CreatedTS,
		Devices:     len(devices),
		ThreePIDs:   []ThreePID{},
		External:    []ExternalID{},
	}, nil
}

// optional maps "" to a JSON null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
