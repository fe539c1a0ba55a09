package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
)

// ExternalID links an account to a subject at a single sign-on provider.
type ExternalID struct {
	AuthProvider string
	ExternalID   string
	UserID       string
}

// ThreePID is a third-party identifier (an e-mail address) of an account.
type ThreePID struct {
	Medium      string
	Address     string
	ValidatedTS int64
	AddedTS     int64
}

// LoginToken is what a consumed login token stood for.
type LoginToken struct {
	UserID       string
	ExpiresTS    int64
	AuthProvider string
	SessionID    string // the provider's session (sid), may be empty
}

// DeviceRef names one device of one user.
type DeviceRef struct {
	UserID   string
	DeviceID string
}

// UserByExternalID returns the user linked to subject at provider, or
// ErrNotFound.
func (db *DB) UserByExternalID(ctx context.Context, provider, subject string) (string, error) {
	var userID string
	err := db.read.QueryRowContext(ctx, `SELECT user_id FROM user_external_ids
		WHERE auth_provider = $1 AND external_id = $2`, provider, subject).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: external id: %w", err)
	}
	return userID, nil
}

// ExternalIDs returns the provider links of a user, oldest first.
func (db *DB) ExternalIDs(ctx context.Context, userID string) ([]ExternalID, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT auth_provider, external_id, user_id FROM user_external_ids
		WHERE user_id = $1 ORDER BY created_ts, auth_provider, external_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: external ids of %s: %w", userID, err)
	}
	defer rows.Close()
	out := []ExternalID{}
	for rows.Next() {
		var e ExternalID
		if err := rows.Scan(&e.AuthProvider, &e.ExternalID, &e.UserID); err != nil {
			return nil, fmt.Errorf("storage: external ids of %s: %w", userID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CreateSSOUser creates the account u linked to subject at provider, and,
// if email is not empty and not bound to another account, records it as
// the account's e-mail 3PID, all in one transaction. It returns
// ErrConflict if the user ID or the link exists already.
func (db *DB) CreateSSOUser(ctx context.Context, u User, provider, subject, email string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		now := nowMS()
		_, err := tx.ExecContext(ctx, `INSERT INTO users
			(user_id, localpart, password_hash, is_admin, user_type, created_ts, displayname, avatar_url)
			VALUES ($1, $2, NULL, $3, $4, $5, $6, $7)`,
			u.UserID, u.Localpart, u.IsAdmin, nullString(u.UserType), now, nullString(u.DisplayName), nullString(u.AvatarURL))
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
		}
		if err := insertExternalID(ctx, tx, provider, subject, u.UserID, now); err != nil {
			return err
		}
		if email != "" {
			return insertThreePID(ctx, tx, u.UserID, "email", email, now)
		}
		return nil
	})
}

// LinkExternalID links subject at provider to an existing account. It
// returns ErrConflict if the subject is linked already.
func (db *DB) LinkExternalID(ctx context.Context, provider, subject, userID string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		return insertExternalID(ctx, tx, provider, subject, userID, nowMS())
	})
}

func insertExternalID(ctx context.Context, tx *Tx, provider, subject, userID string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO user_external_ids (auth_provider, external_id, user_id, created_ts)
		VALUES ($1, $2, $3, $4)`, provider, subject, userID, now)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("storage: link external id of %s: %w", userID, err)
	}
	return nil
}

// insertThreePID binds a validated 3PID to the user unless another
// account holds it already (then it is silently not bound).
func insertThreePID(ctx context.Context, tx *Tx, userID, medium, address string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO user_threepids (medium, address, user_id, validated_ts, added_ts)
		VALUES ($1, $2, $3, $4, $4) ON CONFLICT (medium, address) DO NOTHING`, medium, address, userID, now)
	if err != nil {
		return fmt.Errorf("storage: add 3pid of %s: %w", userID, err)
	}
	return nil
}

// AddThreePID binds a validated 3PID to the user; an address bound to
// another account stays with that account.
func (db *DB) AddThreePID(ctx context.Context, userID, medium, address string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		return insertThreePID(ctx, tx, userID, medium, address, nowMS())
	})
}

