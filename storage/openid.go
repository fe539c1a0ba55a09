package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AddOpenIDToken stores the hash of a new OpenID token of userID valid
// until expiresTS (ms), and drops tokens that expired before nowTS.
func (db *DB) AddOpenIDToken(ctx context.Context, tokenHash, userID string, expiresTS, nowTS int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM openid_tokens WHERE expires_ts <= $1`, nowTS); err != nil {
			return fmt.Errorf("storage: drop expired openid tokens: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`,
			tokenHash, userID, expiresTS); err != nil {
			return fmt.Errorf("storage: add openid token: %w", err)
		}
		return nil
	})
}

// OpenIDTokenUser returns the user an OpenID token (by its hash) belongs
// to, or "" if there is no such token or it expired at or before nowTS.
func (db *DB) OpenIDTokenUser(ctx context.Context, tokenHash string, nowTS int64) (string, error) {
	var userID string
	err := db.read.QueryRowContext(ctx, `SELECT user_id FROM openid_tokens WHERE token_hash = $1 AND expires_ts > $2`,
		tokenHash, nowTS).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("storage: openid token: %w", err)
	}
	return userID, nil
}
