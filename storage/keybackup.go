package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
)

// BackupVersion is one version of a user's server-side key backup.
type BackupVersion struct {
	Version   int64
	Algorithm string
	AuthData  []byte // a JSON object
	Etag      int64  // counts the changes to the version's keys
	Count     int64  // sessions stored in the version
}

// BackupSession is one backed-up megolm session key.
type BackupSession struct {
	RoomID            string
	SessionID         string
	FirstMessageIndex int64
	ForwardedCount    int64
	IsVerified        bool
	SessionData       []byte // a JSON object, opaque to the server
}

// BackupKeysState is a backup version's etag and session count, as a
// change of its keys left them.
type BackupKeysState struct {
	Etag  int64
	Count int64
}

// StaleBackupError is returned by writes that must go to the user's
// current backup version and named another one.
type StaleBackupError struct {
	Current int64 // the user's current backup version
}

func (e *StaleBackupError) Error() string {
	return fmt.Sprintf("storage: not the current backup version (%d)", e.Current)
}

// lockBackup serialises the transactions that write the user's backup:
// each one checks the current version and the etag and count before
// changing them.
func lockBackup(ctx context.Context, db *DB, tx *Tx, userID string) error {
	return db.engine.lockKey(ctx, tx, "key_backup|"+userID)
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const backupVersionColumns = `version, algorithm, auth_data, etag, key_count`

// scanBackupVersion reads one key_backup_versions row, or ErrNotFound.
func scanBackupVersion(row *sql.Row, userID string) (BackupVersion, error) {
	var v BackupVersion
	var authData string
	err := row.Scan(&v.Version, &v.Algorithm, &authData, &v.Etag, &v.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return BackupVersion{}, ErrNotFound
	}
	if err != nil {
		return BackupVersion{}, fmt.Errorf("storage: backup version of %s: %w", userID, err)
	}
	v.AuthData = []byte(authData)
	return v, nil
}

// currentBackup returns the user's current backup version (the highest one
// not deleted), or ErrNotFound.
func currentBackup(ctx context.Context, q rowQuerier, userID string) (BackupVersion, error) {
	return scanBackupVersion(q.QueryRowContext(ctx, `SELECT `+backupVersionColumns+` FROM key_backup_versions
		WHERE user_id = $1 AND NOT deleted ORDER BY version DESC LIMIT 1`, userID), userID)
}

// backupVersion returns one backup version that is not deleted, or
// ErrNotFound.
func backupVersion(ctx context.Context, q rowQuerier, userID string, version int64) (BackupVersion, error) {
	return scanBackupVersion(q.QueryRowContext(ctx, `SELECT `+backupVersionColumns+` FROM key_backup_versions
		WHERE user_id = $1 AND version = $2 AND NOT deleted`, userID, version), userID)
}

// CreateBackupVersion adds a backup version, which becomes the user's
// current one, and returns its number: one more than the highest the user
// ever had, deleted versions included.
func (db *DB) CreateBackupVersion(ctx context.Context, userID, algorithm string, authData []byte) (int64, error) {
	var version int64
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := lockBackup(ctx, db, tx, userID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM key_backup_versions WHERE user_id = $1`,
			userID).Scan(&version); err != nil {
			return fmt.Errorf("storage: next backup version of %s: %w", userID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_backup_versions (user_id, version, algorithm, auth_data)
			VALUES ($1, $2, $3, $4)`, userID, version, algorithm, string(authData)); err != nil {
			return fmt.Errorf("storage: create backup version %d of %s: %w", version, userID, err)
		}
		return nil
	})
	return version, err
}

// CurrentBackupVersion returns the user's current backup version, or
// ErrNotFound when the user has none.
func (db *DB) CurrentBackupVersion(ctx context.Context, userID string) (BackupVersion, error) {
	return currentBackup(ctx, db.read, userID)
}

// BackupVersion returns one of the user's backup versions, or ErrNotFound
// when it does not exist or was deleted.
func (db *DB) BackupVersion(ctx context.Context, userID string, version int64) (BackupVersion, error) {
	return backupVersion(ctx, db.read, userID, version)
}

