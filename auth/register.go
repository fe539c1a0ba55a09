package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// ValidateLocalpart checks a requested localpart against the spec's grammar
// for new user IDs: a-z 0-9 . _ = - / +, and a full user ID of at most 255
// bytes.
func (s *Service) ValidateLocalpart(localpart string) error {
	if localpart == "" {
		return mxerr.InvalidUsername("User ID cannot be empty")
	}
	for _, r := range localpart {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._=-/+", r)) {
			return mxerr.InvalidUsername("User ID can only contain characters a-z, 0-9, or '._=-/+'")
		}
	}
	if len(s.UserID(localpart)) > 255 {
		return mxerr.InvalidUsername("User ID is too long")
	}
	return nil
}

// Available reports whether a localpart can be registered.
func (s *Service) Available(ctx context.Context, localpart string) error {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return err
	}
	_, err := s.db.User(ctx, s.UserID(localpart))
	if err == nil {
		return mxerr.UserInUse()
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// CreateAccount creates an account with an optional password. It is the one
// place accounts are made (registration, admin tools, single sign-on).
func (s *Service) CreateAccount(ctx context.Context, localpart, password string, admin bool, userType string) (string, error) {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return "", err
	}
	var hash string
	if password != "" {
		if len(password) > maxPasswordBytes {
			return "", mxerr.New(http.StatusBadRequest, "M_WEAK_PASSWORD", "Password is too long")
		}
		var err error
		if hash, err = HashPassword(password, s.cfg.PasswordLogin.BcryptCost); err != nil {
			return "", err
		}
	}
	userID := s.UserID(localpart)
	err := s.db.CreateUser(ctx, storage.User{UserID: userID, Localpart: localpart, PasswordHash: hash, IsAdmin: admin, UserType: userType})
	if errors.Is(err, storage.ErrConflict) {
		return "", mxerr.UserInUse()
	}
	if err != nil {
		return "", err
	}
	return userID, nil
}

// RegisterRequest is the body of POST /register.
type RegisterRequest struct {
	Username     string          `json:"username"`
	Password     string          `json:"password"`
	DeviceID     string          `json:"device_id"`
	DisplayName  string          `json:"initial_device_display_name"`
	InhibitLogin bool            `json:"inhibit_login"`
	RefreshToken bool            `json:"refresh_token"`
	Auth         json.RawMessage `json:"auth"`
}

// registrationFlows are the flows POST /register offers.
func (s *Service) registrationFlows() []Flow {
	if len(s.cfg.Registration.Tokens) > 0 {
		return []Flow{{Stages: []string{StageRegistrationToken}}}
	}
	return []Flow{{Stages: []string{StageDummy}}}
}

// Register runs one step of registration. The result has no tokens when
// inhibit_login was set.
func (s *Service) Register(ctx context.Context, r RegisterRequest) (*Tokens, error) {
	if !s.cfg.Registration.Enabled {
		return nil, mxerr.Forbidden("Registration is disabled on this server")
	}
	if r.Username != "" {
		r.Username = strings.ToLower(r.Username)
		if err := s.Available(ctx, r.Username); err != nil {
			return nil, err
		}
	}
	if len(r.Password) > maxPasswordBytes {
		return nil, mxerr.New(http.StatusBadRequest, "M_WEAK_PASSWORD", "Password is too long")
	}
	if _, err := s.checkUIA(ctx, UIARequest{Op: "register", Auth: r.Auth, Flows: s.registrationFlows()}); err != nil {
		return nil, err
	}
	localpart := r.Username
	if localpart == "" {
		var err error
		if localpart, err = s.freeNumericLocalpart(ctx); err != nil {
			return nil, err
		}
	}
	userID, err := s.CreateAccount(ctx, localpart, r.Password, false, "")
	if err != nil {
		return nil, err
	}
	s.log.Info("registered account", "user_id", userID)
	if r.InhibitLogin {
		return &Tokens{UserID: userID}, nil
	}
	return s.IssueTokens(ctx, userID, r.DeviceID, r.DisplayName, r.RefreshToken)
}

// freeNumericLocalpart picks a random numeric localpart for a registration
// without a username, as Synapse does.
func (s *Service) freeNumericLocalpart(ctx context.Context) (string, error) {
	for {
		n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000_000))
		lp := n.String()
		err := s.Available(ctx, lp)
		if e, ok := mxerr.As(err); ok && e.Code == "M_USER_IN_USE" {
			continue
		}
		return lp, err
	}
}

// validRegistrationToken checks a token in constant time against each
// configured token.
func (s *Service) validRegistrationToken(token string) bool {
	ok := false
	for _, t := range s.cfg.Registration.Tokens {
		if SameToken(t, token) {
			ok = true
		}
	}
	return ok && token != ""
}

// RegistrationTokenValid answers GET /register/m.login.registration_token/validity.
func (s *Service) RegistrationTokenValid(token string) bool {
	return s.cfg.Registration.Enabled && s.validRegistrationToken(token)
}
