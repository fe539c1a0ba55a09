package syncapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/push"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/typing"
)

// Service is the sync read path: /sync and the filters it takes.
type Service struct {
	db       *storage.DB
	rooms    *roomserver.Server
	push     *push.Service
	typing   *typing.Tracker
	notifier *Notifier

	mu       sync.Mutex
	filters  map[string]*Filter     // user "\x00" filter ID → parsed stored filter
	lazy     map[string]*lazyCache  // user "\x00" device → member events sent
	inflight map[string]*memberCall // room "\x00" user → member event being read (fastpath.go)
	pres     *presenceTracker       // nil while presence is off (presence.go)
}

// New returns the sync service. It subscribes to the database's change
// feed and to the typing tracker (create the tracker with the returned
// service's TypingChanged as its notify function, or pass it in here and
// wire it with typing.New's notify).
func New(db *storage.DB, rooms *roomserver.Server, pushRules *push.Service, tracker *typing.Tracker, notifier *Notifier) *Service {
	return &Service{
		db: db, rooms: rooms, push: pushRules, typing: tracker, notifier: notifier,
		filters: map[string]*Filter{}, lazy: map[string]*lazyCache{}, inflight: map[string]*memberCall{},
	}
}

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
