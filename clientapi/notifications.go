package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
)

// notification is one entry of GET /notifications.
type notification struct {
	Actions    []json.RawMessage `json:"actions"`
	Event      any               `json:"event"`
	ProfileTag string            `json:"profile_tag,omitempty"`
	Read       bool              `json:"read"`
	RoomID     string            `json:"room_id"`
	TS         int64             `json:"ts"`
}

// getNotifications answers GET /notifications: the events that notified
// the user, newest first, paginated with from/next_token (a stream
// position); only=highlight keeps highlights. The list is computed on
// demand by push (no table per recipient); events the user can no longer
// see, or whose sender they ignore, are left out.
func (a *API) getNotifications(r *http.Request, d *auth.Device) (any, error) {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 20, 1, 1000)
	if err != nil {
		return nil, err
	}
	limit = min(limit, 100)
	list, next, err := a.push.Notifications(r.Context(), d.UserID, q.Get("from"), limit, q.Get("only"))
	if err != nil {
		return nil, err
	}
	out := make([]notification, 0, len(list))
	for _, n := range list {
		ev, err := a.rooms.Event(r.Context(), d.UserID, n.RoomID, n.EventID)
		if err != nil {
			var mx *mxerr.Error
			if errors.As(err, &mx) {
				continue // no longer visible
			}
			return nil, err
		}
		out = append(out, notification{Actions: n.ActionList(), Event: ev, Read: n.Read, RoomID: n.RoomID, TS: n.TS})
	}
	body := map[string]any{"notifications": out}
	if next != "" {
		body["next_token"] = next
	}
	return body, nil
}
