package account

import (
	"context"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// tagsType is the room account-data type that holds a user's room tags.
const tagsType = "m.tag"

// maxTagLen bounds tag names (Synapse allows 255 bytes).
const maxTagLen = 255

// tagContent is the content of m.tag.
type tagContent struct {
	Tags map[string]json.RawMessage `json:"tags"`
}

// Tags returns the requester's tags on a room.
func (s *Service) Tags(ctx context.Context, requester, userID, roomID string) (map[string]json.RawMessage, error) {
	if err := checkTagTarget(requester, userID, roomID, "x"); err != nil {
		return nil, err
	}
	raw, err := s.db.AccountData(ctx, userID, roomID, tagsType)
	if errors.Is(err, storage.ErrNotFound) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c tagContent
	if err := json.Unmarshal(raw, &c); err != nil || c.Tags == nil {
		return map[string]json.RawMessage{}, nil
	}
	return c.Tags, nil
}

// PutTag adds or replaces one tag; body is the tag's object (e.g. {"order": 0.5}).
func (s *Service) PutTag(ctx context.Context, requester, userID, roomID, tag string, body json.RawMessage) error {
	if err := checkTagTarget(requester, userID, roomID, tag); err != nil {
		return err
	}
	var info struct {
		Order *float64 `json:"order"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return mxerr.BadJSON("order must be a number")
	}
	if info.Order != nil && (*info.Order < 0 || *info.Order > 1) {
		return mxerr.BadJSON("order must be between 0 and 1")
	}
	return s.updateTags(ctx, userID, roomID, func(tags map[string]json.RawMessage) { tags[tag] = body })
}

// DeleteTag removes one tag (removing an absent tag is not an error).
func (s *Service) DeleteTag(ctx context.Context, requester, userID, roomID, tag string) error {
	if err := checkTagTarget(requester, userID, roomID, tag); err != nil {
		return err
	}
	return s.updateTags(ctx, userID, roomID, func(tags map[string]json.RawMessage) { delete(tags, tag) })
}

func (s *Service) updateTags(ctx context.Context, userID, roomID string, change func(map[string]json.RawMessage)) error {
	return s.db.UpdateAccountData(ctx, userID, roomID, tagsType, func(current []byte) ([]byte, error) {
		c := tagContent{Tags: map[string]json.RawMessage{}}
		if current != nil {
			_ = json.Unmarshal(current, &c) // a damaged entry is replaced
			if c.Tags == nil {
				c.Tags = map[string]json.RawMessage{}
			}
		}
		change(c.Tags)
		return json.Marshal(c)
	})
}

func checkTagTarget(requester, userID, roomID, tag string) error {
	if requester != userID {
		return mxerr.Forbidden("Cannot access other users' tags")
	}
	if !ids.ValidRoomID(roomID) {
		return mxerr.InvalidParam("%q is not a room ID", roomID)
	}
	if tag == "" || len(tag) > maxTagLen || !utf8.ValidString(tag) {
		return mxerr.InvalidParam("Invalid tag name")
	}
	return nil
}
