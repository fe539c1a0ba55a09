package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// End-to-end encryption keys: device keys, one-time and fallback keys, and
// the device-list stream (schema 0009_keys).

// Errors of UploadKeys.
var (
	// ErrDeviceKeysChanged: the device already has different device keys.
	ErrDeviceKeysChanged = errors.New("storage: device keys differ from the stored ones")
	// ErrOneTimeKeyExists: a one-time key ID was uploaded before with a
	// different key.
	ErrOneTimeKeyExists = errors.New("storage: one-time key already exists")
)

// OneTimeKey is a one-time or fallback key of a device.
type OneTimeKey struct {
	Algorithm string
	KeyID     string
	JSON      []byte // the key object (or string) as uploaded
}

// KeyUpload is one POST /keys/upload of a device. DeviceKeys, if not nil,
// is the canonical JSON of its device keys.
type KeyUpload struct {
	UserID       string
	DeviceID     string
	DeviceKeys   []byte
	OneTimeKeys  []OneTimeKey
	FallbackKeys []OneTimeKey
}

// KeyCounts are a device's unused one-time keys by algorithm, and the
// algorithms of its unused fallback keys.
type KeyCounts struct {
	OneTime  map[string]int
	Fallback []string
}

// UploadKeys stores a device's keys in one transaction and returns its key
// counts afterwards. New device keys start a device-list change; the same
// keys again change nothing, different ones are ErrDeviceKeysChanged. A
// fallback key replaces the device's previous one of its algorithm. A
// one-time key ID already stored with the same key is ignored, with a
// different key it is ErrOneTimeKeyExists. Nothing is stored on error.
func (db *DB) UploadKeys(ctx context.Context, u KeyUpload) (KeyCounts, error) {
	var counts KeyCounts
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := db.engine.lockKey(ctx, tx, "keys|"+u.UserID+"|"+u.DeviceID); err != nil {
			return err
		}
		if u.DeviceKeys != nil {
			var stored string
			err := tx.QueryRowContext(ctx, `SELECT key_json FROM device_keys WHERE user_id = $1 AND device_id = $2`,
				u.UserID, u.DeviceID).Scan(&stored)
			switch {
			case err == nil:
				if !bytes.Equal([]byte(stored), u.DeviceKeys) {
					return ErrDeviceKeysChanged
				}
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.ExecContext(ctx, `INSERT INTO device_keys (user_id, device_id, key_json) VALUES ($1, $2, $3)`,
					u.UserID, u.DeviceID, string(u.DeviceKeys)); err != nil {
					return fmt.Errorf("storage: store device keys: %w", err)
				}
				if err := markDeviceListChange(ctx, tx, u.UserID); err != nil {
					return err
				}
			default:
				return fmt.Errorf("storage: device keys: %w", err)
			}
		}
		for _, k := range u.OneTimeKeys {
			res, err := tx.ExecContext(ctx, `INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING`,
				u.UserID, u.DeviceID, k.Algorithm, k.KeyID, string(k.JSON))
			if err != nil {
				return fmt.Errorf("storage: store one-time key: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				var stored string
				err := tx.QueryRowContext(ctx, `SELECT key_json FROM one_time_keys
					WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id = $4`,
					u.UserID, u.DeviceID, k.Algorithm, k.KeyID).Scan(&stored)
				if err != nil {
					return fmt.Errorf("storage: one-time key: %w", err)
				}
				if !bytes.Equal([]byte(stored), k.JSON) {
					return fmt.Errorf("%w: %s:%s", ErrOneTimeKeyExists, k.Algorithm, k.KeyID)
				}
			}
		}
		for _, k := range u.FallbackKeys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET
					key_id = excluded.key_id, key_json = excluded.key_json, used = excluded.used`,
				u.UserID, u.DeviceID, k.Algorithm, k.KeyID, string(k.JSON), false); err != nil {
				return fmt.Errorf("storage: store fallback key: %w", err)
			}
		}
		if len(u.OneTimeKeys) > 0 || len(u.FallbackKeys) > 0 {
			tx.changes = append(tx.changes, Change{Kind: ChangeKeyCounts, UserID: u.UserID, DeviceID: u.DeviceID})
		}
		var err error
		counts, err = keyCounts(ctx, tx, u.UserID, u.DeviceID)
		return err
	})
	return counts, err
}

// markDeviceListChange records that the user's devices or cross-signing
// keys changed, at a new stream position.
func markDeviceListChange(ctx context.Context, tx *Tx, userID string) error {
	pos, err := nextStreamPos(ctx, tx, Change{Kind: ChangeDeviceList, UserID: userID})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_lists (user_id, stream_pos) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET stream_pos = excluded.stream_pos`, userID, pos); err != nil {
		return fmt.Errorf("storage: record device list change: %w", err)
	}
	return nil
}

