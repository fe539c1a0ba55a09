package storage

import (
	"context"
	"fmt"
)

// Cross-signing keys and key signatures (schema 0011_cross_signing).

// CrossSigningKeys returns the users' cross-signing keys: user → usage
// ("master", "self_signing", "user_signing") → CrossSigningKey JSON.
func (db *DB) CrossSigningKeys(ctx context.Context, users []string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	if len(users) == 0 {
		return out, nil
	}
	cond, arg := db.engine.anyOf("user_id", 1, users)
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, usage, key_json FROM cross_signing_keys WHERE `+cond, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: cross-signing keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, usage, js string
		if err := rows.Scan(&u, &usage, &js); err != nil {
			return nil, fmt.Errorf("storage: scan cross-signing key: %w", err)
		}
		if out[u] == nil {
			out[u] = map[string][]byte{}
		}
		out[u][usage] = []byte(js)
	}
	return out, rows.Err()
}

// PutCrossSigningKeys stores (replacing) some of a user's cross-signing
// keys, by usage, and records a device-list change. Signatures made by
// replaced keys stay stored but no longer verify; clients check them.
func (db *DB) PutCrossSigningKeys(ctx context.Context, userID string, keys map[string][]byte) error {
	return db.inTx(ctx, func(tx *Tx) error {
		for usage, js := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO cross_signing_keys (user_id, usage, key_json) VALUES ($1, $2, $3)
				ON CONFLICT (user_id, usage) DO UPDATE SET key_json = excluded.key_json`, userID, usage, string(js)); err != nil {
				return fmt.Errorf("storage: store %s key of %s: %w", usage, userID, err)
			}
		}
		return markDeviceListChange(ctx, tx, userID)
	})
}

// KeySignature is one signature of a device or cross-signing key.
type KeySignature struct {
	SignerUserID string
	SignerKeyID  string
	TargetUserID string
	TargetKeyID  string
	Signature    string
}

// PutKeySignatures stores signatures (replacing earlier ones by the same
// signer key of the same target) and records a device-list change for
// each of notify.
func (db *DB) PutKeySignatures(ctx context.Context, sigs []KeySignature, notify []string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		for _, s := range sigs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_signatures
				(signer_user_id, signer_key_id, target_user_id, target_key_id, signature) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id) DO UPDATE SET signature = excluded.signature`,
				s.SignerUserID, s.SignerKeyID, s.TargetUserID, s.TargetKeyID, s.Signature); err != nil {
				return fmt.Errorf("storage: store signature: %w", err)
			}
		}
		for _, u := range notify {
			if err := markDeviceListChange(ctx, tx, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// KeySignaturesOf returns the stored signatures of the targets' keys.
func (db *DB) KeySignaturesOf(ctx context.Context, targetUsers []string) ([]KeySignature, error) {
	if len(targetUsers) == 0 {
		return nil, nil
	}
	cond, arg := db.engine.anyOf("target_user_id", 1, targetUsers)
	rows, err := db.read.QueryContext(ctx, `SELECT signer_user_id, signer_key_id, target_user_id, target_key_id, signature
		FROM key_signatures WHERE `+cond+` ORDER BY target_user_id, target_key_id, signer_user_id, signer_key_id`, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: key signatures: %w", err)
	}
	defer rows.Close()
	var out []KeySignature
	for rows.Next() {
		var s KeySignature
		if err := rows.Scan(&s.SignerUserID, &s.SignerKeyID, &s.TargetUserID, &s.TargetKeyID, &s.Signature); err != nil {
			return nil, fmt.Errorf("storage: scan key signature: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
