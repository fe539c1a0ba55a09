package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PushRules returns the user's stored push-rule document (nil if the user
// never changed a rule).
func (db *DB) PushRules(ctx context.Context, userID string) ([]byte, error) {
	var rules string
	err := db.read.QueryRowContext(ctx, `SELECT rules FROM push_rules WHERE user_id = $1`, userID).Scan(&rules)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: push rules of %s: %w", userID, err)
	}
	return []byte(rules), nil
}

// UpdatePushRules reads the user's push-rule document, lets update change
// it, and stores the result at a new stream position, all in one write
// transaction so concurrent changes cannot lose each other's updates. If
// update returns an error nothing is stored.
func (db *DB) UpdatePushRules(ctx context.Context, userID string, update func(current []byte) ([]byte, error)) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := db.engine.lockKey(ctx, tx, "push_rules|"+userID); err != nil {
			return err
		}
		pos, err := nextStreamPos(ctx, tx, Change{Kind: ChangeAccountData, UserID: userID, Type: "m.push_rules"})
		if err != nil {
			return err
		}
		var current []byte
		var rules string
		err = tx.QueryRowContext(ctx, `SELECT rules FROM push_rules WHERE user_id = $1`+db.engine.forUpdate(), userID).Scan(&rules)
		switch {
		case err == nil:
			current = []byte(rules)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("storage: push rules of %s: %w", userID, err)
		}
		next, err := update(current)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO push_rules (user_id, rules, stream_pos) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET rules = excluded.rules, stream_pos = excluded.stream_pos`,
			userID, string(next), pos)
		if err != nil {
			return fmt.Errorf("storage: store push rules of %s: %w", userID, err)
		}
		return nil
	})
}
