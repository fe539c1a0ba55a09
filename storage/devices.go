package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Device is one of a user's devices (a login session).
type Device struct {
	UserID      string
	DeviceID    string
	DisplayName string
	CreatedTS   int64
	LastSeenTS  int64  // 0: never recorded
	LastSeenIP  string // empty unless IP logging is on
}

// NewTokens is the pair of token hashes created by a login or refresh.
// RefreshHash is nil when the client did not ask for a refresh token.
type NewTokens struct {
	AccessHash       []byte
	AccessExpiresTS  int64 // 0: never expires
	RefreshHash      []byte
	RefreshExpiresTS int64 // 0: never expires
}

// TokenOwner is what an access token resolves to.
type TokenOwner struct {
	UserID    string
	DeviceID  string
	ExpiresTS int64 // 0: never expires
	// RefreshHash and RefreshPending are set when the token came from a
	// refresh whose predecessor refresh token has not been revoked yet.
	RefreshHash    []byte
	RefreshPending bool
}

// LoginDevice creates the device (or reuses an existing one of the same ID,
// keeping its display name), revokes any tokens the device had, and stores
// the new tokens, all in one transaction.
func (db *DB) LoginDevice(ctx context.Context, userID, deviceID, displayName string, t NewTokens) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts)
			VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, device_id) DO NOTHING`,
			userID, deviceID, nullString(displayName), nowMS())
		if err != nil {
			return fmt.Errorf("storage: create device %s/%s: %w", userID, deviceID, err)
		}
		for _, q := range []string{
			`DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2`,
			`DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID, deviceID); err != nil {
				return fmt.Errorf("storage: revoke tokens of %s/%s: %w", userID, deviceID, err)
			}
		}
		return insertTokens(ctx, tx, userID, deviceID, t, nil)
	})
}

func insertTokens(ctx context.Context, tx *Tx, userID, deviceID string, t NewTokens, prevRefresh []byte) error {
	now := nowMS()
	if t.RefreshHash != nil {
		_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expires_ts, prev_hash)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.RefreshHash, userID, deviceID, now, nullInt(t.RefreshExpiresTS), nullBytes(prevRefresh))
		if err != nil {
			return fmt.Errorf("storage: insert refresh token: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_hash)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.AccessHash, userID, deviceID, now, nullInt(t.AccessExpiresTS), nullBytes(t.RefreshHash))
	if err != nil {
		return fmt.Errorf("storage: insert access token: %w", err)
	}
	return nil
}

// TokenOwner resolves an access token hash, or returns ErrNotFound. It does
// not check expiry; the caller compares ExpiresTS with its clock.
func (db *DB) TokenOwner(ctx context.Context, accessHash []byte) (TokenOwner, error) {
	var o TokenOwner
	var exp sql.NullInt64
	var prev []byte
	err := db.read.QueryRowContext(ctx, `SELECT a.user_id, a.device_id, a.expires_ts, a.refresh_hash, r.prev_hash
		FROM access_tokens a LEFT JOIN refresh_tokens r ON r.token_hash = a.refresh_hash
		WHERE a.token_hash = $1`, accessHash).Scan(&o.UserID, &o.DeviceID, &exp, &o.RefreshHash, &prev)
	if errors.Is(err, sql.ErrNoRows) {
		return TokenOwner{}, ErrNotFound
	}
	if err != nil {
		return TokenOwner{}, fmt.Errorf("storage: token owner: %w", err)
	}
	o.ExpiresTS = exp.Int64
	o.RefreshPending = prev != nil
	return o, nil
}

// ConfirmRefresh revokes the refresh token that refreshHash replaced, once
// the new tokens have been used.
func (db *DB) ConfirmRefresh(ctx context.Context, refreshHash []byte) error {
	return db.inTx(ctx, func(tx *Tx) error {
		return confirmRefresh(ctx, tx, refreshHash)
	})
}

func confirmRefresh(ctx context.Context, tx *Tx, refreshHash []byte) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE token_hash =
		(SELECT prev_hash FROM refresh_tokens WHERE token_hash = $1)`, refreshHash); err != nil {
		return fmt.Errorf("storage: revoke old refresh token: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET prev_hash = NULL WHERE token_hash = $1`, refreshHash); err != nil {
		return fmt.Errorf("storage: confirm refresh: %w", err)
	}
	return nil
}

// ErrExpired is returned by Refresh for a refresh token past its expiry.
var ErrExpired = errors.New("storage: expired")

