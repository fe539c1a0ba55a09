package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Media is one local mxc:// URI of the media repository. A pending item
// (created by POST /_matrix/media/v1/create, not yet uploaded) has an
// empty SHA256 and a zero UploadedTS.
type Media struct {
	MediaID         string
	UserID          string
	ContentType     string
	UploadName      string
	Size            int64
	SHA256          string // hex; the name of the file in the media store
	CreatedTS       int64
	UploadedTS      int64 // 0 while pending
	UnusedExpiresTS int64 // pending items only: when the unused ID is dropped
	LastAccessTS    int64
	QuarantinedBy   string
}

// Pending reports whether the item was created but not yet uploaded.
func (m *Media) Pending() bool { return m.SHA256 == "" }

// MediaThumbnail is a generated thumbnail of a media item.
type MediaThumbnail struct {
	MediaID     string
	Width       int
	Height      int
	Method      string // "crop" or "scale"
	ContentType string
	Size        int64
	SHA256      string
}

// ErrTooManyPending is returned by CreatePendingMedia when the user already
// has the maximum number of unexpired pending uploads.
var ErrTooManyPending = errors.New("storage: too many pending media uploads")

const mediaColumns = `media_id, user_id, content_type, upload_name, size, sha256, created_ts,
	uploaded_ts, unused_expires_ts, last_access_ts, quarantined_by`

func scanMedia(row interface{ Scan(...any) error }) (*Media, error) {
	var m Media
	var name, sha, quarantined sql.NullString
	var uploaded, expires sql.NullInt64
	if err := row.Scan(&m.MediaID, &m.UserID, &m.ContentType, &name, &m.Size, &sha, &m.CreatedTS,
		&uploaded, &expires, &m.LastAccessTS, &quarantined); err != nil {
		return nil, err
	}
	m.UploadName, m.SHA256, m.QuarantinedBy = name.String, sha.String, quarantined.String
	m.UploadedTS, m.UnusedExpiresTS = uploaded.Int64, expires.Int64
	return &m, nil
}

// InsertMedia stores a media item, uploaded (SHA256 set) or pending.
func (db *DB) InsertMedia(ctx context.Context, m Media) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO media (`+mediaColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		m.MediaID, m.UserID, m.ContentType, nullString(m.UploadName), m.Size, nullString(m.SHA256), m.CreatedTS,
		nullInt(m.UploadedTS), nullInt(m.UnusedExpiresTS), m.LastAccessTS, nullString(m.QuarantinedBy))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("storage: insert media: %w", err)
	}
	return nil
}

// CreatePendingMedia stores a pending item unless its user already has
// maxPending pending items that have not expired (ErrTooManyPending).
func (db *DB) CreatePendingMedia(ctx context.Context, m Media, maxPending int) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM media
			WHERE user_id = $1 AND sha256 IS NULL AND unused_expires_ts > $2`, m.UserID, m.CreatedTS).Scan(&n); err != nil {
			return fmt.Errorf("storage: count pending media: %w", err)
		}
		if n >= maxPending {
			return ErrTooManyPending
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO media (`+mediaColumns+`)
			VALUES ($1, $2, '', NULL, 0, NULL, $3, NULL, $4, $3, NULL)`,
			m.MediaID, m.UserID, m.CreatedTS, m.UnusedExpiresTS)
		if isUniqueViolation(err) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("storage: insert pending media: %w", err)
		}
		return nil
	})
}

// CompleteMedia records the upload of a pending item. It returns
// ErrNotFound if the item does not exist and ErrConflict if it was
// uploaded already (also when a concurrent upload won).
func (db *DB) CompleteMedia(ctx context.Context, m Media) error {
	res, err := db.write.ExecContext(ctx, `UPDATE media SET content_type = $2, upload_name = $3, size = $4,
		sha256 = $5, uploaded_ts = $6, unused_expires_ts = NULL, last_access_ts = $6
		WHERE media_id = $1 AND sha256 IS NULL`,
		m.MediaID, m.ContentType, nullString(m.UploadName), m.Size, m.SHA256, m.UploadedTS)
	if err != nil {
		return fmt.Errorf("storage: complete media: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := db.Media(ctx, m.MediaID); err != nil {
		return err
	}
	return ErrConflict
}

// Media returns the item mediaID, or ErrNotFound.
func (db *DB) Media(ctx context.Context, mediaID string) (*Media, error) {
	m, err := scanMedia(db.read.QueryRowContext(ctx, `SELECT `+mediaColumns+` FROM media WHERE media_id = $1`, mediaID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: media %s: %w", mediaID, err)
	}
	return m, nil
}

// TouchMedia records that the item was read at ts.
func (db *DB) TouchMedia(ctx context.Context, mediaID string, ts int64) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE media SET last_access_ts = $2 WHERE media_id = $1 AND last_access_ts < $2`,
		mediaID, ts); err != nil {
		return fmt.Errorf("storage: touch media: %w", err)
	}
	return nil
}

// UserMedia lists every media item userID uploaded or created, oldest
// first. The user export uses it.
func (db *DB) UserMedia(ctx context.Context, userID string) ([]Media, error) {
	items, _, err := db.UserMediaPage(ctx, userID, 0, -1)
	return items, err
}

