// Package media is the media repository: it stores uploaded files under
// data_dir/media by content hash (identical files are kept once), keeps
// their metadata in the database, serves them to authenticated users,
// makes thumbnails of images, and lets admins quarantine, delete and
// purge media. Only local media exists: without federation, mxc:// URIs
// of other servers are refused.
package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Service is the media repository of one server.
type Service struct {
	db         *storage.DB
	cfg        config.Media
	serverName string
	store      store
	log        *slog.Logger
	thumbs     []config.ThumbnailSize
	freezeOn   bool      // the legacy endpoints refuse some media
	freezeFrom time.Time // ...uploaded at or after this time
	// unfrozen are media IDs the legacy endpoints always serve: the
	// single sign-on providers' icons, which clients show on the login
	// screen, before they have a token (spec: "Client behaviour" of SSO).
	unfrozen map[string]bool
	preview  *previewer // link previews (preview.go)
	now      func() time.Time

	// mu orders committing a file and its row against deleting rows and
	// their files, so a file is never removed while a new row names it.
	mu sync.Mutex
	// thumbSlots limits how many images are decoded at once: a decoded
	// image of max_image_pixels takes 4 bytes per pixel.
	thumbSlots chan struct{}

	// uploaded is closed and replaced whenever a pending item is
	// uploaded, waking downloads waiting for it.
	uploadedMu sync.Mutex
	uploaded   chan struct{}
}

// New returns the media repository of cfg, with its files under
// data_dir/media.
func New(db *storage.DB, cfg *config.Config, log *slog.Logger) (*Service, error) {
	st, err := newStore(filepath.Join(cfg.DataDir, "media"))
	if err != nil {
		return nil, err
	}
	freezeFrom, freezeOn, err := cfg.Media.FreezeTime()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	unfrozen := map[string]bool{}
	for _, p := range cfg.OIDCProviders {
		if id, ok := strings.CutPrefix(p.Icon, "mxc://"+cfg.ServerName+"/"); ok {
			unfrozen[id] = true
		}
	}
	return &Service{
		db: db, cfg: cfg.Media, serverName: cfg.ServerName, store: st, log: log,
		thumbs: cfg.Media.Thumbnails(), freezeOn: freezeOn, freezeFrom: freezeFrom, unfrozen: unfrozen,
		preview:    newPreviewer(cfg.Media.URLPreview),
		now:        time.Now,
		thumbSlots: make(chan struct{}, 2),
		uploaded:   make(chan struct{}),
	}, nil
}

// MaxUploadSize is the largest accepted upload in bytes.
func (s *Service) MaxUploadSize() int64 { return s.cfg.MaxUploadSize }

// ServerName is the server name of local mxc:// URIs.
func (s *Service) ServerName() string { return s.serverName }