// UpdateBackupVersion replaces the auth data of one of the user's backup
// versions with what update returns for the stored version; an error from
// update stores nothing. It returns ErrNotFound when the version does not
// exist or was deleted.
func (db *DB) UpdateBackupVersion(ctx context.Context, userID string, version int64, update func(BackupVersion) ([]byte, error)) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := lockBackup(ctx, db, tx, userID); err != nil {
			return err
		}
		v, err := backupVersion(ctx, tx, userID, version)
		if err != nil {
			return err
		}
		authData, err := update(v)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE key_backup_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2`,
			userID, version, string(authData)); err != nil {
			return fmt.Errorf("storage: update backup version %d of %s: %w", version, userID, err)
		}
		return nil
	})
}

// DeleteBackupVersion deletes a backup version and its keys. Deleting a
// deleted version succeeds; a version that never existed is ErrNotFound.
func (db *DB) DeleteBackupVersion(ctx context.Context, userID string, version int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := lockBackup(ctx, db, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_backup_sessions WHERE user_id = $1 AND version = $2`,
			userID, version); err != nil {
			return fmt.Errorf("storage: delete keys of backup version %d of %s: %w", version, userID, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE key_backup_versions SET deleted = TRUE, key_count = 0
			WHERE user_id = $1 AND version = $2`, userID, version)
		if err != nil {
			return fmt.Errorf("storage: delete backup version %d of %s: %w", version, userID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("storage: delete backup version %d of %s: %w", version, userID, err)
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// backupStmt returns query prepared for the transaction: the pool's
// statement bound to tx when there is one, otherwise a statement prepared
// on tx's connection now (the pool prepares its own once tx has ended).
// A bulk write runs each of its texts many times; this parses each once.
// The statement is closed when the transaction ends.
func backupStmt(ctx context.Context, tx *Tx, query string) (*sql.Stmt, error) {
	if st := tx.p.cached(query); st != nil {
		return tx.Tx.StmtContext(ctx, st), nil
	}
	tx.missing = append(tx.missing, query)
	st, err := tx.Tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("storage: prepare: %w", err)
	}
	return st, nil
}

// UploadBackupKeys stores session keys in the user's current backup
// version, all in one transaction. A session the version has no key for is
// added; one it has is replaced when replace(stored, uploaded) says so.
// When anything changed, the version's etag counts up by one. It returns
// ErrNotFound when the user has no backup, and *StaleBackupError when
// version is not the current one; either way nothing is stored.
func (db *DB) UploadBackupKeys(ctx context.Context, userID string, version int64, sessions []BackupSession,
	replace func(stored, uploaded BackupSession) bool) (BackupKeysState, error) {
	byRoom := map[string][]BackupSession{}
	for _, s := range sessions {
		byRoom[s.RoomID] = append(byRoom[s.RoomID], s)
	}
	rooms := make([]string, 0, len(byRoom))
	for r := range byRoom {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	var state BackupKeysState
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := lockBackup(ctx, db, tx, userID); err != nil {
			return err
		}
		cur, err := currentBackup(ctx, tx, userID)
		if err != nil {
			return err
		}
		if cur.Version != version {
			return &StaleBackupError{Current: cur.Version}
		}
		state = BackupKeysState{Etag: cur.Etag, Count: cur.Count}
		if len(sessions) == 0 {
			return nil
		}
		cond, _ := db.engine.anyOf("session_id", 4, nil)
		sel, err := backupStmt(ctx, tx, `SELECT session_id, first_message_index, forwarded_count, is_verified
			FROM key_backup_sessions WHERE user_id = $1 AND version = $2 AND room_id = $3 AND `+cond)
		if err != nil {
			return err
		}
		ins, err := backupStmt(ctx, tx, `INSERT INTO key_backup_sessions
			(user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`)
		if err != nil {
			return err
		}
		upd, err := backupStmt(ctx, tx, `UPDATE key_backup_sessions
			SET first_message_index = $5, forwarded_count = $6, is_verified = $7, session_data = $8
			WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id = $4`)
		if err != nil {
			return err
		}
		var added int64
		changed := false
		for _, room := range rooms {
			stored, err := storedBackupSessions(ctx, db, sel, userID, version, room, byRoom[room])
			if err != nil {
				return err
			}
			for _, s := range byRoom[room] {
				old, ok := stored[s.SessionID]
				write := ins
				if ok {
					if !replace(old, s) {
						continue
					}
					write = upd
				}
				if _, err := write.ExecContext(ctx, userID, version, room, s.SessionID,
					s.FirstMessageIndex, s.ForwardedCount, s.IsVerified, string(s.SessionData)); err != nil {
					return fmt.Errorf("storage: store backup key %s/%s of %s: %w", room, s.SessionID, userID, err)
				}
				if !ok {
					added++
				}
				stored[s.SessionID] = s
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE key_backup_versions SET etag = etag + 1, key_count = key_count + $3
			WHERE user_id = $1 AND version = $2`, userID, version, added); err != nil {
			return fmt.Errorf("storage: update backup version %d of %s: %w", version, userID, err)
		}
		state = BackupKeysState{Etag: cur.Etag + 1, Count: cur.Count + added}
		return nil
	})
	return state, err
}

