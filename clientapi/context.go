package clientapi

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// getContext answers GET /rooms/{roomId}/context/{eventId}.
func (a *API) getContext(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	req := roomserver.ContextRequest{UserID: d.UserID, RoomID: roomID, EventID: mux.Vars(r)["eventId"], Limit: 10}
	if req.Limit, err = intParam(q, "limit", 10, 0, maxMessagesLimit); err != nil {
		return nil, err
	}
	filter, match, err := eventFilterParam(q)
	if err != nil {
		return nil, err
	}
	if filter != nil {
		req.LazyLoadMembers, req.Match = filter.LazyLoadMembers, match
	}
	return a.rooms.Context(r.Context(), req)
}

// timestampToEvent answers GET /v1/rooms/{roomId}/timestamp_to_event.
func (a *API) timestampToEvent(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil || ts < 0 {
		return nil, mxerr.InvalidParam("ts must be a timestamp in milliseconds")
	}
	var backwards bool
	switch q.Get("dir") {
	case "b":
		backwards = true
	case "f":
	default:
		return nil, mxerr.InvalidParam("dir must be f or b")
	}
	ev, err := a.rooms.TimestampToEvent(r.Context(), d.UserID, roomID, ts, backwards)
	if err != nil {
		return nil, err
	}
	return map[string]any{"event_id": ev.EventID, "origin_server_ts": ev.OriginServerTS}, nil
}
