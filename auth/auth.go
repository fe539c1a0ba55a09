package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/internal/ratelimit"
	"github.com/aula-chat/aula/storage"
)

// Device is the authenticated requester: a user and one of their devices.
type Device struct {
	UserID      string
	DeviceID    string
	accessHash  []byte
	refreshHash []byte
}

// Service implements authentication and the account lifecycle.
type Service struct {
	db     *storage.DB
	cfg    *config.Config
	log    *slog.Logger
	uia    *uiaSessions
	failed *ratelimit.Limiter // failed password attempts per user

	hasher *hasher     // bcrypt with bounded concurrency
	tokens *tokenCache // access token → device, invalidated on revocation

	seenMu sync.Mutex
	seen   map[string]int64 // user\x00device -> last recorded last_seen_ts
	nonces *nonceStore      // shared-secret registration nonces

	// badRegTokens counts wrong registration tokens per client address, so
	// that tokens cannot be guessed (the spec asks for rate limiting).
	badRegTokens *ratelimit.Limiter

	clock atomic.Pointer[func() time.Time] // nil: time.Now
}

// SetClock replaces the clock the service reads for token expiry, rate
// limits and session lifetimes. Tests use it to move time forward; nil
// restores the real clock.
func (s *Service) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

// now is the service's current time.
func (s *Service) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// New returns the auth service.
func New(db *storage.DB, cfg *config.Config, log *slog.Logger) (*Service, error) {
	return &Service{
		db:           db,
		cfg:          cfg,
		log:          log,
		uia:          newUIASessions(),
		failed:       ratelimit.New(5, time.Minute/5), // 5 tries, then one every 12 s
		hasher:       newHasher(cfg.PasswordLogin.BcryptCost),
		tokens:       newTokenCache(time.Minute, 100_000),
		seen:         make(map[string]int64),
		nonces:       newNonceStore(),
		badRegTokens: ratelimit.New(5, time.Minute/6), // 5 tries, then one every 10 s
	}, nil
}

// UserID returns the full user ID for a localpart on this server.
func (s *Service) UserID(localpart string) string {
	return "@" + localpart + ":" + s.cfg.ServerName
}

// qualify turns a login name (localpart or full user ID) into a user ID.
// Localparts are case-folded because new user IDs are lower case.
func (s *Service) qualify(name string) string {
	if strings.HasPrefix(name, "@") {
		local, server, ok := strings.Cut(name[1:], ":")
		if !ok {
			return name
		}
		return "@" + strings.ToLower(local) + ":" + server
	}
	return s.UserID(strings.ToLower(name))
}

// deviceTouchInterval limits how often a device's last_seen_ts is written.
const deviceTouchInterval = 5 * time.Minute

// Authenticate resolves an access token to its device. ip is recorded as the
// device's last address only when not empty.
func (s *Service) Authenticate(ctx context.Context, token, ip string) (*Device, error) {
	if token == "" {
		return nil, mxerr.MissingToken()
	}
	hash := hashToken(token)
	owner, cached, gen := s.tokens.get(hash, s.now())
	if !cached {
		var err error
		owner, err = s.db.TokenOwner(ctx, hash)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, mxerr.UnknownToken(false)
		}
		if err != nil {
			return nil, err
		}
		if !owner.RefreshPending { // the first use of a refreshed token writes; do not skip it
			s.tokens.put(hash, owner, gen, s.now())
		}
	}
	now := s.now().UnixMilli()
	if owner.ExpiresTS != 0 && owner.ExpiresTS <= now {
		// The client holds a refresh token: it can refresh without logging in.
		return nil, mxerr.UnknownToken(true)
	}
	if owner.RefreshPending {
		if err := s.db.ConfirmRefresh(ctx, owner.RefreshHash); err != nil {
			return nil, err
		}
	}
	s.touch(ctx, owner.UserID, owner.DeviceID, now, ip)
	return &Device{UserID: owner.UserID, DeviceID: owner.DeviceID, accessHash: hash, refreshHash: owner.RefreshHash}, nil
}

// touch records device activity, at most once per deviceTouchInterval.
func (s *Service) touch(ctx context.Context, userID, deviceID string, now int64, ip string) {
	key := userID + "\x00" + deviceID
	s.seenMu.Lock()
	last := s.seen[key]
	fresh := now-last < deviceTouchInterval.Milliseconds()
	if !fresh {
		if len(s.seen) > 100000 {
			clear(s.seen)
		}
		s.seen[key] = now
	}
	s.seenMu.Unlock()
	if fresh {
		return
	}
	if err := s.db.TouchDevice(ctx, userID, deviceID, now, ip); err != nil {
		s.log.Warn("recording device activity failed", "user_id", userID, "device_id", deviceID, "err", err)
	}
}

// Tokens is the result of a login, registration or refresh.
type Tokens struct {
	UserID       string
	DeviceID     string
	AccessToken  string
	RefreshToken string        // empty unless asked for
	ExpiresIn    time.Duration // 0: the access token does not expire
}