// Refresh exchanges a refresh token for new tokens. The old refresh token
// stays valid until the new tokens are used (so a lost response can be
// retried); the access token it had issued is revoked at once. It returns
// the owner of the token, ErrNotFound for an unknown token, and ErrExpired
// for an expired one.
func (db *DB) Refresh(ctx context.Context, oldHash []byte, t NewTokens, now int64) (userID, deviceID string, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		var exp sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT user_id, device_id, expires_ts FROM refresh_tokens WHERE token_hash = $1`, oldHash).
			Scan(&userID, &deviceID, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: refresh: %w", err)
		}
		if exp.Valid && exp.Int64 <= now {
			return ErrExpired
		}
		// Using this token confirms the refresh that created it.
		if err := confirmRefresh(ctx, tx, oldHash); err != nil {
			return err
		}
		// A successor issued earlier was never used (otherwise oldHash would
		// have been revoked): the client lost that response. Drop it.
		for _, q := range []string{
			`DELETE FROM access_tokens WHERE refresh_hash IN (SELECT token_hash FROM refresh_tokens WHERE prev_hash = $1)`,
			`DELETE FROM refresh_tokens WHERE prev_hash = $1`,
			`DELETE FROM access_tokens WHERE refresh_hash = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, oldHash); err != nil {
				return fmt.Errorf("storage: refresh: %w", err)
			}
		}
		return insertTokens(ctx, tx, userID, deviceID, t, oldHash)
	})
	return userID, deviceID, err
}

// Devices lists the user's devices ordered by device ID.
func (db *DB) Devices(ctx context.Context, userID string) ([]Device, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip
		FROM devices WHERE user_id = $1 ORDER BY device_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: devices of %s: %w", userID, err)
	}
	defer rows.Close()
	var ds []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// Device returns one device, or ErrNotFound.
func (db *DB) Device(ctx context.Context, userID, deviceID string) (Device, error) {
	row := db.read.QueryRowContext(ctx, `SELECT user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip
		FROM devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID)
	d, err := scanDevice(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, ErrNotFound
	}
	return d, err
}

func scanDevice(s interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var name, ip sql.NullString
	var seen sql.NullInt64
	if err := s.Scan(&d.UserID, &d.DeviceID, &name, &d.CreatedTS, &seen, &ip); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Device{}, err
		}
		return Device{}, fmt.Errorf("storage: scan device: %w", err)
	}
	d.DisplayName, d.LastSeenTS, d.LastSeenIP = name.String, seen.Int64, ip.String
	return d, nil
}

// SetDeviceDisplayName renames a device; ErrNotFound if it does not exist.
// The name is part of what /keys/query shows, so a device with keys
// records a device-list change.
func (db *DB) SetDeviceDisplayName(ctx context.Context, userID, deviceID, name string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`,
			userID, deviceID, nullString(name))
		if err != nil {
			return fmt.Errorf("storage: rename device: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM device_keys WHERE user_id = $1 AND device_id = $2`, userID, deviceID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: device keys: %w", err)
		}
		return markDeviceListChange(ctx, tx, userID)
	})
}

// TouchDevice records that the device was just used. ip is stored only when
// non-empty (the caller passes it only when IP logging is on).
func (db *DB) TouchDevice(ctx context.Context, userID, deviceID string, ts int64, ip string) error {
	_, err := db.write.ExecContext(ctx, `UPDATE devices SET last_seen_ts = $3, last_seen_ip = COALESCE($4, last_seen_ip)
		WHERE user_id = $1 AND device_id = $2`, userID, deviceID, ts, nullString(ip))
	if err != nil {
		return fmt.Errorf("storage: touch device: %w", err)
	}
	return nil
}

// DeleteDevices deletes the listed devices of a user together with their
// tokens. Unknown device IDs are ignored.
func (db *DB) DeleteDevices(ctx context.Context, userID string, deviceIDs []string) error {
	if len(deviceIDs) == 0 {
		return nil
	}
	cond, arg := db.engine.anyOf("device_id", 2, deviceIDs)
	return db.inTx(ctx, func(tx *Tx) error {
		for _, table := range []string{"access_tokens", "refresh_tokens", "devices"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1 AND `+cond, userID, arg); err != nil {
				return fmt.Errorf("storage: delete devices of %s: %w", userID, err)
			}
		}
		if err := dropDeletedDeviceKeys(ctx, tx, userID); err != nil { // keys.go
			return err
		}
		return dropDeletedDeviceInboxes(ctx, tx, userID) // todevice.go
	})
}

// DeleteAllDevices deletes every device of the user, and with them every
// token, except the device named by keep (if not empty).
func (db *DB) DeleteAllDevices(ctx context.Context, userID, keep string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		for _, table := range []string{"access_tokens", "refresh_tokens", "devices"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1 AND device_id <> $2`, userID, keep); err != nil {
				return fmt.Errorf("storage: delete devices of %s: %w", userID, err)
			}
		}
		if err := dropDeletedDeviceKeys(ctx, tx, userID); err != nil { // keys.go
			return err
		}
		return dropDeletedDeviceInboxes(ctx, tx, userID) // todevice.go
	})
}

// DeleteAccessToken revokes one access token (and its refresh token).
func (db *DB) DeleteAccessToken(ctx context.Context, accessHash []byte) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE token_hash =
			(SELECT refresh_hash FROM access_tokens WHERE token_hash = $1)`, accessHash); err != nil {
			return fmt.Errorf("storage: delete refresh token: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE token_hash = $1`, accessHash); err != nil {
			return fmt.Errorf("storage: delete access token: %w", err)
		}
		return nil
	})
}

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }

// nullBytes maps a nil slice to SQL NULL (drivers differ on nil []byte).
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}
