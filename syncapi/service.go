package syncapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Service is the sync read path. For now it owns stored filters.
type Service struct {
	db *storage.DB
}

// New returns the sync service.
func New(db *storage.DB) *Service { return &Service{db: db} }

// CreateFilter validates and stores a filter for the requester, returning
// its ID. The filter is stored as the client sent it (compacted), so that
// fields aula does not know yet survive a round trip.
func (s *Service) CreateFilter(ctx context.Context, requester, userID string, body []byte) (string, error) {
	if requester != userID {
		return "", mxerr.Forbidden("Cannot create filters for other users")
	}
	if _, err := ParseFilter(body); err != nil {
		return "", err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return "", mxerr.NotJSON("Content not JSON")
	}
	return s.db.PutFilter(ctx, userID, compact.Bytes())
}

// Filter returns a stored filter of the requester.
func (s *Service) Filter(ctx context.Context, requester, userID, filterID string) (json.RawMessage, error) {
	if requester != userID {
		return nil, mxerr.Forbidden("Cannot get filters of other users")
	}
	f, err := s.db.Filter(ctx, userID, filterID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, mxerr.NotFound("No such filter")
	}
	return f, err
}
