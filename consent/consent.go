// Package consent implements terms-of-service consent and server notices:
// the policy versions and their pages (German and English built in), the
// personal consent links (Synapse-compatible HMAC), the record of who
// agreed to which version when, the gate that blocks users who have not
// agreed to the current version, and the system account that sends notices
// into each user's server-notices room.
package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aula-chat/aula/account"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// ErrCodeNotGiven is the errcode of requests blocked for lack of consent
// (a Synapse convention that Element understands).
const ErrCodeNotGiven = "M_CONSENT_NOT_GIVEN"

// ErrCodeCannotLeave is the spec's errcode for rejecting the invite to a
// server-notices room.
const ErrCodeCannotLeave = "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM"

// NoticeTag is the room tag that marks a user's server-notices room.
const NoticeTag = "m.server_notice"

// uriPlaceholder is replaced by the personal consent link in the notice
// text and the block error (Synapse's placeholder, so texts carry over).
const uriPlaceholder = "%(consent_uri)s"

// Service holds the consent state of the server. Build it with New.
type Service struct {
	db      *storage.DB
	cfg     *config.Config
	rooms   *roomserver.Server
	account *account.Service
	log     *slog.Logger
	key     []byte // HMAC key of consent links
	system  string // the notices user's ID

	version  atomic.Pointer[string] // the current policy version
	policies *policies

	agreed   sync.Map // user ID → version they are known to have agreed to
	notified sync.Map // user ID → version whose notice is settled (sent or not needed)
	locks    sync.Map // user ID → *sync.Mutex serialising notices to that user
}

// New builds the consent service. derivedKey is used as the HMAC key when
// consent.form_secret is empty (aula derives it from the signing key). It
// fails if the current version has no policy template.
func New(db *storage.DB, cfg *config.Config, rooms *roomserver.Server, derivedKey []byte, log *slog.Logger) (*Service, error) {
	s := &Service{
		db:      db,
		cfg:     cfg,
		rooms:   rooms,
		account: account.New(db),
		log:     log,
		system:  "@" + cfg.ServerNotices.Localpart + ":" + cfg.ServerName,
	}
	s.key = []byte(cfg.Consent.FormSecret)
	if len(s.key) == 0 {
		s.key = derivedKey
	}
	p, err := loadPolicies(cfg.Consent.TemplateDir)
	if err != nil {
		return nil, err
	}
	s.policies = p
	if err := s.SetVersion(cfg.Consent.Version); err != nil {
		return nil, err
	}
	return s, nil
}

// DeriveKey turns a secret the server already has (the signing key's
// seed) into the consent links' HMAC key, for servers without
// consent.form_secret.
func DeriveKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("aula consent form_secret v1"))
	return m.Sum(nil)
}

// Enabled reports whether consent is required.
func (s *Service) Enabled() bool { return s.cfg.Consent.Enabled }

// Version returns the current policy version.
func (s *Service) Version() string { return *s.version.Load() }

// SetVersion makes v the current policy version (as a restart with a new
// consent.version would): every user must agree again and is sent a new
// notice. It fails if v has no policy template.
func (s *Service) SetVersion(v string) error {
	if !s.policies.has(v) {
		return fmt.Errorf("consent: version %q has no policy template (%s.en.html or %s.de.html)", v, v, v)
	}
	s.version.Store(&v)
	return nil
}

// SystemUserID returns the ID of the account that sends server notices.
func (s *Service) SystemUserID() string { return s.system }

// URI returns the personal consent link of a local user, built like
// Synapse's: <public_baseurl>_matrix/consent?u=<localpart>&h=<hex HMAC>.
func (s *Service) URI(userID string) string {
	local := localpart(userID)
	q := url.Values{"u": {local}, "h": {s.mac(local)}}
	return s.cfg.PublicBaseURL + "_matrix/consent?" + q.Encode()
}

// mac is the hex HMAC-SHA256 of u under the form secret.
func (s *Service) mac(u string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(u))
	return hex.EncodeToString(m.Sum(nil))
}

// validMAC checks h against u in constant time.
func (s *Service) validMAC(u, h string) bool {
	want := []byte(s.mac(u))
	return hmac.Equal(want, []byte(strings.ToLower(h)))
}

// localpart returns the localpart of a user ID.
func localpart(userID string) string {
	l, _, _ := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	return l
}

// userIDFor turns the u of a consent link (a localpart, or a full user ID
// as Synapse also accepts) into a user ID of this server.
func (s *Service) userIDFor(u string) string {
	if strings.HasPrefix(u, "@") {
		return u
	}
	return "@" + u + ":" + s.cfg.ServerName
}