// keyCounts reads a device's key counts.
func keyCounts(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, userID, deviceID string) (KeyCounts, error) {
	c := KeyCounts{OneTime: map[string]int{}, Fallback: []string{}}
	rows, err := q.QueryContext(ctx, `SELECT algorithm, COUNT(*) FROM one_time_keys
		WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm`, userID, deviceID)
	if err != nil {
		return c, fmt.Errorf("storage: count one-time keys: %w", err)
	}
	for rows.Next() {
		var alg string
		var n int
		if err := rows.Scan(&alg, &n); err != nil {
			rows.Close()
			return c, fmt.Errorf("storage: scan key count: %w", err)
		}
		c.OneTime[alg] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("storage: count one-time keys: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT algorithm FROM fallback_keys
		WHERE user_id = $1 AND device_id = $2 AND NOT used ORDER BY algorithm`, userID, deviceID)
	if err != nil {
		return c, fmt.Errorf("storage: fallback keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var alg string
		if err := rows.Scan(&alg); err != nil {
			return c, fmt.Errorf("storage: scan fallback key: %w", err)
		}
		c.Fallback = append(c.Fallback, alg)
	}
	return c, rows.Err()
}

// KeyCounts returns a device's key counts.
func (db *DB) KeyCounts(ctx context.Context, userID, deviceID string) (KeyCounts, error) {
	return keyCounts(ctx, db.read, userID, deviceID)
}

// StoredDeviceKeys is a device's uploaded keys with its display name.
type StoredDeviceKeys struct {
	UserID      string
	DeviceID    string
	DisplayName string
	JSON        []byte
}

// DeviceKeysOf returns the device keys of the users' devices (of every
// device when a user's list in devices is empty), ordered by user and
// device.
func (db *DB) DeviceKeysOf(ctx context.Context, devices map[string][]string) ([]StoredDeviceKeys, error) {
	var out []StoredDeviceKeys
	for userID, ids := range devices {
		q := `SELECT k.user_id, k.device_id, COALESCE(d.display_name, ''), k.key_json FROM device_keys k
			JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = $1`
		args := []any{userID}
		if len(ids) > 0 {
			cond, arg := db.engine.anyOf("k.device_id", 2, ids)
			q += ` AND ` + cond
			args = append(args, arg)
		}
		rows, err := db.read.QueryContext(ctx, q+` ORDER BY k.device_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("storage: device keys of %s: %w", userID, err)
		}
		for rows.Next() {
			var k StoredDeviceKeys
			var js string
			if err := rows.Scan(&k.UserID, &k.DeviceID, &k.DisplayName, &js); err != nil {
				rows.Close()
				return nil, fmt.Errorf("storage: scan device keys: %w", err)
			}
			k.JSON = []byte(js)
			out = append(out, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("storage: device keys of %s: %w", userID, err)
		}
	}
	return out, nil
}

// KeyClaim asks for one key of an algorithm for a device.
type KeyClaim struct {
	UserID, DeviceID, Algorithm string
}

// ClaimedKey is a key handed out by ClaimKeys.
type ClaimedKey struct {
	KeyClaim
	KeyID string
	JSON  []byte
}

// ClaimKeys hands out one key per claim: a one-time key, which is deleted,
// or when none is left the device's fallback key of the algorithm, which is
// marked used and kept. Concurrent claims for the same device are
// serialised, so no one-time key is ever handed out twice. Claims that
// find no key are left out of the result.
func (db *DB) ClaimKeys(ctx context.Context, claims []KeyClaim) ([]ClaimedKey, error) {
	var out []ClaimedKey
	err := db.inTx(ctx, func(tx *Tx) error {
		out = out[:0]
		changed := map[[2]string]bool{}
		for _, c := range claims {
			if err := db.engine.lockKey(ctx, tx, "keys|"+c.UserID+"|"+c.DeviceID); err != nil {
				return err
			}
			var k ClaimedKey
			var js string
			err := tx.QueryRowContext(ctx, `DELETE FROM one_time_keys
				WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 AND key_id =
					(SELECT key_id FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
					 ORDER BY key_id LIMIT 1)
				RETURNING key_id, key_json`, c.UserID, c.DeviceID, c.Algorithm).Scan(&k.KeyID, &js)
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.QueryRowContext(ctx, `UPDATE fallback_keys SET used = $4
					WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
					RETURNING key_id, key_json`, c.UserID, c.DeviceID, c.Algorithm, true).Scan(&k.KeyID, &js)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
			}
			if err != nil {
				return fmt.Errorf("storage: claim key of %s %s: %w", c.UserID, c.DeviceID, err)
			}
			k.KeyClaim, k.JSON = c, []byte(js)
			out = append(out, k)
			changed[[2]string{c.UserID, c.DeviceID}] = true
		}
		for d := range changed {
			tx.changes = append(tx.changes, Change{Kind: ChangeKeyCounts, UserID: d[0], DeviceID: d[1]})
		}
		return nil
	})
	return out, err
}