// Errors the spec names for the media repository.
var (
	errNotFound       = mxerr.NotFound("Media not found")
	errNotYetUploaded = mxerr.New(http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded")
	errOverwrite      = mxerr.New(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")
)

func (s *Service) tooLarge() *mxerr.Error {
	return mxerr.TooLarge("Upload is larger than the limit of %d bytes", s.cfg.MaxUploadSize)
}

// newMediaID returns a random media ID: 26 base32 characters, 130 bits.
func newMediaID() string { return rand.Text() }

// MXC returns the mxc:// URI of a local media ID.
func (s *Service) MXC(mediaID string) string { return "mxc://" + s.serverName + "/" + mediaID }

// Upload describes one upload request.
type Upload struct {
	UserID        string
	ContentType   string // the request's Content-Type; may be empty
	FileName      string // the filename query parameter; may be empty
	ContentLength int64  // -1 when unknown
	Body          io.Reader
}

// cleanContentType normalises an upload's Content-Type; one that does not
// parse is stored as empty and served as application/octet-stream.
func cleanContentType(ct string) string {
	if ct == "" || len(ct) > 255 {
		return ""
	}
	typ, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mime.FormatMediaType(typ, params)
}

// checkFileName refuses file names a header cannot carry safely.
func checkFileName(name string) error {
	if len(name) > 255 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return mxerr.InvalidParam("filename must be valid UTF-8 of at most 255 bytes without control characters")
	}
	return nil
}

// receive checks the upload's limits and writes its body to a temporary
// file of the store.
func (s *Service) receive(ctx context.Context, u Upload) (*tempFile, error) {
	if err := checkFileName(u.FileName); err != nil {
		return nil, err
	}
	if u.ContentLength > s.cfg.MaxUploadSize {
		return nil, s.tooLarge()
	}
	var used int64
	if s.cfg.UserQuota > 0 {
		var err error
		if used, err = s.db.UserMediaBytes(ctx, u.UserID); err != nil {
			return nil, err
		}
		if used+max(u.ContentLength, 0) > s.cfg.UserQuota {
			return nil, mxerr.Forbidden("Media quota exceeded: you have stored %d of %d bytes", used, s.cfg.UserQuota)
		}
	}
	t, err := s.store.write(u.Body, s.cfg.MaxUploadSize)
	var tooLarge *http.MaxBytesError
	var readErr readError
	switch {
	case errors.Is(err, errTooLarge), errors.As(err, &tooLarge):
		return nil, s.tooLarge()
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err() // the client went away
	case errors.As(err, &readErr):
		return nil, mxerr.Unknown("Could not read request body")
	case err != nil:
		return nil, err // storing failed: 500, logged
	}
	if s.cfg.UserQuota > 0 && used+t.size > s.cfg.UserQuota {
		t.discard()
		return nil, mxerr.Forbidden("Media quota exceeded: you have stored %d of %d bytes", used, s.cfg.UserQuota)
	}
	return t, nil
}

// Upload stores an upload under a new media ID and returns its mxc:// URI.
func (s *Service) Upload(ctx context.Context, u Upload) (string, error) {
	t, err := s.receive(ctx, u)
	if err != nil {
		return "", err
	}
	defer t.discard()
	now := s.now().UnixMilli()
	m := storage.Media{
		MediaID: newMediaID(), UserID: u.UserID, ContentType: cleanContentType(u.ContentType),
		UploadName: u.FileName, Size: t.size, SHA256: t.hash, CreatedTS: now, UploadedTS: now, LastAccessTS: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.commit(t); err != nil {
		return "", err
	}
	if err := s.db.InsertMedia(ctx, m); err != nil {
		s.removeIfUnused(context.WithoutCancel(ctx), t.hash)
		return "", err
	}
	return s.MXC(m.MediaID), nil
}

// Create reserves a media ID for a later upload (POST
// /_matrix/media/v1/create) and returns its mxc:// URI and when it
// expires unused (ms).
func (s *Service) Create(ctx context.Context, userID string) (string, int64, error) {
	now := s.now()
	m := storage.Media{
		MediaID: newMediaID(), UserID: userID, CreatedTS: now.UnixMilli(),
		UnusedExpiresTS: now.Add(s.cfg.UnusedExpiry.D()).UnixMilli(),
	}
	err := s.db.CreatePendingMedia(ctx, m, s.cfg.MaxPendingUploads)
	if errors.Is(err, storage.ErrTooManyPending) {
		return "", 0, mxerr.New(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED",
			"You have %d media uploads pending; upload or let them expire first", s.cfg.MaxPendingUploads)
	}
	if err != nil {
		return "", 0, err
	}
	return s.MXC(m.MediaID), m.UnusedExpiresTS, nil
}

// UploadTo uploads the content of a media ID reserved with Create; only
// the user who created it may, and only once.
func (s *Service) UploadTo(ctx context.Context, serverName, mediaID string, u Upload) error {
	if serverName != s.serverName {
		return mxerr.NotFound("Media not found: not a media ID of this server")
	}
	m, err := s.db.Media(ctx, mediaID)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	switch {
	case m.UserID != u.UserID:
		return mxerr.Forbidden("This media ID was created by another user")
	case !m.Pending():
		return errOverwrite
	case m.UnusedExpiresTS <= s.now().UnixMilli():
		return mxerr.NotFound("Media ID expired unused")
	}
	t, err := s.receive(ctx, u)
	if err != nil {
		return err
	}
	defer t.discard()
	now := s.now().UnixMilli()
	m.ContentType, m.UploadName, m.Size, m.SHA256, m.UploadedTS = cleanContentType(u.ContentType), u.FileName, t.size, t.hash, now
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.commit(t); err != nil {
		return err
	}
	err = s.db.CompleteMedia(ctx, *m)
	if err != nil {
		s.removeIfUnused(context.WithoutCancel(ctx), m.SHA256)
	}
	switch {
	case errors.Is(err, storage.ErrConflict):
		return errOverwrite
	case errors.Is(err, storage.ErrNotFound):
		return errNotFound
	case err != nil:
		return err
	}
	s.uploadedMu.Lock()
	close(s.uploaded)
	s.uploaded = make(chan struct{})
	s.uploadedMu.Unlock()
	return nil
}

// removeIfUnused deletes the file of hash unless a row still names it.
// The caller holds s.mu.
func (s *Service) removeIfUnused(ctx context.Context, hash string) {
	used, err := s.db.MediaHashUsed(ctx, hash)
	if err == nil && !used {
		err = s.store.remove(hash)
	}
	if err != nil {
		s.log.Warn("media: could not clean up a stored file", "err", err)
	}
}

// File is stored content opened for serving. Close it.
type File struct {
	*os.File
	ContentType string // as uploaded; empty when unknown
	Name        string // the upload's file name; may be empty
	Size        int64
	Modified    time.Time
	ETag        string // the content hash
}

// lookup returns the uploaded item serverName/mediaID, waiting up to wait
// for a pending one. legacy applies media.freeze_unauthenticated.
func (s *Service) lookup(ctx context.Context, serverName, mediaID string, wait time.Duration, legacy bool) (*storage.Media, error) {
	if serverName != s.serverName {
		return nil, mxerr.NotFound("Remote media is not available: this server does not federate")
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.uploadedMu.Lock()
		changed := s.uploaded
		s.uploadedMu.Unlock()
		m, err := s.db.Media(ctx, mediaID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errNotFound
		}
		if err != nil {
			return nil, err
		}
		if m.QuarantinedBy != "" {
			return nil, errNotFound
		}
		if legacy && s.frozen(m) {
			return nil, errNotFound
		}
		if !m.Pending() {
			return m, nil
		}
		if m.UnusedExpiresTS <= s.now().UnixMilli() {
			return nil, errNotFound
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, errNotYetUploaded
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// frozen reports whether the legacy unauthenticated endpoints refuse m.
func (s *Service) frozen(m *storage.Media) bool {
	if !s.freezeOn || s.unfrozen[m.MediaID] {
		return false
	}
	ts := m.UploadedTS
	if ts == 0 {
		ts = m.CreatedTS
	}
	return !time.UnixMilli(ts).Before(s.freezeFrom)
}

// touchEvery is how stale last_access_ts may get before a read updates it.
const touchEvery = time.Hour

// touch records a read of m for purging, at most once per touchEvery.
func (s *Service) touch(ctx context.Context, m *storage.Media) {
	now := s.now()
	if now.Sub(time.UnixMilli(m.LastAccessTS)) < touchEvery {
		return
	}
	if err := s.db.TouchMedia(context.WithoutCancel(ctx), m.MediaID, now.UnixMilli()); err != nil {
		s.log.Warn("media: could not record access", "err", err)
	}
}

// Download opens the content of serverName/mediaID, waiting up to wait
// for a pending upload. legacy is set for the unauthenticated
// /_matrix/media/v3 endpoints.
func (s *Service) Download(ctx context.Context, serverName, mediaID string, wait time.Duration, legacy bool) (*File, error) {
	m, err := s.lookup(ctx, serverName, mediaID, wait, legacy)
	if err != nil {
		return nil, err
	}
	f, err := s.store.open(m.SHA256)
	if err != nil {
		return nil, err
	}
	s.touch(ctx, m)
	return &File{File: f, ContentType: m.ContentType, Name: m.UploadName, Size: m.Size,
		Modified: time.UnixMilli(m.UploadedTS), ETag: m.SHA256}, nil
}
