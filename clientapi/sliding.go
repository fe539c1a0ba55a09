package clientapi

import (
	"net/http"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/syncapi"
)

// slidingSync answers POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync
// (simplified sliding sync, MSC4186, as Element X sends it; see
// docs/sliding-sync.md). pos and timeout come as query parameters, the
// lists, room subscriptions and extensions in the body.
func (a *API) slidingSync(r *http.Request, d *auth.Device) (any, error) {
	q := r.URL.Query()
	var req syncapi.SlidingRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return nil, err
	}
	req.UserID, req.DeviceID, req.Pos = d.UserID, d.DeviceID, q.Get("pos")
	ms, err := intParam(q, "timeout", 0, 0, int(syncapi.MaxTimeout/time.Millisecond))
	if err != nil {
		return nil, err
	}
	req.Timeout = time.Duration(ms) * time.Millisecond
	switch p := q.Get("set_presence"); p {
	case "", "online", "offline", "unavailable":
		// The device counts as syncing (online) until this request ends.
		if err := a.sync.SetPresenceFromSync(r.Context(), d.UserID, d.DeviceID, p); err != nil {
			return nil, err
		}
	default:
		return nil, mxerr.InvalidParam("set_presence must be online, offline or unavailable, not %q", p)
	}
	return a.sliding.SlidingSync(r.Context(), req)
}
