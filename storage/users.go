package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// User is one account row.
type User struct {
	UserID       string
	Localpart    string
	PasswordHash string // empty: the account has no password
	IsAdmin      bool
	UserType     string // empty for ordinary users
	Deactivated  bool
	CreatedTS    int64
	DisplayName  string
	AvatarURL    string
}

// CreateUser inserts a new account. It returns ErrConflict if the user ID
// (or localpart) is taken, including by a deactivated account.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO users
		(user_id, localpart, password_hash, is_admin, user_type, created_ts, displayname, avatar_url)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.UserID, u.Localpart, nullString(u.PasswordHash), u.IsAdmin, nullString(u.UserType),
		nowMS(), nullString(u.DisplayName), nullString(u.AvatarURL))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("storage: create user %s: %w", u.UserID, err)
	}
	return nil
}

// User returns the account with the given user ID, or ErrNotFound.
func (db *DB) User(ctx context.Context, userID string) (User, error) {
	var u User
	var pw, typ, dn, av sql.NullString
	err := db.read.QueryRowContext(ctx, `SELECT user_id, localpart, password_hash, is_admin, user_type,
		deactivated, created_ts, displayname, avatar_url FROM users WHERE user_id = $1`, userID).
		Scan(&u.UserID, &u.Localpart, &pw, &u.IsAdmin, &typ, &u.Deactivated, &u.CreatedTS, &dn, &av)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("storage: user %s: %w", userID, err)
	}
	u.PasswordHash, u.UserType, u.DisplayName, u.AvatarURL = pw.String, typ.String, dn.String, av.String
	return u, nil
}

// SetPasswordHash replaces the user's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return db.execOne(ctx, `UPDATE users SET password_hash = $2 WHERE user_id = $1`, userID, hash)
}

// SetAdmin grants or revokes server admin rights.
func (db *DB) SetAdmin(ctx context.Context, userID string, admin bool) error {
	return db.execOne(ctx, `UPDATE users SET is_admin = $2 WHERE user_id = $1`, userID, admin)
}

// SetDisplayName sets (or with "" clears) the user's global display name.
func (db *DB) SetDisplayName(ctx context.Context, userID, name string) error {
	return db.execOne(ctx, `UPDATE users SET displayname = $2 WHERE user_id = $1`, userID, nullString(name))
}

// SetAvatarURL sets (or with "" clears) the user's global avatar URL.
func (db *DB) SetAvatarURL(ctx context.Context, userID, url string) error {
	return db.execOne(ctx, `UPDATE users SET avatar_url = $2 WHERE user_id = $1`, userID, nullString(url))
}

// DeactivateUser marks the account deactivated, removes its password,
// profile and devices (and with them every token) in one transaction. The
// user ID stays taken forever.
func (db *DB) DeactivateUser(ctx context.Context, userID string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET deactivated = $2, password_hash = NULL,
			displayname = NULL, avatar_url = NULL WHERE user_id = $1`, userID, true)
		if err != nil {
			return fmt.Errorf("storage: deactivate %s: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		for _, q := range []string{
			`DELETE FROM access_tokens WHERE user_id = $1`,
			`DELETE FROM refresh_tokens WHERE user_id = $1`,
			`DELETE FROM devices WHERE user_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("storage: deactivate %s: %w", userID, err)
			}
		}
		if err := dropDeletedDeviceKeys(ctx, tx, userID); err != nil { // keys.go
			return err
		}
		if err := dropUserBackups(ctx, tx, userID); err != nil { // keybackup.go
			return err
		}
		return dropDeletedDeviceInboxes(ctx, tx, userID) // todevice.go
	})
}

// execOne runs a write that must affect exactly one row; no row is ErrNotFound.
func (db *DB) execOne(ctx context.Context, query string, args ...any) error {
	res, err := db.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

// nullString maps "" to SQL NULL.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
