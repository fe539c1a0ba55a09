// Package app assembles the server from its configuration: it opens and
// migrates the database, builds every service and the HTTP handler, and
// runs the HTTP server until its context ends. cmd/aula and the integration
// tests use it, so both run the same server.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aula-chat/aula/account"
	"github.com/aula-chat/aula/admin"
	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/clientapi"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/consent"
	"github.com/aula-chat/aula/delayed"
	"github.com/aula-chat/aula/keys"
	"github.com/aula-chat/aula/media"
	"github.com/aula-chat/aula/oauth"
	"github.com/aula-chat/aula/openid"
	"github.com/aula-chat/aula/push"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/syncapi"
	"github.com/aula-chat/aula/typing"
)

// App is a built server.
type App struct {
	Config  *config.Config
	DB      *storage.DB
	Auth    *auth.Service
	Typing  *typing.Tracker // who is typing where (memory only)
	Sync    *syncapi.Service
	Consent *consent.Service // server notices and terms-of-service consent
	Media   *media.Service   // media repository
	Handler http.Handler
	log     *slog.Logger
	Delayed *delayed.Service // MSC4140 delayed events' scheduler
	Push    *push.Service    // push rules, unread counts, pushers
	// AdminOps: admin-prepared groups, data export, erasure and retention
	//; Serve runs its retention loop.
	AdminOps *admin.Ops
	// OAuth is the OAuth 2.0 authorization server (docs/oauth.md).
	OAuth *oauth.Server
	// AdminSocketHandler serves the admin API to local commands on the
	// admin socket (admin_socket; adminsocket.go), which Serve opens.
	AdminSocketHandler http.Handler
}

// New opens the database, migrates it and builds the services.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("app: data_dir: %w", err)
	}
	if path, ok := strings.CutPrefix(cfg.Database, "sqlite:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("app: database directory: %w", err)
		}
	}
	db, err := storage.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	authSvc, err := auth.New(db, cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	key, err := roomserver.LoadOrCreateSigningKey(cfg.SigningKeyPath)
	if err != nil {
		db.Close()
		return nil, err
	}
	pos, err := db.StreamPosition(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	// Every committed write reaches /sync's notifier through the change
	// feed, and every typing change through the tracker's notify.
	notifier := syncapi.NewNotifier(pos)
	// Push rules are evaluated in the background from the same feed; the
	// evaluator sees each change before /sync wakes, and
	// /sync waits for it before reporting unread counts.
	pushRules := push.NewService(db)
	if err := pushRules.Start(ctx, pos, push.Options{GatewayAllowlist: cfg.Push.GatewayAllowlist, IncludeContent: cfg.Push.IncludeContent, Log: log}); err != nil {
		db.Close()
		return nil, err
	}
	db.OnChange(func(p int64, cs []storage.Change) { pushRules.OnChange(p, cs); notifier.OnChange(p, cs) })
	typingTracker := typing.New(nil, notifier.TypingChanged)
	rooms := roomserver.New(db, cfg, key, log)
	// Server notices and terms-of-service consent.
	consentSvc, err := consent.New(db, cfg, rooms, consent.DeriveKey(key.Private.Seed()), log)
	if err == nil {
		err = consentSvc.EnsureSystemUser(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	syncSvc := syncapi.New(db, rooms, pushRules, typingTracker, notifier)
	if err := syncSvc.StartPresence(ctx, syncapi.PresenceOptions{Enabled: cfg.Presence.Enabled, Log: log}); err != nil {
		db.Close()
		return nil, err
	}
	// MSC4140 delayed events.
	delayedEvents := delayed.New(db, rooms, log, cfg.DelayedEvents.MaxDelay.D())
	mediaSvc, err := media.New(db, cfg, log) // media repository
	if err != nil {
		db.Close()
		return nil, err
	}
	// Privacy and data rights: with IP addresses off, drop any
	// recorded while they were on.
	if !cfg.StoreIPAddresses() {
		if err := db.ForgetIPAddresses(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	adminOps := admin.NewOps(db, rooms, authSvc, cfg, log)
	oauthSrv := oauth.New(db, cfg, authSvc, log) // the OAuth 2.0 API
	api := clientapi.New(cfg, log, clientapi.Services{
		Auth:          authSvc,
		Account:       account.New(db),
		Push:          pushRules,
		Sync:          syncSvc,
		Rooms:         rooms,
		Typing:        typingTracker,
		Keys:          keys.New(db, cfg.ServerName),
		Backup:        keys.NewBackup(db),
		Admin:         admin.New(db, cfg.ServerName),
		Consent:       consentSvc,
		Media:         mediaSvc,
		UserDirectory: db,
		SSO:           auth.NewSSO(authSvc, db, cfg, log, nil),
		OAuth:         oauthSrv,
		Calls:         clientapi.CallServices{OpenID: openid.New(db), Delayed: delayedEvents},
		AdminOps:      adminOps,
	})
	delayedEvents.Start() // sends delayed events that came due while the server was down
	return &App{Config: cfg, DB: db, Auth: authSvc, Typing: typingTracker, Sync: syncSvc, Handler: api, log: log, Delayed: delayedEvents, Consent: consentSvc, Media: mediaSvc, AdminOps: adminOps, Push: pushRules, OAuth: oauthSrv, AdminSocketHandler: api.AdminSocketHandler()}, nil
}

// Close stops the typing tracker's timer and the presence sweeper, and
// releases the database.
func (a *App) Close() error {
	a.Typing.Close()
	a.Push.Stop() // push evaluation and delivery
	a.Sync.StopPresence()
	a.Delayed.Close()
	return a.DB.Close()
}

// Serve listens on the configured address and serves until ctx ends; then
// it stops accepting connections and gives running requests
// http.shutdown_timeout to finish. ready, if not nil, is called with the
// bound address once the listener is open.
func (a *App) Serve(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.Config.Listen, err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// The admin socket for local commands (adminsocket.go): open before
	// ready, closed and removed after the TCP listener's shutdown.
	if path := a.Config.AdminSocketPath(); path != "" && a.AdminSocketHandler != nil {
		sock, err := listenAdminSocket(path, a.AdminSocketHandler, a.log)
		if err != nil {
			ln.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout.D())
			defer cancel()
			if err := sock.shutdown(sctx); err != nil {
				a.log.Warn("admin socket", "err", err)
			}
		}()
	}
	if ready != nil {
		ready(ln.Addr())
	}
	go a.AdminOps.RunRetention(ctx) // retention.max_lifetime; returns at once when off
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.Config.HTTP.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
