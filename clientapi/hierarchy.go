package clientapi

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// getSpaceHierarchy answers GET /v1/rooms/{roomId}/hierarchy.
func (a *API) getSpaceHierarchy(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	req := roomserver.HierarchyRequest{UserID: d.UserID, RoomID: roomID, From: q.Get("from")}
	if req.SuggestedOnly, err = boolParam(q, "suggested_only"); err != nil {
		return nil, err
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 {
			return nil, mxerr.InvalidParam("limit must be a positive integer")
		}
		req.Limit = n
	}
	if q.Has("max_depth") {
		n, err := strconv.Atoi(q.Get("max_depth"))
		if err != nil || n < 0 {
			return nil, mxerr.InvalidParam("max_depth must be a non-negative integer")
		}
		req.MaxDepth = &n
	}
	return a.rooms.Hierarchy(r.Context(), req)
}

// getRoomSummary answers GET /v1/room_summary/{roomIdOrAlias} and the
// unstable im.nheko.summary paths (MSC3266) that clients still call. The
// spec lets servers answer without an access token for public, knockable
// and world_readable rooms; aula serves the members of one university and
// keeps every room out of strangers' sight, so it always asks for one
// (401 without). The via parameter is ignored: aula does not federate.
func (a *API) getRoomSummary(r *http.Request, d *auth.Device) (any, error) {
	target := mux.Vars(r)["roomIdOrAlias"]
	if !ids.ValidRoomID(target) && !validAlias(target) {
		return nil, mxerr.InvalidParam("%q is not a room ID or alias", target)
	}
	return a.rooms.Summary(r.Context(), d.UserID, target)
}
