package media

import (
	"context"
	"errors"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Item is a media item as the admin API lists it, in the shape of
// Synapse's GET /_synapse/admin/v1/users/{userId}/media.
type Item struct {
	MediaID            string  `json:"media_id"`
	MediaType          string  `json:"media_type"`
	MediaLength        int64   `json:"media_length"`
	UploadName         *string `json:"upload_name"`
	CreatedTS          int64   `json:"created_ts"`
	LastAccessTS       int64   `json:"last_access_ts"`
	QuarantinedBy      *string `json:"quarantined_by"`
	SafeFromQuarantine bool    `json:"safe_from_quarantine"`
}

func item(m storage.Media) Item {
	it := Item{MediaID: m.MediaID, MediaType: m.ContentType, MediaLength: m.Size,
		CreatedTS: m.CreatedTS, LastAccessTS: m.LastAccessTS}
	if m.UploadName != "" {
		name := m.UploadName
		it.UploadName = &name
	}
	if m.QuarantinedBy != "" {
		by := m.QuarantinedBy
		it.QuarantinedBy = &by
	}
	return it
}

// UserMedia lists up to limit of userID's media items from offset from,
// oldest first, and how many there are in all.
func (s *Service) UserMedia(ctx context.Context, userID string, from, limit int) ([]Item, int, error) {
	items, total, err := s.db.UserMediaPage(ctx, userID, from, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Item, 0, len(items))
	for _, m := range items {
		out = append(out, item(m))
	}
	return out, total, nil
}

// Info is one media item as GET /_synapse/admin/v1/media/{serverName}/{mediaId}
// shows it ("media_info").
type Info struct {
	Item
	MediaOrigin string `json:"media_origin"`
	UserID      string `json:"user_id"`
	SHA256      string `json:"sha256"`
}

// MediaInfo returns the local item serverName/mediaID as admins see it,
// quarantined or not.
func (s *Service) MediaInfo(ctx context.Context, serverName, mediaID string) (*Info, error) {
	if serverName != s.serverName {
		return nil, mxerr.NotFound("Remote media does not exist on this server")
	}
	m, err := s.db.Media(ctx, mediaID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	return &Info{Item: item(*m), MediaOrigin: s.serverName, UserID: m.UserID, SHA256: m.SHA256}, nil
}

// Quarantine makes a local media item answer 404 to everyone; admin is
// recorded as who did it. With admin empty, it lifts the quarantine.
func (s *Service) Quarantine(ctx context.Context, serverName, mediaID, admin string) error {
	if serverName != s.serverName {
		return mxerr.NotFound("Remote media does not exist on this server")
	}
	err := s.db.QuarantineMedia(ctx, mediaID, admin)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound
	}
	return err
}

// Delete deletes local media items, their thumbnails and every file no
// other item shares. It returns the IDs deleted.
func (s *Service) Delete(ctx context.Context, mediaIDs []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted, orphans, err := s.db.DeleteMedia(ctx, mediaIDs)
	if err != nil {
		return nil, err
	}
	for _, h := range orphans {
		if err := s.store.remove(h); err != nil {
			s.log.Warn("media: could not remove a deleted file", "err", err)
		}
	}
	return deleted, nil
}

// DeleteOne deletes the local item serverName/mediaID (404 if none).
func (s *Service) DeleteOne(ctx context.Context, serverName, mediaID string) ([]string, error) {
	if serverName != s.serverName {
		return nil, mxerr.NotFound("Remote media does not exist on this server")
	}
	deleted, err := s.Delete(ctx, []string{mediaID})
	if err == nil && len(deleted) == 0 {
		return nil, errNotFound
	}
	return deleted, err
}

// DeleteUserMedia deletes every media item of userID.
func (s *Service) DeleteUserMedia(ctx context.Context, userID string) ([]string, error) {
	items, err := s.db.UserMedia(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(items))
	for _, m := range items {
		ids = append(ids, m.MediaID)
	}
	return s.Delete(ctx, ids)
}

// PurgeBefore deletes local media not downloaded since before, and media
// IDs created but left unused past their expiry. Media used as a user's
// avatar is kept. It returns the IDs deleted.
func (s *Service) PurgeBefore(ctx context.Context, before time.Time) ([]string, error) {
	var all []string
	for {
		ids, err := s.db.MediaUnusedSince(ctx, s.serverName, before.UnixMilli(), s.now().UnixMilli(), 500)
		if err != nil {
			return all, err
		}
		if len(ids) == 0 {
			return all, nil
		}
		deleted, err := s.Delete(ctx, ids)
		all = append(all, deleted...)
		if err != nil {
			return all, err
		}
		if len(deleted) == 0 { // deleted by someone else meanwhile; avoid looping
			return all, nil
		}
	}
}
