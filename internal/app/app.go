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
	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/clientapi"
	"github.com/aula-chat/aula/config"
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
	Handler http.Handler
	log     *slog.Logger
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
	typingTracker := typing.New(nil, nil)
	api := clientapi.New(cfg, log, clientapi.Services{
		Auth:    authSvc,
		Account: account.New(db),
		Push:    push.NewService(db),
		Sync:    syncapi.New(db),
		Rooms:   roomserver.New(db, cfg, key, log),
		Typing:  typingTracker,
	})
	return &App{Config: cfg, DB: db, Auth: authSvc, Typing: typingTracker, Handler: api, log: log}, nil
}

// Close stops the typing tracker's timer and releases the database.
func (a *App) Close() error {
	a.Typing.Close()
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
	if ready != nil {
		ready(ln.Addr())
	}
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