// UserMediaPage lists up to limit (all when negative) of userID's media
// items, oldest first, skipping the first from; it also returns how many
// items the user has.
func (db *DB) UserMediaPage(ctx context.Context, userID string, from, limit int) ([]Media, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM media WHERE user_id = $1`, userID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("storage: count user media: %w", err)
	}
	if limit < 0 {
		limit = total
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+mediaColumns+` FROM media WHERE user_id = $1
		ORDER BY created_ts, media_id LIMIT $2 OFFSET $3`, userID, limit, from)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: user media: %w", err)
	}
	defer rows.Close()
	var out []Media
	for rows.Next() {
		m, err := scanMedia(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("storage: scan media: %w", err)
		}
		out = append(out, *m)
	}
	return out, total, rows.Err()
}

// UserMediaBytes is the total size of userID's uploaded media, for quotas.
func (db *DB) UserMediaBytes(ctx context.Context, userID string) (int64, error) {
	var n sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT SUM(size) FROM media WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage: user media size: %w", err)
	}
	return n.Int64, nil
}

// QuarantineMedia marks the item as quarantined by the admin by, or with
// by empty lifts the quarantine (ErrNotFound if there is no such item).
func (db *DB) QuarantineMedia(ctx context.Context, mediaID, by string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE media SET quarantined_by = $2 WHERE media_id = $1`, mediaID, nullString(by))
	if err != nil {
		return fmt.Errorf("storage: quarantine media: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteMedia deletes the items and their thumbnails. It returns the IDs it
// deleted and the content hashes no remaining row refers to, whose files
// the caller may now remove.
func (db *DB) DeleteMedia(ctx context.Context, mediaIDs []string) (deleted, orphans []string, err error) {
	if len(mediaIDs) == 0 {
		return nil, nil, nil
	}
	err = db.inTx(ctx, func(tx *Tx) error {
		deleted, orphans = nil, nil
		cond, arg := db.engine.anyOf("media_id", 1, mediaIDs)
		rows, err := tx.QueryContext(ctx, `SELECT media_id, sha256 FROM media WHERE `+cond+`
			UNION ALL SELECT '', sha256 FROM media_thumbnails WHERE `+cond, arg)
		if err != nil {
			return fmt.Errorf("storage: media to delete: %w", err)
		}
		hashes := map[string]bool{}
		for rows.Next() {
			var id string
			var sha sql.NullString
			if err := rows.Scan(&id, &sha); err != nil {
				rows.Close()
				return fmt.Errorf("storage: scan media to delete: %w", err)
			}
			if id != "" {
				deleted = append(deleted, id)
			}
			if sha.Valid {
				hashes[sha.String] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("storage: media to delete: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM media_thumbnails WHERE `+cond, arg); err != nil {
			return fmt.Errorf("storage: delete thumbnails: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM media WHERE `+cond, arg); err != nil {
			return fmt.Errorf("storage: delete media: %w", err)
		}
		for h := range hashes {
			var used int
			if err := tx.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM media WHERE sha256 = $1) + (SELECT COUNT(*) FROM media_thumbnails WHERE sha256 = $1)`,
				h).Scan(&used); err != nil {
				return fmt.Errorf("storage: media hash in use: %w", err)
			}
			if used == 0 {
				orphans = append(orphans, h)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return deleted, orphans, nil
}

// MediaUnusedSince lists up to limit local media items to purge: uploaded
// items not read since before (ms), and pending items whose unused
// expiry is before now. Items used as a user's avatar (avatar_url
// mxc://serverName/<id>) are kept.
func (db *DB) MediaUnusedSince(ctx context.Context, serverName string, before, now int64, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT media_id FROM media
		WHERE ((sha256 IS NOT NULL AND last_access_ts < $1) OR (sha256 IS NULL AND unused_expires_ts < $2))
		AND NOT EXISTS (SELECT 1 FROM users WHERE users.avatar_url = 'mxc://' || $3 || '/' || media.media_id)
		ORDER BY last_access_ts LIMIT $4`, before, now, serverName, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: unused media: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storage: scan unused media: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Thumbnail returns the stored thumbnail of mediaID with the given size
// and method, or ErrNotFound.
func (db *DB) Thumbnail(ctx context.Context, mediaID string, width, height int, method string) (*MediaThumbnail, error) {
	t := MediaThumbnail{MediaID: mediaID, Width: width, Height: height, Method: method}
	err := db.read.QueryRowContext(ctx, `SELECT content_type, size, sha256 FROM media_thumbnails
		WHERE media_id = $1 AND width = $2 AND height = $3 AND method = $4`, mediaID, width, height, method).
		Scan(&t.ContentType, &t.Size, &t.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: thumbnail: %w", err)
	}
	return &t, nil
}

// AddThumbnail stores a generated thumbnail; one stored already for the
// same size and method is kept. ErrNotFound if the media item is gone.
func (db *DB) AddThumbnail(ctx context.Context, t MediaThumbnail) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM media WHERE media_id = $1`+db.engine.forUpdate(), t.MediaID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("storage: thumbnail media: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO media_thumbnails (media_id, width, height, method, content_type, size, sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			t.MediaID, t.Width, t.Height, t.Method, t.ContentType, t.Size, t.SHA256); err != nil {
			return fmt.Errorf("storage: add thumbnail: %w", err)
		}
		return nil
	})
}

// MediaHashUsed reports whether any media item or thumbnail still refers
// to the content hash.
func (db *DB) MediaHashUsed(ctx context.Context, hash string) (bool, error) {
	var used int
	if err := db.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM media WHERE sha256 = $1) + (SELECT COUNT(*) FROM media_thumbnails WHERE sha256 = $1)`,
		hash).Scan(&used); err != nil {
		return false, fmt.Errorf("storage: media hash in use: %w", err)
	}
	return used > 0, nil
}
