package push

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aula-chat/aula/storage"
)

// Service reads and changes users' push rules and pushers in storage and,
// once started, evaluates new events: unread counts, the notification list
// and delivery to push gateways.
type Service struct {
	db     *storage.DB
	allow  []string // push.gateway_allowlist, set by Start
	worker *worker  // nil until Start: no evaluation, counts or delivery
}

// NewService returns the push-rule service.
func NewService(db *storage.DB) *Service { return &Service{db: db} }

// Rules returns the ruleset a user's clients see.
func (s *Service) Rules(ctx context.Context, userID string) (Ruleset, error) {
	raw, err := s.db.PushRules(ctx, userID)
	if err != nil {
		return Ruleset{}, err
	}
	var ur UserRules
	if raw != nil {
		if err := json.Unmarshal(raw, &ur); err != nil {
			return Ruleset{}, fmt.Errorf("push: stored rules of %s: %w", userID, err)
		}
	}
	return Effective(userID, ur), nil
}

// Update applies change to the user's stored rules in one transaction; an
// error from change leaves them as they were.
func (s *Service) Update(ctx context.Context, userID string, change func(ur *UserRules) error) error {
	return s.db.UpdatePushRules(ctx, userID, func(current []byte) ([]byte, error) {
		var ur UserRules
		if current != nil {
			if err := json.Unmarshal(current, &ur); err != nil {
				return nil, fmt.Errorf("push: stored rules of %s: %w", userID, err)
			}
		}
		if err := change(&ur); err != nil {
			return nil, err
		}
		return json.Marshal(ur)
	})
}
