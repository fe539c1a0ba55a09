package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The OAuth 2.0 authorization server's rows (oauth/, docs/oauth.md):
// registered clients, authorization codes and the sessions they created.

// ErrUsed is returned by ConsumeOAuthCode for a code that was exchanged
// before.
var ErrUsed = errors.New("storage: already used")

// oauthClientIdle is how long a client without sessions is kept after its
// last registration (milliseconds). Clients register again at the start
// of every authorization, so nothing needs an idle one.
const oauthClientIdle = 24 * 60 * 60 * 1000

// OAuthClient is a registered OAuth 2.0 client.
type OAuthClient struct {
	ClientID  string
	Metadata  string // the registered metadata, JSON
	CreatedTS int64
}

// OAuthCode is what an authorization code stands for.
type OAuthCode struct {
	ClientID      string
	RedirectURI   string
	UserID        string
	DeviceID      string
	Scope         string
	CodeChallenge string
	AuthProvider  string // the identity provider the user signed in at
	SessionID     string // its session (sid), may be empty
	ExpiresTS     int64
}

// OAuthSession is the device an authorization code created.
type OAuthSession struct {
	UserID   string
	DeviceID string
	ClientID string
	Scope    string
}

// RegisterOAuthClient stores a client registration under clientID unless
// one with the same metadata hash exists; either way it returns the
// client ID that holds the metadata now and whether the row is new.
// Clients idle for a day without sessions are removed at the same time.
func (db *DB) RegisterOAuthClient(ctx context.Context, clientID, metadata string, hash []byte, now int64) (string, bool, error) {
	var id string
	var created bool
	err := db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE registered_ts < $1
			AND NOT EXISTS (SELECT 1 FROM oauth_sessions s WHERE s.client_id = oauth_clients.client_id)
			AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.client_id = oauth_clients.client_id)`,
			now-oauthClientIdle); err != nil {
			return fmt.Errorf("storage: drop idle oauth clients: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (client_id, metadata, metadata_hash, created_ts, registered_ts)
			VALUES ($1, $2, $3, $4, $4) ON CONFLICT (metadata_hash) DO UPDATE SET registered_ts = $4`,
			clientID, metadata, hash, now)
		if err != nil {
			return fmt.Errorf("storage: register oauth client: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT client_id FROM oauth_clients WHERE metadata_hash = $1`, hash).Scan(&id); err != nil {
			return fmt.Errorf("storage: registered oauth client: %w", err)
		}
		created = id == clientID
		return nil
	})
	if err != nil {
		return "", false, err
	}
	return id, created, nil
}

// OAuthClientByHash returns the ID of the client registered with this
// metadata hash, or ErrNotFound.
func (db *DB) OAuthClientByHash(ctx context.Context, hash []byte) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT client_id FROM oauth_clients WHERE metadata_hash = $1`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: oauth client by metadata: %w", err)
	}
	return id, nil
}

// OAuthClient returns a registered client, or ErrNotFound.
func (db *DB) OAuthClient(ctx context.Context, clientID string) (OAuthClient, error) {
	c := OAuthClient{ClientID: clientID}
	err := db.read.QueryRowContext(ctx, `SELECT metadata, created_ts FROM oauth_clients WHERE client_id = $1`, clientID).
		Scan(&c.Metadata, &c.CreatedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthClient{}, ErrNotFound
	}
	if err != nil {
		return OAuthClient{}, fmt.Errorf("storage: oauth client: %w", err)
	}
	return c, nil
}

// CreateOAuthCode stores an authorization code by its hash. Codes past
// their expiry at now (milliseconds) are removed at the same time.
func (db *DB) CreateOAuthCode(ctx context.Context, hash []byte, c OAuthCode, now int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_codes WHERE expires_ts < $1`, now); err != nil {
			return fmt.Errorf("storage: expire oauth codes: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, user_id, device_id, scope,
			code_challenge, auth_provider, session_id, expires_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			hash, c.ClientID, c.RedirectURI, c.UserID, c.DeviceID, c.Scope, c.CodeChallenge, c.AuthProvider, c.SessionID, c.ExpiresTS)
		if err != nil {
			return fmt.Errorf("storage: create oauth code: %w", err)
		}
		return nil
	})
}

