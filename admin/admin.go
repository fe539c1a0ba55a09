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
	// Consent state, as Synapse reports it.
	Consent
}

// Consent is a user's terms-of-service consent as Synapse's user admin API
// shows it: the version agreed to last (null: never) and when (ms), and the
// version whose consent notice was sent last.
type Consent struct {
	ConsentVersion          *string `json:"consent_version"`
	ConsentTS               *int64  `json:"consent_ts"`
	ConsentServerNoticeSent *string `json:"consent_server_notice_sent"`
}

// consentOf reads userID's consent state.
func (s *Service) consentOf(ctx context.Context, userID string) (Consent, error) {
	st, err := s.db.ConsentStateOf(ctx, userID)
	if err != nil {
		return Consent{}, err
	}
	c := Consent{ConsentVersion: optional(st.Version), ConsentServerNoticeSent: optional(st.NoticeSent)}
	if st.Version != "" {
		c.ConsentTS = &st.TS
	}
	return c, nil
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
	erased, err := s.db.IsErased(ctx, userID) // privacy (erase.go)
	if err != nil {
		return nil, err
	}
	consent, err := s.consentOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	threePIDs, external, err := s.ssoIdentities(ctx, userID) // single sign-on
	if err != nil {
		return nil, err
	}
	return &User{
		Consent:     consent,
		Name:        u.UserID,
		Admin:       u.IsAdmin,
		Deactivated: u.Deactivated,
		Erased:      erased,
		UserType:    optional(u.UserType),
		DisplayName: optional(u.DisplayName),
		AvatarURL:   optional(u.AvatarURL),
		CreationTS:  u.CreatedTS,
		Devices:     len(devices),
		ThreePIDs:   threePIDs,
		External:    external,
	}, nil
}

// ssoIdentities returns the user's 3PIDs and provider links (single
// sign-on, storage/sso.go).
func (s *Service) ssoIdentities(ctx context.Context, userID string) ([]ThreePID, []ExternalID, error) {
	pids, err := s.db.ThreePIDs(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	links, err := s.db.ExternalIDs(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	threePIDs, external := []ThreePID{}, []ExternalID{}
	for _, p := range pids {
		threePIDs = append(threePIDs, ThreePID{Medium: p.Medium, Address: p.Address, AddedAt: p.AddedTS})
	}
	for _, l := range links {
		external = append(external, ExternalID{AuthProvider: l.AuthProvider, ExternalID: l.ExternalID})
	}
	return threePIDs, external, nil
}

// optional maps "" to a JSON null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