// dropDeletedDeviceKeys deletes the keys of the user's devices that no
// longer exist and, if there were any, records a device-list change. It
// runs in the transaction that deletes devices.
func dropDeletedDeviceKeys(ctx context.Context, tx *Tx, userID string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM device_keys WHERE user_id = $1
		AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.user_id = device_keys.user_id AND d.device_id = device_keys.device_id)`, userID)
	if err != nil {
		return fmt.Errorf("storage: delete device keys: %w", err)
	}
	for _, table := range []string{"one_time_keys", "fallback_keys"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1
			AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.user_id = `+table+`.user_id AND d.device_id = `+table+`.device_id)`, userID); err != nil {
			return fmt.Errorf("storage: delete %s: %w", table, err)
		}
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return markDeviceListChange(ctx, tx, userID)
	}
	return nil
}

// joinedTogether is a condition on a user ID column: the user shares a
// joined room with the user in parameter $1.
func joinedTogether(col string) string {
	return `EXISTS (SELECT 1 FROM room_state mine JOIN room_state theirs ON theirs.room_id = mine.room_id
		WHERE mine.type = 'm.room.member' AND mine.state_key = $1 AND mine.membership = 'join' AND mine.to_depth IS NULL
		AND theirs.type = 'm.room.member' AND theirs.state_key = ` + col + ` AND theirs.membership = 'join' AND theirs.to_depth IS NULL)`
}

// DeviceListChanges returns the users whose devices or cross-signing keys
// changed after since up to upto and who are the user or share a joined
// room with them now, sorted.
func (db *DB) DeviceListChanges(ctx context.Context, userID string, since, upto int64) ([]string, error) {
	return collectStrings(db.read.QueryContext(ctx, `SELECT dl.user_id FROM device_lists dl
		WHERE dl.stream_pos > $2 AND dl.stream_pos <= $3 AND (dl.user_id = $1 OR `+joinedTogether("dl.user_id")+`)
		ORDER BY dl.user_id`, userID, since, upto))
}

// MemberChange is a user's current membership in a room, set after a
// given stream position.
type MemberChange struct {
	RoomID, UserID, Membership string
}

// MemberChangesSince returns the members of the rooms whose current member
// event was sent after since up to upto.
func (db *DB) MemberChangesSince(ctx context.Context, roomIDs []string, since, upto int64) ([]MemberChange, error) {
	if len(roomIDs) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("s.room_id", 1, roomIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT s.room_id, s.state_key, COALESCE(s.membership, '') FROM room_state s
		JOIN events e ON e.event_id = s.event_id
		WHERE `+cond+` AND s.type = 'm.room.member' AND s.to_depth IS NULL AND e.stream_pos > $2 AND e.stream_pos <= $3
		ORDER BY s.room_id, s.state_key`, arg, since, upto)
	if err != nil {
		return nil, fmt.Errorf("storage: member changes: %w", err)
	}
	defer rows.Close()
	var out []MemberChange
	for rows.Next() {
		var m MemberChange
		if err := rows.Scan(&m.RoomID, &m.UserID, &m.Membership); err != nil {
			return nil, fmt.Errorf("storage: scan member change: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// JoinedMembersOf returns the joined members of the rooms, sorted and
// without repeats.
func (db *DB) JoinedMembersOf(ctx context.Context, roomIDs []string) ([]string, error) {
	if len(roomIDs) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("room_id", 1, roomIDs)
	return collectStrings(db.read.QueryContext(ctx, `SELECT DISTINCT state_key FROM room_state
		WHERE `+cond+` AND type = 'm.room.member' AND membership = 'join' AND to_depth IS NULL ORDER BY state_key`, arg))
}

// SharingRooms returns which of users share a joined room with userID.
func (db *DB) SharingRooms(ctx context.Context, userID string, users []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(users) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("u.user_id", 2, users)
	list, err := collectStrings(db.read.QueryContext(ctx, `SELECT u.user_id FROM users u
		WHERE `+cond+` AND `+joinedTogether("u.user_id"), userID, arg))
	for _, u := range list {
		out[u] = true
	}
	return out, err
}

func collectStrings(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, fmt.Errorf("storage: query: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("storage: scan: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
