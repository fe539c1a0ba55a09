package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/delayed"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// delayParam is the query parameter of PUT /send and PUT /state that makes
// the event a delayed one (MSC4140), in milliseconds.
const delayParam = "org.matrix.msc4140.delay"

// maybeDelay schedules req instead of sending it when the request carries
// org.matrix.msc4140.delay; then it answers {"delay_id": …} and done is
// true. Without the parameter it does nothing and done is false.
func (a *API) maybeDelay(r *http.Request, req roomserver.SendRequest) (res any, done bool, err error) {
	raw, ok := r.URL.Query()[delayParam]
	if !ok {
		return nil, false, nil
	}
	if a.calls.Delayed == nil || !a.calls.Delayed.Enabled() {
		return nil, true, mxerr.Forbidden("Delayed events are turned off on this server")
	}
	ms, perr := strconv.ParseInt(raw[0], 10, 64)
	if perr != nil || ms < 0 || len(raw) > 1 {
		return nil, true, mxerr.InvalidParam("%s must be one whole number of milliseconds, 0 or more", delayParam)
	}
	if ms > int64(24*365*time.Hour/time.Millisecond) {
		ms = int64(24 * 365 * time.Hour / time.Millisecond) // over any max_delay; avoids overflow
	}
	if req.TxnID != "" {
		// Scoped to the request path, as the spec scopes transaction IDs.
		key, _ := json.Marshal([]string{"send", req.RoomID, req.Type, req.TxnID})
		req.TxnID = string(key)
	}
	id, err := a.calls.Delayed.Schedule(r.Context(), req, time.Duration(ms)*time.Millisecond)
	if err != nil {
		return nil, true, err
	}
	return map[string]string{"delay_id": id}, true, nil
}

// getDelayedEvents answers GET
// /_matrix/client/unstable/org.matrix.msc4140/delayed_events: the user's
// waiting delayed events, soonest first, as "delayed_events" (Synapse) and
// "scheduled" (the current MSC). Sent and cancelled events are not kept,
// so "finalised" is always empty.
func (a *API) getDelayedEvents(r *http.Request, d *auth.Device) (any, error) {
	if a.calls.Delayed == nil {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "Unrecognized request")
	}
	if wait := a.calls.delayedLimit.take(d.UserID, time.Now()); wait > 0 {
		return nil, mxerr.LimitExceeded(wait.Milliseconds())
	}
	list, err := a.calls.Delayed.List(r.Context(), d.UserID)
	if err != nil {
		return nil, err
	}
	if ids := r.URL.Query()["delay_id"]; len(ids) > 0 {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		kept := list[:0]
		for _, e := range list {
			if want[e.DelayID] {
				kept = append(kept, e)
			}
		}
		list = kept
	}
	scheduled := list
	if r.URL.Query().Get("status") == "finalised" {
		scheduled = []delayed.Info{}
	}
	return map[string]any{"delayed_events": list, "scheduled": scheduled, "finalised": []any{}}, nil
}

// updateDelayedEvent answers POST
// /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delayId}
// with {"action": "cancel"|"restart"|"send"} (the older form of the MSC)
// and POST …/delayed_events/{delayId}/{action}. The delay ID is the
// secret that authorises the action, so no access token is needed; one
// that is sent only keys the rate limit.
func (a *API) updateDelayedEvent(r *http.Request) (any, error) {
	if a.calls.Delayed == nil {
		return nil, mxerr.Unrecognized(http.StatusNotFound, "Unrecognized request")
	}
	key := a.clientAddr(r)
	if tok := accessToken(r); tok != "" {
		d, err := a.auth.Authenticate(r.Context(), tok, a.clientIP(r))
		if err != nil {
			return nil, err
		}
		key = d.UserID
	}
	if wait := a.calls.delayedLimit.take(key, time.Now()); wait > 0 {
		return nil, mxerr.LimitExceeded(wait.Milliseconds())
	}
	v := mux.Vars(r)
	action := v["action"]
	if action == "" {
		var body struct {
			Action *string `json:"action"`
		}
		if err := decodeJSON(r, &body, true); err != nil {
			return nil, err
		}
		if body.Action == nil {
			return nil, mxerr.MissingParam("'action' is missing")
		}
		action = *body.Action
		switch action {
		case delayed.ActionCancel, delayed.ActionRestart, delayed.ActionSend:
		default:
			return nil, mxerr.InvalidParam("'action' is not one of 'cancel', 'restart', 'send'")
		}
	}
	if err := a.calls.Delayed.Update(r.Context(), v["delayId"], action); err != nil {
		return nil, err
	}
	return emptyObject, nil
}
