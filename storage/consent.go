package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ConsentState is what the database knows of a user's consent: the version
// agreed to last (and when), and the version whose notice was sent last.
// Empty strings mean "never".
type ConsentState struct {
	Version    string // the latest version agreed to
	TS         int64  // when it was agreed to, ms
	NoticeSent string // the latest version whose consent notice was sent
}

// RecordConsent records that userID agreed to version now. Agreeing to the
// same version again keeps the first time.
func (db *DB) RecordConsent(ctx context.Context, userID, version string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO consent_records (user_id, version, ts) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, version) DO NOTHING`, userID, version, nowMS())
	if err != nil {
		return fmt.Errorf("storage: record consent of %s: %w", userID, err)
	}
	return nil
}

// HasConsented reports whether userID agreed to version.
func (db *DB) HasConsented(ctx context.Context, userID, version string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM consent_records WHERE user_id = $1 AND version = $2`,
		userID, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: consent of %s: %w", userID, err)
	}
	return true, nil
}

// RecordConsentNotice records that userID was sent the notice of version.
// It reports false if that was already recorded (another request sent it).
func (db *DB) RecordConsentNotice(ctx context.Context, userID, version string) (bool, error) {
	res, err := db.write.ExecContext(ctx, `INSERT INTO consent_notices (user_id, version, ts) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, version) DO NOTHING`, userID, version, nowMS())
	if err != nil {
		return false, fmt.Errorf("storage: record consent notice of %s: %w", userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storage: record consent notice of %s: %w", userID, err)
	}
	return n > 0, nil
}

// ConsentNoticeSent reports whether userID was sent the notice of version.
func (db *DB) ConsentNoticeSent(ctx context.Context, userID, version string) (bool, error) {
	var one int
	err := db.read.QueryRowContext(ctx, `SELECT 1 FROM consent_notices WHERE user_id = $1 AND version = $2`,
		userID, version).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: consent notice of %s: %w", userID, err)
	}
	return true, nil
}

// ForgetConsentNotice removes the record that the notice of version was
// sent, after sending it failed, so a later request tries again.
func (db *DB) ForgetConsentNotice(ctx context.Context, userID, version string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM consent_notices WHERE user_id = $1 AND version = $2`, userID, version)
	if err != nil {
		return fmt.Errorf("storage: forget consent notice of %s: %w", userID, err)
	}
	return nil
}

// ConsentStateOf returns the user's latest consent and latest notice.
func (db *DB) ConsentStateOf(ctx context.Context, userID string) (ConsentState, error) {
	var st ConsentState
	err := db.read.QueryRowContext(ctx, `SELECT version, ts FROM consent_records WHERE user_id = $1
		ORDER BY ts DESC, version DESC LIMIT 1`, userID).Scan(&st.Version, &st.TS)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("storage: consent state of %s: %w", userID, err)
	}
	var ts int64
	err = db.read.QueryRowContext(ctx, `SELECT version, ts FROM consent_notices WHERE user_id = $1
		ORDER BY ts DESC, version DESC LIMIT 1`, userID).Scan(&st.NoticeSent, &ts)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("storage: consent notice state of %s: %w", userID, err)
	}
	return st, nil
}

// ConsentHistory returns every version userID agreed to, oldest first.
func (db *DB) ConsentHistory(ctx context.Context, userID string) ([]ConsentState, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT version, ts FROM consent_records WHERE user_id = $1
		ORDER BY ts, version`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: consent history of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []ConsentState
	for rows.Next() {
		var st ConsentState
		if err := rows.Scan(&st.Version, &st.TS); err != nil {
			return nil, fmt.Errorf("storage: scan consent: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// NoticeRoom returns the user's current notices room, or ErrNotFound.
func (db *DB) NoticeRoom(ctx context.Context, userID string) (string, error) {
	var roomID string
	err := db.read.QueryRowContext(ctx, `SELECT room_id FROM server_notice_rooms WHERE user_id = $1`, userID).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("storage: notices room of %s: %w", userID, err)
	}
	return roomID, nil
}

// SetNoticeRoom makes roomID the user's notices room.
func (db *DB) SetNoticeRoom(ctx context.Context, userID, roomID string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO server_notice_rooms (user_id, room_id) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id`, userID, roomID)
	if err != nil {
		return fmt.Errorf("storage: set notices room of %s: %w", userID, err)
	}
	return nil
}

// LocalUserIDs returns the IDs of every active account, in order.
func (db *DB) LocalUserIDs(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT user_id FROM users WHERE deactivated = $1 ORDER BY user_id`, false)
	if err != nil {
		return nil, fmt.Errorf("storage: list users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storage: scan user: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
