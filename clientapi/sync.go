package clientapi

import (
	"net/http"
	"time"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/syncapi"
)

// getSync answers GET /sync. Unknown query parameters are ignored (clients
// add cache busters).
func (a *API) getSync(r *http.Request, d *auth.Device) (any, error) {
	q := r.URL.Query()
	req := syncapi.Request{UserID: d.UserID, DeviceID: d.DeviceID}
	if s := q.Get("since"); s != "" {
		t, err := syncapi.ParseToken(s)
		if err != nil {
			return nil, err
		}
		req.Since = &t
	}
	ms, err := intParam(q, "timeout", 0, 0, int(syncapi.MaxTimeout/time.Millisecond))
	if err != nil {
		return nil, err
	}
	req.Timeout = time.Duration(ms) * time.Millisecond
	if req.FullState, err = boolParam(q, "full_state"); err != nil {
		return nil, err
	}
	switch p := q.Get("set_presence"); p {
	case "", "online", "offline", "unavailable":
	default:
		return nil, mxerr.InvalidParam("set_presence must be online, offline or unavailable, not %q", p)
	}
	stable, err := boolParam(q, "use_state_after")
	if err != nil {
		return nil, err
	}
	unstable, err := boolParam(q, "org.matrix.msc4222.use_state_after")
	if err != nil {
		return nil, err
	}
	req.StateKey = syncapi.UseStateAfter(stable, unstable)
	if req.Filter, err = a.sync.ResolveFilter(r.Context(), d.UserID, q.Get("filter")); err != nil {
		return nil, err
	}
	// The device counts as syncing (online) until this request ends.
	if err := a.sync.SetPresenceFromSync(r.Context(), d.UserID, d.DeviceID, q.Get("set_presence")); err != nil {
		return nil, err
	}
	return a.sync.Sync(r.Context(), req)
}