// ThreePIDs returns the user's third-party identifiers.
func (db *DB) ThreePIDs(ctx context.Context, userID string) ([]ThreePID, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT medium, address, validated_ts, added_ts FROM user_threepids
		WHERE user_id = $1 ORDER BY added_ts, medium, address`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: 3pids of %s: %w", userID, err)
	}
	defer rows.Close()
	out := []ThreePID{}
	for rows.Next() {
		var p ThreePID
		if err := rows.Scan(&p.Medium, &p.Address, &p.ValidatedTS, &p.AddedTS); err != nil {
			return nil, fmt.Errorf("storage: 3pids of %s: %w", userID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CreateLoginToken stores a login token by its hash. Expired tokens are
// removed at the same time.
func (db *DB) CreateLoginToken(ctx context.Context, hash []byte, t LoginToken) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_tokens WHERE expires_ts < $1`, nowMS()); err != nil {
			return fmt.Errorf("storage: expire login tokens: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO login_tokens (token_hash, user_id, expires_ts, auth_provider, session_id)
			VALUES ($1, $2, $3, $4, $5)`, hash, t.UserID, t.ExpiresTS, t.AuthProvider, t.SessionID)
		if err != nil {
			return fmt.Errorf("storage: create login token: %w", err)
		}
		return nil
	})
}

// ConsumeLoginToken deletes the login token with this hash and returns
// what it stood for: ErrNotFound if there is none (never issued or used
// already), ErrExpired if it expired before now (milliseconds).
func (db *DB) ConsumeLoginToken(ctx context.Context, hash []byte, now int64) (LoginToken, error) {
	var t LoginToken
	err := db.inTx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM login_tokens WHERE token_hash = $1
			RETURNING user_id, expires_ts, auth_provider, session_id`, hash).
			Scan(&t.UserID, &t.ExpiresTS, &t.AuthProvider, &t.SessionID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: consume login token: %w", err)
		}
		return nil
	})
	if err != nil {
		return LoginToken{}, err
	}
	if t.ExpiresTS < now {
		return LoginToken{}, ErrExpired
	}
	return t, nil
}

// DeleteLoginTokens removes the unused login tokens of a provider session.
func (db *DB) DeleteLoginTokens(ctx context.Context, provider, sessionID string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM login_tokens WHERE auth_provider = $1 AND session_id = $2`, provider, sessionID)
	if err != nil {
		return fmt.Errorf("storage: delete login tokens: %w", err)
	}
	return nil
}

// LinkDeviceSession records that the device was created from the
// provider session sessionID.
func (db *DB) LinkDeviceSession(ctx context.Context, userID, deviceID, provider, sessionID string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO device_sso_sessions (user_id, device_id, auth_provider, session_id)
		VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id) DO UPDATE SET auth_provider = $3, session_id = $4`,
		userID, deviceID, provider, sessionID)
	if err != nil {
		return fmt.Errorf("storage: link device session of %s: %w", userID, err)
	}
	return nil
}

// SessionDevices returns the devices created from a provider session; an
// empty sessionID with a userID returns every device of that user created
// through the provider.
func (db *DB) SessionDevices(ctx context.Context, provider, sessionID, userID string) ([]DeviceRef, error) {
	query := `SELECT user_id, device_id FROM device_sso_sessions WHERE auth_provider = $1 AND session_id = $2`
	args := []any{provider, sessionID}
	if sessionID == "" {
		query = `SELECT user_id, device_id FROM device_sso_sessions WHERE auth_provider = $1 AND user_id = $2`
		args = []any{provider, userID}
	}
	rows, err := db.read.QueryContext(ctx, query+` ORDER BY user_id, device_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: session devices: %w", err)
	}
	defer rows.Close()
	var out []DeviceRef
	for rows.Next() {
		var d DeviceRef
		if err := rows.Scan(&d.UserID, &d.DeviceID); err != nil {
			return nil, fmt.Errorf("storage: session devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ServerSecret returns the secret called name, creating 32 random bytes
// on first use.
func (db *DB) ServerSecret(ctx context.Context, name string) ([]byte, error) {
	var secret []byte
	err := db.inTx(ctx, func(tx *Tx) error {
		fresh := make([]byte, 32)
		rand.Read(fresh) // never fails
		if _, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, secret) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return fmt.Errorf("storage: create secret %s: %w", name, err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT secret FROM server_secrets WHERE name = $1`, name).Scan(&secret); err != nil {
			return fmt.Errorf("storage: secret %s: %w", name, err)
		}
		return nil
	})
	return secret, err
}
