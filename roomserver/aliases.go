package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// checkLocalAlias validates "#name:server" for an alias of this server.
func (s *Server) checkLocalAlias(alias string) error {
	name, server, ok := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	if !strings.HasPrefix(alias, "#") || !ok || name == "" || len(alias) > 255 {
		return mxerr.InvalidParam("%q is not a room alias", alias)
	}
	if server != s.cfg.ServerName {
		return mxerr.InvalidParam("Room aliases must be on this server (%s)", s.cfg.ServerName)
	}
	return checkAliasLocalpart(name)
}

// LookupAlias answers GET /directory/room/{roomAlias}.
func (s *Server) LookupAlias(ctx context.Context, alias string) (string, error) {
	if err := s.checkLocalAlias(alias); err != nil {
		// Looking up another server's alias would need federation.
		if name, server, ok := strings.Cut(strings.TrimPrefix(alias, "#"), ":"); ok && name != "" &&
			strings.HasPrefix(alias, "#") && server != s.cfg.ServerName {
			return "", errNoFederation(alias)
		}
		return "", err
	}
	return s.ResolveRoom(ctx, alias)
}

// PutAlias points a new alias of this server at a room the user is in.
func (s *Server) PutAlias(ctx context.Context, userID, alias, roomID string) error {
	if err := s.checkLocalAlias(alias); err != nil {
		return err
	}
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	joined := r.membership(userID) == spec.Join
	r.mu.Unlock()
	if !joined {
		return mxerr.Forbidden("You must be in the room to give it an alias")
	}
	err = s.db.PutAlias(ctx, alias, roomID, userID)
	if errors.Is(err, storage.ErrAliasTaken) {
		return mxerr.New(http.StatusConflict, "M_UNKNOWN", "Room alias %s already exists", alias)
	}
	return err
}

// DeleteAlias removes an alias. Its creator may, and so may anyone allowed
// to change the room's canonical alias, and server admins.
func (s *Server) DeleteAlias(ctx context.Context, userID string, isAdmin bool, alias string) error {
	if err := s.checkLocalAlias(alias); err != nil {
		return err
	}
	roomID, creator, err := s.db.AliasCreator(ctx, alias)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room alias %s not found", alias)
	}
	if err != nil {
		return err
	}
	if creator != userID && !isAdmin {
		r, err := s.lockRoom(ctx, roomID)
		if err != nil {
			return err
		}
		pl := r.powerLevels()
		allowed := r.membership(userID) == spec.Join && r.userLevel(userID) >= pl.EventLevel(spec.MRoomCanonicalAlias, true)
		r.mu.Unlock()
		if !allowed {
			return mxerr.Forbidden("You may not remove this alias")
		}
	}
	if err := s.db.DeleteAlias(ctx, alias); errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Room alias %s not found", alias)
	} else if err != nil {
		return err
	}
	return nil
}

// Aliases lists a room's local aliases for a member of the room.
func (s *Server) Aliases(ctx context.Context, userID, roomID string) ([]string, error) {
	if _, err := s.readableStateDepth(ctx, userID, roomID); err != nil {
		return nil, err
	}
	return s.db.RoomAliases(ctx, roomID)
}

// checkCanonicalAlias enforces the spec's rule for m.room.canonical_alias:
// the alias and every alt_alias must be valid and point to this room
// (400 M_BAD_ALIAS otherwise).
func (s *Server) checkCanonicalAlias(ctx context.Context, roomID string, content []byte) error {
	var c struct {
		Alias      *string  `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON("Invalid m.room.canonical_alias content")
	}
	aliases := c.AltAliases
	if c.Alias != nil && *c.Alias != "" {
		aliases = append([]string{*c.Alias}, aliases...)
	}
	for _, a := range aliases {
		target, err := s.db.AliasRoom(ctx, a)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && target != roomID) {
			return mxerr.New(http.StatusBadRequest, "M_BAD_ALIAS", "%s does not point to this room", a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