// IssueTokens creates (or takes over) a device for userID and returns new
// tokens for it. An empty deviceID gets a fresh one. Any tokens the device
// had are revoked.
func (s *Service) IssueTokens(ctx context.Context, userID, deviceID, displayName string, refresh bool) (*Tokens, error) {
	if err := validateDeviceParams(deviceID, displayName); err != nil {
		return nil, err
	}
	if deviceID == "" {
		deviceID = newDeviceID()
	}
	t, nt := s.newTokens(userID, deviceID, refresh)
	err := s.db.LoginDevice(ctx, userID, deviceID, displayName, nt)
	s.tokens.forgetUser(userID) // the device's old tokens are gone
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Limits on client-chosen device fields, as Synapse applies them.
const (
	maxDeviceIDLen   = 512
	maxDeviceNameLen = 100
)

// validText reports whether s can be stored as text by every database
// engine: valid UTF-8 without NUL characters (PostgreSQL refuses both).
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// validateDeviceParams checks the device_id and initial_device_display_name
// of a login or registration before anything is created.
func validateDeviceParams(deviceID, displayName string) error {
	if !validText(deviceID) || !validText(displayName) {
		return mxerr.InvalidParam("device_id and initial_device_display_name must be valid UTF-8 without NUL characters")
	}
	if len(deviceID) > maxDeviceIDLen {
		return mxerr.InvalidParam("device_id is longer than %d bytes", maxDeviceIDLen)
	}
	if len(displayName) > maxDeviceNameLen {
		return mxerr.New(http.StatusBadRequest, "M_TOO_LARGE", "Device name is longer than %d bytes", maxDeviceNameLen)
	}
	return nil
}

func (s *Service) newTokens(userID, deviceID string, refresh bool) (*Tokens, storage.NewTokens) {
	t := &Tokens{UserID: userID, DeviceID: deviceID, AccessToken: newToken(accessTokenPrefix)}
	nt := storage.NewTokens{AccessHash: hashToken(t.AccessToken)}
	if refresh {
		now := s.now()
		t.RefreshToken = newToken(refreshTokenPrefix)
		nt.RefreshHash = hashToken(t.RefreshToken)
		if life := s.cfg.Login.RefreshTokenLifetime.D(); life > 0 {
			nt.RefreshExpiresTS = now.Add(life).UnixMilli()
		}
		if life := s.cfg.Login.AccessTokenLifetime.D(); life > 0 {
			t.ExpiresIn = life
			nt.AccessExpiresTS = now.Add(life).UnixMilli()
		}
	}
	return t, nt
}

// Refresh exchanges a refresh token for new tokens.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	if refreshToken == "" {
		return nil, mxerr.MissingParam("refresh_token is required")
	}
	t, nt := s.newTokens("", "", true)
	userID, deviceID, err := s.db.Refresh(ctx, hashToken(refreshToken), nt, s.now().UnixMilli())
	if userID != "" {
		s.tokens.forgetUser(userID) // the old access token is revoked
	}
	if errors.Is(err, storage.ErrNotFound) {
		// Never issued, already replaced, or logged out: the session is gone.
		return nil, mxerr.UnknownToken(false)
	}
	if errors.Is(err, storage.ErrExpired) {
		// The device still exists: logging in again with its device_id
		// keeps the client's state (soft logout).
		return nil, mxerr.UnknownToken(true)
	}
	if err != nil {
		return nil, err
	}
	t.UserID, t.DeviceID = userID, deviceID
	return t, nil
}

// LoginRequest is a password login.
type LoginRequest struct {
	User        string // localpart or full user ID
	Password    string
	DeviceID    string
	DisplayName string
	Refresh     bool
}

// LoginPassword checks a password login and issues tokens.
func (s *Service) LoginPassword(ctx context.Context, r LoginRequest) (*Tokens, error) {
	if !s.cfg.PasswordLogin.Enabled {
		return nil, mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "Password login is disabled on this server")
	}
	if r.User == "" {
		return nil, mxerr.MissingParam("identifier.user is required")
	}
	if !validText(r.User) {
		return nil, mxerr.InvalidParam("identifier.user must be valid UTF-8 without NUL characters")
	}
	if err := validateDeviceParams(r.DeviceID, r.DisplayName); err != nil {
		return nil, err
	}
	userID := s.qualify(r.User)
	if err := s.verifyPassword(ctx, userID, r.Password); err != nil {
		return nil, err
	}
	return s.IssueTokens(ctx, userID, r.DeviceID, r.DisplayName, r.Refresh)
}

// verifyPassword checks the user's password, limiting failed attempts per
// user. Unknown users and wrong passwords give the same error and take the
// same time. A deactivated account has no password any more; it is reported
// as M_USER_DEACTIVATED whatever password was given, so that its owner learns
// why logging in fails (that the user ID exists is public anyway: it cannot
// be registered again).
func (s *Service) verifyPassword(ctx context.Context, userID, password string) error {
	now := s.now()
	if retry := s.failed.Wait(userID, now); retry > 0 {
		return limitExceeded(retry)
	}
	u, err := s.db.User(ctx, userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err == nil && u.Deactivated {
		return mxerr.New(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}
	hash := u.PasswordHash
	if len(password) > maxPasswordBytes {
		hash = ""
	}
	ok, err := s.hasher.check(ctx, hash, password)
	if err != nil {
		return err
	}
	if !ok {
		s.failed.Take(userID, now)
		return mxerr.Forbidden("Invalid username or password")
	}
	return nil
}

// Logout revokes the device's token and deletes the device.
func (s *Service) Logout(ctx context.Context, d *Device) error {
	defer s.tokens.forgetUser(d.UserID)
	return s.db.DeleteDevices(ctx, d.UserID, []string{d.DeviceID})
}

// LogoutAll deletes every device of the user, revoking every token.
func (s *Service) LogoutAll(ctx context.Context, userID string) error {
	defer s.tokens.forgetUser(userID)
	return s.db.DeleteAllDevices(ctx, userID, "")
}

// SameToken reports in constant time whether two secrets are equal.
func SameToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
