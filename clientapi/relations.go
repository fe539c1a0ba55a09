package clientapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// Page sizes of the relations and threads endpoints: Synapse's defaults
// (clients normally ask for a limit) and caps.
const (
	defaultRelationsLimit = 5
	maxRelationsLimit     = 1000
	defaultThreadsLimit   = 5
	maxThreadsLimit       = 100
)

// getRelations answers GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]].
func (a *API) getRelations(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	q := r.URL.Query()
	req := roomserver.RelationsRequest{
		UserID: d.UserID, RoomID: roomID, EventID: v["eventId"], RelType: v["relType"], EventType: v["eventType"],
		From: q.Get("from"), To: q.Get("to"), Limit: defaultRelationsLimit,
	}
	switch q.Get("dir") {
	case "", "b":
	case "f":
		req.Forward = true
	default:
		return nil, mxerr.InvalidParam("dir must be b or f")
	}
	if req.Limit, err = intParam(q, "limit", req.Limit, 0, maxRelationsLimit); err != nil {
		return nil, err
	}
	for _, name := range []string{"recurse", "org.matrix.msc3981.recurse"} {
		if !q.Has(name) {
			continue
		}
		b, err := boolParam(q, name)
		if err != nil {
			return nil, err
		}
		req.Recurse = &b
		break
	}
	return a.rooms.Relations(r.Context(), req)
}

// getThreads answers GET /v1/rooms/{roomId}/threads.
func (a *API) getThreads(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	req := roomserver.ThreadsRequest{UserID: d.UserID, RoomID: roomID, From: q.Get("from"), Limit: defaultThreadsLimit}
	switch q.Get("include") {
	case "", "all":
	case "participated":
		req.Participated = true
	default:
		return nil, mxerr.InvalidParam("include must be all or participated")
	}
	if req.Limit, err = intParam(q, "limit", req.Limit, 1, maxThreadsLimit); err != nil {
		return nil, err
	}
	return a.rooms.Threads(r.Context(), req)
}