// storedBackupSessions returns the stored keys (without their session
// data) of the sessions of one room, by session ID, with sel, the
// statement of UploadBackupKeys.
func storedBackupSessions(ctx context.Context, db *DB, sel *sql.Stmt, userID string, version int64, roomID string, sessions []BackupSession) (map[string]BackupSession, error) {
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.SessionID
	}
	_, arg := db.engine.anyOf("session_id", 4, ids)
	rows, err := sel.QueryContext(ctx, userID, version, roomID, arg)
	if err != nil {
		return nil, fmt.Errorf("storage: stored backup keys of %s in %s: %w", userID, roomID, err)
	}
	defer rows.Close()
	out := make(map[string]BackupSession, len(sessions))
	for rows.Next() {
		s := BackupSession{RoomID: roomID}
		if err := rows.Scan(&s.SessionID, &s.FirstMessageIndex, &s.ForwardedCount, &s.IsVerified); err != nil {
			return nil, fmt.Errorf("storage: scan backup key: %w", err)
		}
		out[s.SessionID] = s
	}
	return out, rows.Err()
}

// backupKeysFilter is the condition on key_backup_sessions that selects a
// version's keys ($1 user, $2 version), of one room ($3) when roomID is
// set, and of one session ($4) of it when sessionID is set too; and the
// arguments to bind.
func backupKeysFilter(userID string, version int64, roomID, sessionID string) (string, []any) {
	cond, args := `user_id = $1 AND version = $2`, []any{userID, version}
	if roomID != "" {
		cond, args = cond+` AND room_id = $3`, append(args, roomID)
		if sessionID != "" {
			cond, args = cond+` AND session_id = $4`, append(args, sessionID)
		}
	}
	return cond, args
}

// BackupKeys returns the keys of a backup version, ordered by room and
// session: all of them, those of one room when roomID is set, or the one
// of a session when sessionID is set too. It returns ErrNotFound when the
// version does not exist or was deleted.
func (db *DB) BackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) ([]BackupSession, error) {
	if _, err := backupVersion(ctx, db.read, userID, version); err != nil {
		return nil, err
	}
	cond, args := backupKeysFilter(userID, version, roomID, sessionID)
	rows, err := db.read.QueryContext(ctx, `SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data
		FROM key_backup_sessions WHERE `+cond+` ORDER BY room_id, session_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: backup keys of %s: %w", userID, err)
	}
	defer rows.Close()
	var out []BackupSession
	for rows.Next() {
		var s BackupSession
		var data string
		if err := rows.Scan(&s.RoomID, &s.SessionID, &s.FirstMessageIndex, &s.ForwardedCount, &s.IsVerified, &data); err != nil {
			return nil, fmt.Errorf("storage: scan backup key: %w", err)
		}
		s.SessionData = []byte(data)
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteBackupKeys deletes keys of a backup version, which need not be the
// current one: all of them, those of one room when roomID is set, or the
// one of a session when sessionID is set too. When it deleted any, the
// version's etag counts up by one. It returns ErrNotFound when the version
// does not exist or was deleted.
func (db *DB) DeleteBackupKeys(ctx context.Context, userID string, version int64, roomID, sessionID string) (BackupKeysState, error) {
	var state BackupKeysState
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := lockBackup(ctx, db, tx, userID); err != nil {
			return err
		}
		v, err := backupVersion(ctx, tx, userID, version)
		if err != nil {
			return err
		}
		state = BackupKeysState{Etag: v.Etag, Count: v.Count}
		cond, args := backupKeysFilter(userID, version, roomID, sessionID)
		res, err := tx.ExecContext(ctx, `DELETE FROM key_backup_sessions WHERE `+cond, args...)
		if err != nil {
			return fmt.Errorf("storage: delete backup keys of %s: %w", userID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("storage: delete backup keys of %s: %w", userID, err)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE key_backup_versions SET etag = etag + 1, key_count = key_count - $3
			WHERE user_id = $1 AND version = $2`, userID, version, n); err != nil {
			return fmt.Errorf("storage: update backup version %d of %s: %w", version, userID, err)
		}
		state = BackupKeysState{Etag: v.Etag + 1, Count: v.Count - n}
		return nil
	})
	return state, err
}

// dropUserBackups deletes every backup of a user (their account is being
// deactivated, as Synapse does): the keys go, the versions are marked
// deleted.
func dropUserBackups(ctx context.Context, tx *Tx, userID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM key_backup_sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("storage: delete backups of %s: %w", userID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE key_backup_versions SET deleted = $2, key_count = 0 WHERE user_id = $1`, userID, true); err != nil {
		return fmt.Errorf("storage: delete backup versions of %s: %w", userID, err)
	}
	return nil
}