// substitute puts the user's consent link into a configured text.
func (s *Service) substitute(text, userID string) string {
	return strings.ReplaceAll(text, uriPlaceholder, s.URI(userID))
}

// Gate returns nil if userID may create or change things others see: consent
// is off, the user agreed to the current version, or is exempt (the notices
// user, bots and support accounts). Otherwise it returns 403
// M_CONSENT_NOT_GIVEN with the personal consent link. A user known to have
// agreed costs no query.
func (s *Service) Gate(ctx context.Context, userID string) error {
	if !s.Enabled() {
		return nil
	}
	v := s.Version()
	if got, ok := s.agreed.Load(userID); ok && got.(string) == v {
		return nil
	}
	ok, err := s.exempt(ctx, userID)
	if err != nil {
		return err
	}
	if !ok {
		if ok, err = s.db.HasConsented(ctx, userID, v); err != nil {
			return err
		}
	}
	if ok {
		s.agreed.Store(userID, v)
		return nil
	}
	return s.notGiven(userID)
}

// exempt reports whether userID never needs to agree.
func (s *Service) exempt(ctx context.Context, userID string) (bool, error) {
	if userID == s.system {
		return true, nil
	}
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.UserType == "bot" || u.UserType == "support", nil
}

// notGiven is the error of a blocked request.
func (s *Service) notGiven(userID string) *mxerr.Error {
	msg := s.substitute(s.cfg.Consent.BlockEventsError, userID)
	return mxerr.New(http.StatusForbidden, ErrCodeNotGiven, "%s", msg).With("consent_uri", s.URI(userID))
}

// Agree records that userID agreed to version now.
func (s *Service) Agree(ctx context.Context, userID, version string) error {
	if err := s.db.RecordConsent(ctx, userID, version); err != nil {
		return err
	}
	s.agreed.Store(userID, version)
	return nil
}

// MaybeNotify sends the consent notice to userID if consent is on and the
// user has neither agreed to the current version nor been sent its notice.
// It runs on every authenticated request, so a user whose notice is
// settled costs one map lookup. Failures are logged, never returned: the
// request goes on, and a later one tries again.
func (s *Service) MaybeNotify(ctx context.Context, userID string) {
	if !s.Enabled() {
		return
	}
	v := s.Version()
	if got, ok := s.notified.Load(userID); ok && got.(string) == v {
		return
	}
	if err := s.notify(ctx, userID, v); err != nil {
		s.log.WarnContext(ctx, "sending consent notice failed", "user", userID, "err", err)
	}
}

func (s *Service) notify(ctx context.Context, userID, v string) error {
	mu := s.lock(userID)
	mu.Lock()
	defer mu.Unlock()
	if got, ok := s.notified.Load(userID); ok && got.(string) == v {
		return nil // another request did it meanwhile
	}
	if err := s.Gate(ctx, userID); err == nil {
		s.notified.Store(userID, v)
		return nil
	} else if e, ok := mxerr.As(err); !ok || e.Code != ErrCodeNotGiven {
		return err
	}
	claimed, err := s.db.RecordConsentNotice(ctx, userID, v)
	if err != nil {
		return err
	}
	if !claimed { // sent before (e.g. before a restart)
		s.notified.Store(userID, v)
		return nil
	}
	if _, err := s.sendLocked(ctx, userID, "m.room.message", nil, s.noticeContent(userID), "", ""); err != nil {
		if ferr := s.db.ForgetConsentNotice(context.WithoutCancel(ctx), userID, v); ferr != nil {
			s.log.WarnContext(ctx, "forgetting failed consent notice", "user", userID, "err", ferr)
		}
		return err
	}
	s.notified.Store(userID, v)
	return nil
}

// lock returns the mutex that serialises notices to userID.
func (s *Service) lock(userID string) *sync.Mutex {
	mu, _ := s.locks.LoadOrStore(userID, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// Status is a user's consent state, for the admin API and the CLI.
type Status struct {
	UserID         string
	CurrentVersion string
	Enabled        bool
	Agreed         bool // to the current version
	storage.ConsentState
	History []storage.ConsentState
}

// StatusOf returns the consent state of userID (404 for unknown users).
func (s *Service) StatusOf(ctx context.Context, userID string) (*Status, error) {
	if _, err := s.db.User(ctx, userID); errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("User not found")
	} else if err != nil {
		return nil, err
	}
	st, err := s.db.ConsentStateOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	h, err := s.db.ConsentHistory(ctx, userID)
	if err != nil {
		return nil, err
	}
	v := s.Version()
	agreed, err := s.db.HasConsented(ctx, userID, v)
	if err != nil {
		return nil, err
	}
	return &Status{UserID: userID, CurrentVersion: v, Enabled: s.Enabled(), Agreed: agreed, ConsentState: st, History: h}, nil
}
