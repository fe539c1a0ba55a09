package admin

import (
	"log/slog"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// Ops runs the admin operations that act on rooms and on personal data:
// prepared groups (groups.go), data exports (export.go), deactivation with
// erasure (erase.go) and retention (retention.go). Unlike Service it needs
// the room server, which writes every room event, and the auth service,
// which alone may revoke tokens.
type Ops struct {
	db    *storage.DB
	rooms *roomserver.Server
	auth  *auth.Service
	cfg   *config.Config
	log   *slog.Logger
}

// NewOps returns the room and data operations of the server.
func NewOps(db *storage.DB, rooms *roomserver.Server, authSvc *auth.Service, cfg *config.Config, log *slog.Logger) *Ops {
	return &Ops{db: db, rooms: rooms, auth: authSvc, cfg: cfg, log: log}
}

// isLocal reports whether userID is a well-formed user ID of this server.
func (o *Ops) isLocal(userID string) bool {
	_, server, ok := cutUserID(userID)
	return ok && server == o.cfg.ServerName
}

// cutUserID splits "@local:server".
func cutUserID(userID string) (local, server string, ok bool) {
	if len(userID) < 2 || userID[0] != '@' {
		return "", "", false
	}
	for i := 1; i < len(userID); i++ {
		if userID[i] == ':' {
			return userID[1:i], userID[i+1:], i > 1 && i < len(userID)-1
		}
	}
	return "", "", false
}
