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

// checkRequestedLocalpart checks a localpart someone asks for: the grammar
// of ValidateLocalpart, and not all digits, since generated localparts are
// numeric (Synapse reserves them the same way).
func (s *Service) checkRequestedLocalpart(localpart string) error {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return err
	}
	if strings.Trim(localpart, "0123456789") == "" {
		return mxerr.InvalidUsername("Numeric user IDs are reserved for generated accounts")
	}
	return nil
}

// Available reports whether a requested username can be registered. Like
// Register, it folds the name to lower case first, so that it answers for
// the user ID registration would create.
func (s *Service) Available(ctx context.Context, username string) error {
	localpart := strings.ToLower(username)
	if err := s.checkRequestedLocalpart(localpart); err != nil {
		return err
	}
	taken, err := s.taken(ctx, localpart)
	if err != nil {
		return err
	}
	if taken {
		return mxerr.UserInUse()
	}
	return nil
}

// taken reports whether an account (active or deactivated) has the
// localpart.
func (s *Service) taken(ctx context.Context, localpart string) (bool, error) {
	_, err := s.db.User(ctx, s.UserID(localpart))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateAccount creates an account with an optional password. It is the one
// place accounts are made (registration, admin tools, single sign-on).
func (s *Service) CreateAccount(ctx context.Context, localpart, password string, admin bool, userType string) (string, error) {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return "", err
	}
	userID := s.UserID(localpart)
	// Refuse a taken name before paying for a password hash; the insert
	// below still catches a race.
	if _, err := s.db.User(ctx, userID); err == nil {
		return "", mxerr.UserInUse()
	} else if !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	var hash string
	if password != "" {
		if len(password) > maxPasswordBytes {
			return "", mxerr.New(http.StatusBadRequest, "M_WEAK_PASSWORD", "Password is too long")
		}
		var err error
		if hash, err = s.hasher.hash(ctx, password); err != nil {
			return "", err
		}
	}
	err := s.db.CreateUser(ctx, storage.User{
		UserID: userID, Localpart: localpart, PasswordHash: hash, IsAdmin: admin, UserType: userType,
		DisplayName: localpart, // as Synapse does; clients show it until the user picks a name
	})
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
	Username     *string         `json:"username"`
	Password     string          `json:"password"`
	DeviceID     string          `json:"device_id"`
	DisplayName  string          `json:"initial_device_display_name"`
	InhibitLogin bool            `json:"inhibit_login"`
	RefreshToken bool            `json:"refresh_token"`
	Auth         json.RawMessage `json:"auth"`

	// ClientIP is the client's address (not part of the body); it limits
	// guessing of registration tokens.
	ClientIP string `json:"-"`
}

// registrationFlows are the flows POST /register offers.
func (s *Service) registrationFlows() []Flow {
	stages := []string{StageDummy}
	if len(s.cfg.Registration.Tokens) > 0 {
		stages = []string{StageRegistrationToken}
	}
	if s.termsAtRegistration() {
		stages = append(stages, StageTerms)
	}
	return []Flow{{Stages: stages}}
}

// termsAtRegistration reports whether registration asks for agreement to
// the terms of use (consent.require_at_registration).
func (s *Service) termsAtRegistration() bool {
	return s.cfg.Consent.Enabled && s.cfg.Consent.RequireAtRegistration
}

// registrationParams are the stage parameters of POST /register's 401:
// for m.login.terms, the policy and where to read it (the consent page
// without a personal link shows it read-only, in the reader's language).
func (s *Service) registrationParams() map[string]any {
	if !s.termsAtRegistration() {
		return nil
	}
	url := s.cfg.PublicBaseURL + "_matrix/consent"
	return map[string]any{StageTerms: map[string]any{"policies": map[string]any{
		"privacy_policy": map[string]any{
			"version": s.cfg.Consent.Version,
			"en":      map[string]string{"name": "Terms of use and privacy policy", "url": url},
			"de":      map[string]string{"name": "Nutzungsbedingungen und Datenschutzerklärung", "url": url},
		},
	}}}
}

// Register runs one step of registration. The result has no tokens when
// inhibit_login was set.
//
// The requested username is folded to lower case (as Synapse does) and
// checked before user-interactive authentication, as the spec requires. The
// client sends every parameter with every step. A password is required
// once authentication is complete, as in Synapse: an account without one
// could never pass user-interactive authentication again.
func (s *Service) Register(ctx context.Context, r RegisterRequest) (*Tokens, error) {
	if !s.cfg.Registration.Enabled {
		return nil, mxerr.Forbidden("Registration is disabled on this server")
	}
	localpart := ""
	if r.Username != nil {
		localpart = strings.ToLower(*r.Username)
		if err := s.Available(ctx, localpart); err != nil {
			return nil, err
		}
	}
	if len(r.Password) > maxPasswordBytes {
		return nil, mxerr.New(http.StatusBadRequest, "M_WEAK_PASSWORD", "Password is too long")
	}
	if err := validateDeviceParams(r.DeviceID, r.DisplayName); err != nil {
		return nil, err
	}
	if _, err := s.checkUIA(ctx, UIARequest{Op: "register", Auth: r.Auth, Flows: s.registrationFlows(), Params: s.registrationParams(), ClientIP: r.ClientIP}); err != nil {
		return nil, err
	}
	if r.Password == "" {
		return nil, mxerr.MissingParam("password is required")
	}
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
	if s.termsAtRegistration() {
		// The terms stage was part of the completed flow.
		if err := s.db.RecordConsent(ctx, userID, s.cfg.Consent.Version); err != nil {
			return nil, err
		}
	}
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
		taken, err := s.taken(ctx, lp)
		if err != nil || !taken {
			return lp, err
		}
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
// Wrong guesses are limited per client address, as the spec asks.
func (s *Service) RegistrationTokenValid(token, clientIP string) (bool, error) {
	if !s.cfg.Registration.Enabled {
		return false, mxerr.Forbidden("Registration is disabled on this server")
	}
	now := s.now()
	if retry := s.badRegTokens.Wait(clientIP, now); retry > 0 {
		return false, limitExceeded(retry)
	}
	if !s.validRegistrationToken(token) {
		s.badRegTokens.Take(clientIP, now)
		return false, nil
	}
	return true, nil
}
