package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// Pusher is a stored pusher (POST /pushers/set).
type Pusher struct {
	UserID            string
	DeviceID          string // the device that created it; deleting the device deletes the pusher
	Kind              string
	AppID             string
	PushKey           string
	AppDisplayName    string
	DeviceDisplayName string
	ProfileTag        string
	Lang              string
	Data              []byte // the pusher's "data" object, JSON
	PushKeyTS         int64  // when the pushkey was first set, in milliseconds
}

const pusherColumns = `user_id, device_id, kind, app_id, pushkey, app_display_name, device_display_name, profile_tag, lang, data, pushkey_ts`

// SetPusher creates or replaces the user's pusher (app_id, pushkey). Unless
// appendOthers is set, pushers of other users with the same app_id and
// pushkey are removed (spec: POST /pushers/set "append"). A replaced pusher
// keeps its pushkey_ts.
func (db *DB) SetPusher(ctx context.Context, p Pusher, appendOthers bool) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if !appendOthers {
			if _, err := tx.ExecContext(ctx, `DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3`,
				p.AppID, p.PushKey, p.UserID); err != nil {
				return fmt.Errorf("storage: replace pushers: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pushers (`+pusherColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET device_id = excluded.device_id,
				kind = excluded.kind, app_display_name = excluded.app_display_name,
				device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag,
				lang = excluded.lang, data = excluded.data`,
			p.UserID, p.DeviceID, p.Kind, p.AppID, p.PushKey, p.AppDisplayName, p.DeviceDisplayName,
			p.ProfileTag, p.Lang, string(p.Data), p.PushKeyTS)
		if err != nil {
			return fmt.Errorf("storage: set pusher: %w", err)
		}
		return nil
	})
}

// DeletePusher removes the user's pusher (app_id, pushkey) and its pending
// deliveries. Deleting a pusher that does not exist is no error.
func (db *DB) DeletePusher(ctx context.Context, userID, appID, pushKey string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_outbox WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`,
			userID, appID, pushKey); err != nil {
			return fmt.Errorf("storage: delete pusher deliveries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3`,
			userID, appID, pushKey); err != nil {
			return fmt.Errorf("storage: delete pusher: %w", err)
		}
		return nil
	})
}

// Pushers returns the user's pushers, oldest pushkey first.
func (db *DB) Pushers(ctx context.Context, userID string) ([]Pusher, error) {
	return collectPushers(db.read.QueryContext(ctx, `SELECT `+pusherColumns+` FROM pushers
		WHERE user_id = $1 ORDER BY pushkey_ts, app_id, pushkey`, userID))
}

// UsersWithPushers returns every user that has a pusher.
func (db *DB) UsersWithPushers(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT user_id FROM pushers`)
	if err != nil {
		return nil, fmt.Errorf("storage: users with pushers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("storage: scan pusher user: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func collectPushers(rows *sql.Rows, err error) ([]Pusher, error) {
	if err != nil {
		return nil, fmt.Errorf("storage: query pushers: %w", err)
	}
	defer rows.Close()
	var out []Pusher
	for rows.Next() {
		var p Pusher
		var data string
		if err := rows.Scan(&p.UserID, &p.DeviceID, &p.Kind, &p.AppID, &p.PushKey, &p.AppDisplayName,
			&p.DeviceDisplayName, &p.ProfileTag, &p.Lang, &data, &p.PushKeyTS); err != nil {
			return nil, fmt.Errorf("storage: scan pusher: %w", err)
		}
		p.Data = []byte(data)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PushDelivery is a notification waiting for delivery to a push gateway.
type PushDelivery struct {
	ID        int64
	UserID    string
	AppID     string
	PushKey   string
	Body      []byte // the request body, JSON
	Attempts  int
	NextTryTS int64
}

// EnqueuePushes stores deliveries to make. A delivery whose pusher no
// longer exists is dropped.
func (db *DB) EnqueuePushes(ctx context.Context, ds []PushDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	now := nowMS()
	return db.inTx(ctx, func(tx *Tx) error {
		for _, d := range ds {
			if _, err := tx.ExecContext(ctx, `INSERT INTO push_outbox (user_id, app_id, pushkey, body, attempts, next_try_ts, created_ts)
				SELECT $1, $2, $3, $4, 0, $5, $5 WHERE EXISTS
					(SELECT 1 FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3)`,
				d.UserID, d.AppID, d.PushKey, string(d.Body), now); err != nil {
				return fmt.Errorf("storage: enqueue push: %w", err)
			}
		}
		return nil
	})
}

// DuePushes returns up to limit deliveries due at or before now, oldest
// first.
func (db *DB) DuePushes(ctx context.Context, now int64, limit int) ([]PushDelivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, user_id, app_id, pushkey, body, attempts, next_try_ts
		FROM push_outbox WHERE next_try_ts <= $1 ORDER BY next_try_ts, id LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: due pushes: %w", err)
	}
	defer rows.Close()
	var out []PushDelivery
	for rows.Next() {
		var d PushDelivery
		var body string
		if err := rows.Scan(&d.ID, &d.UserID, &d.AppID, &d.PushKey, &body, &d.Attempts, &d.NextTryTS); err != nil {
			return nil, fmt.Errorf("storage: scan push: %w", err)
		}
		d.Body = []byte(body)
		out = append(out, d)
	}
	return out, rows.Err()
}

// NextPushTS returns when the earliest pending delivery is due, or 0 when
// none is pending.
func (db *DB) NextPushTS(ctx context.Context) (int64, error) {
	var ts sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT MIN(next_try_ts) FROM push_outbox`).Scan(&ts); err != nil {
		return 0, fmt.Errorf("storage: next push: %w", err)
	}
	return ts.Int64, nil
}

// PushDone removes a delivery (delivered, or given up).
func (db *DB) PushDone(ctx context.Context, id int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM push_outbox WHERE id = $1`, id); err != nil {
			return fmt.Errorf("storage: push done: %w", err)
		}
		return nil
	})
}

// PushRetry records a failed attempt and when to try again.
func (db *DB) PushRetry(ctx context.Context, id int64, attempts int, nextTryTS int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE push_outbox SET attempts = $2, next_try_ts = $3 WHERE id = $1`,
			id, attempts, nextTryTS); err != nil {
			return fmt.Errorf("storage: push retry: %w", err)
		}
		return nil
	})
}

// PushRulesOf returns the stored push-rule documents of the given users,
// keyed by user; users who never changed a rule are left out. Evaluating
// an event in a large room reads its members' rules with it in one query.
func (db *DB) PushRulesOf(ctx context.Context, userIDs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("user_id", 1, userIDs)
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, rules FROM push_rules WHERE `+cond, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: push rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, rules string
		if err := rows.Scan(&u, &rules); err != nil {
			return nil, fmt.Errorf("storage: scan push rules: %w", err)
		}
		out[u] = []byte(rules)
	}
	return out, rows.Err()
}