// ConsumeOAuthCode marks the code with this hash used and returns what it
// stands for. Only the first call for a code succeeds: later ones get
// ErrUsed together with the code (so that the caller can revoke what the
// first one created); an unknown code is ErrNotFound, and one that expired
// before now (milliseconds) is ErrExpired, used up all the same.
func (db *DB) ConsumeOAuthCode(ctx context.Context, hash []byte, now int64) (OAuthCode, error) {
	var c OAuthCode
	var used sql.NullInt64
	err := db.inTx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT client_id, redirect_uri, user_id, device_id, scope, code_challenge,
			auth_provider, session_id, expires_ts, used_ts FROM oauth_codes WHERE code_hash = $1`+db.engine.forUpdate(), hash).
			Scan(&c.ClientID, &c.RedirectURI, &c.UserID, &c.DeviceID, &c.Scope, &c.CodeChallenge, &c.AuthProvider, &c.SessionID, &c.ExpiresTS, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: consume oauth code: %w", err)
		}
		if used.Valid {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_codes SET used_ts = $2 WHERE code_hash = $1`, hash, now); err != nil {
			return fmt.Errorf("storage: consume oauth code: %w", err)
		}
		return nil
	})
	switch {
	case err != nil:
		return OAuthCode{}, err
	case used.Valid:
		return c, ErrUsed
	case c.ExpiresTS < now:
		return OAuthCode{}, ErrExpired
	}
	return c, nil
}

// CreateOAuthSession records that the code with hash codeHash created the
// session's device (replacing an earlier record for the device).
func (db *DB) CreateOAuthSession(ctx context.Context, s OAuthSession, codeHash []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO oauth_sessions (user_id, device_id, client_id, scope, code_hash, created_ts)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, device_id)
		DO UPDATE SET client_id = $3, scope = $4, code_hash = $5, created_ts = $6`,
		s.UserID, s.DeviceID, s.ClientID, s.Scope, codeHash, nowMS())
	if err != nil {
		return fmt.Errorf("storage: create oauth session of %s: %w", s.UserID, err)
	}
	return nil
}

// OAuthSession returns the OAuth 2.0 session of a device, or ErrNotFound
// (the device does not exist or signed in another way).
func (db *DB) OAuthSession(ctx context.Context, userID, deviceID string) (OAuthSession, error) {
	s := OAuthSession{UserID: userID, DeviceID: deviceID}
	err := db.read.QueryRowContext(ctx, `SELECT client_id, scope FROM oauth_sessions WHERE user_id = $1 AND device_id = $2`,
		userID, deviceID).Scan(&s.ClientID, &s.Scope)
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthSession{}, ErrNotFound
	}
	if err != nil {
		return OAuthSession{}, fmt.Errorf("storage: oauth session: %w", err)
	}
	return s, nil
}

// OAuthSessionByCode returns the session the code with this hash created,
// or ErrNotFound.
func (db *DB) OAuthSessionByCode(ctx context.Context, codeHash []byte) (OAuthSession, error) {
	var s OAuthSession
	err := db.read.QueryRowContext(ctx, `SELECT user_id, device_id, client_id, scope FROM oauth_sessions WHERE code_hash = $1`,
		codeHash).Scan(&s.UserID, &s.DeviceID, &s.ClientID, &s.Scope)
	if errors.Is(err, sql.ErrNoRows) {
		return OAuthSession{}, ErrNotFound
	}
	if err != nil {
		return OAuthSession{}, fmt.Errorf("storage: oauth session by code: %w", err)
	}
	return s, nil
}

// RefreshTokenDevice returns the device a refresh token (by hash) belongs
// to, expired or not, or ErrNotFound.
func (db *DB) RefreshTokenDevice(ctx context.Context, refreshHash []byte) (DeviceRef, error) {
	var d DeviceRef
	err := db.read.QueryRowContext(ctx, `SELECT user_id, device_id FROM refresh_tokens WHERE token_hash = $1`, refreshHash).
		Scan(&d.UserID, &d.DeviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return DeviceRef{}, ErrNotFound
	}
	if err != nil {
		return DeviceRef{}, fmt.Errorf("storage: refresh token owner: %w", err)
	}
	return d, nil
}
