package push

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Notification is one entry of GET /notifications, without its event
// (the HTTP layer formats that for the reader).
type Notification struct {
	storage.Notification
	// Read reports whether the user's receipts cover the event.
	Read bool
}

// Notifications returns a page of the user's notifications, newest first,
// and the token of the next page ("" at the end). from is a previous
// next_token; only "highlight" restricts the list to highlights.
func (s *Service) Notifications(ctx context.Context, userID, from string, limit int, only string) ([]Notification, string, error) {
	var before int64
	if from != "" {
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", mxerr.InvalidParam("Invalid 'from' token")
		}
		before = n
	}
	list, err := s.db.Notifications(ctx, userID, before, limit+1, only == "highlight")
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	read := map[string]*unread{}
	out := make([]Notification, 0, len(list))
	for _, n := range list {
		u, ok := read[n.RoomID]
		if !ok {
			if u, err = s.receipts(ctx, userID, n.RoomID); err != nil {
				return nil, "", err
			}
			read[n.RoomID] = u
		}
		out = append(out, Notification{Notification: n, Read: n.Depth <= max(u.unthreaded, u.threads[n.ThreadID])})
	}
	return out, next, nil
}

// receipts reads the user's read receipts in a room as depths.
func (s *Service) receipts(ctx context.Context, userID, roomID string) (*unread, error) {
	receipts, err := s.db.OwnReceipts(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(receipts))
	for _, r := range receipts {
		ids = append(ids, r.EventID)
	}
	evs, err := s.db.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	u := &unread{}
	for _, r := range receipts {
		if r.Type == storage.ReceiptRead || r.Type == storage.ReceiptReadPrivate {
			if ev, ok := evs[r.EventID]; ok {
				u.receipt(r.ThreadID, ev.Depth)
			}
		}
	}
	return u, nil
}

// ActionList decodes a notification's stored actions.
func (n Notification) ActionList() []json.RawMessage {
	var out []json.RawMessage
	if json.Unmarshal(n.Actions, &out) != nil || out == nil {
		return []json.RawMessage{}
	}
	return out
}
