package account

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Account-data types the server writes or checks itself.
const (
	// FullyReadType is the room account data holding the fully read
	// marker, {"event_id": …}. Clients move it through /read_markers and
	// /receipt/m.fully_read only.
	FullyReadType = "m.fully_read"
	// IgnoredUserListType is the global account data listing the users
	// whose events the user does not want to see.
	IgnoredUserListType = "m.ignored_user_list"
)

// errMarkerMoved aborts a marker update that raced with another one.
var errMarkerMoved = errors.New("account: fully read marker moved meanwhile")

// SetFullyRead moves the user's fully read marker in a room to eventID, an
// event at depth in the room that the room server has checked the user may
// see (roomserver.CheckReceiptTarget). The marker only moves forwards, as
// in Synapse: an event at or before the current marker changes nothing.
// This is the server's own write of the m.fully_read room account data,
// which PutAccountData refuses to clients.
func (s *Service) SetFullyRead(ctx context.Context, userID, roomID, eventID string, depth int64) error {
	// The current marker's depth is read outside the write transaction (so
	// the transaction needs no second connection); the write then checks
	// that the marker is still the one compared with, and starts over if
	// another request moved it meanwhile. Every retry means another
	// request succeeded, so the loop ends.
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur, err := s.fullyRead(ctx, userID, roomID)
		if err != nil {
			return err
		}
		if cur == eventID {
			return nil
		}
		if cur != "" {
			ev, err := s.db.Event(ctx, cur)
			switch {
			case err == nil && ev.RoomID == roomID && ev.Depth >= depth:
				return nil // not ahead of the current marker
			case err != nil && !errors.Is(err, storage.ErrNotFound):
				return err
			}
		}
		err = s.db.UpdateAccountData(ctx, userID, roomID, FullyReadType, func(current []byte) ([]byte, error) {
			if markerEventID(current) != cur {
				return nil, errMarkerMoved
			}
			return json.Marshal(map[string]string{"event_id": eventID})
		})
		if !errors.Is(err, errMarkerMoved) {
			return err
		}
	}
}

// fullyRead returns the event ID of the user's fully read marker in the
// room, or "".
func (s *Service) fullyRead(ctx context.Context, userID, roomID string) (string, error) {
	raw, err := s.db.AccountData(ctx, userID, roomID, FullyReadType)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return markerEventID(raw), nil
}

// markerEventID reads event_id from m.fully_read content ("" if none).
func markerEventID(content []byte) string {
	var c struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(content, &c)
	return c.EventID
}

// checkIgnoredUsers checks the content of m.ignored_user_list that a user
// sets (spec: "Ignoring users"): ignored_users must be an object whose keys
// are user IDs, each mapped to an object, and a user cannot ignore
// themselves (400 M_INVALID_PARAM, as in Synapse).
func checkIgnoredUsers(userID string, content []byte) error {
	var c struct {
		IgnoredUsers json.RawMessage `json:"ignored_users"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON("Invalid %s content", IgnoredUserListType)
	}
	if len(c.IgnoredUsers) == 0 {
		return mxerr.BadJSON("%s needs ignored_users", IgnoredUserListType)
	}
	var users map[string]json.RawMessage
	if err := json.Unmarshal(c.IgnoredUsers, &users); err != nil || users == nil {
		return mxerr.BadJSON("ignored_users must be an object of user IDs")
	}
	for u, v := range users {
		if !ids.ValidUserID(u) {
			return mxerr.InvalidParam("ignored_users: %q is not a user ID", u)
		}
		if u == userID {
			return mxerr.InvalidParam("You cannot ignore yourself")
		}
		if v = bytes.TrimSpace(v); len(v) == 0 || v[0] != '{' {
			return mxerr.BadJSON("ignored_users: the value for %s must be an object", u)
		}
	}
	return nil
}
