package clientapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/aula-chat/aula/auth"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/typing"
)

// receiptRequest is the body of POST /rooms/{roomId}/receipt/{type}/{eventId}.
// thread_id is kept raw: a thread_id that is not a non-empty string is
// 400 M_INVALID_PARAM (the spec's example), not M_BAD_JSON.
type receiptRequest struct {
	ThreadID json.RawMessage `json:"thread_id"`
}

// postReceipt answers POST /rooms/{roomId}/receipt/{receiptType}/{eventId}:
// m.read and m.read.private set a receipt (threaded with thread_id),
// m.fully_read moves the read marker as /read_markers does. The body may
// be empty or {}.
func (a *API) postReceipt(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	v := mux.Vars(r)
	typ, eventID := v["receiptType"], v["eventId"]
	switch typ {
	case roomserver.ReceiptRead, roomserver.ReceiptReadPrivate, roomserver.FullyRead:
	default:
		return nil, mxerr.InvalidParam("Receipt type must be %s, %s or %s", roomserver.ReceiptRead, roomserver.ReceiptReadPrivate, roomserver.FullyRead)
	}
	var body receiptRequest
	if err := decodeJSON(r, &body, true); err != nil {
		return nil, err
	}
	var threadID string
	if body.ThreadID != nil {
		if json.Unmarshal(body.ThreadID, &threadID) != nil || threadID == "" {
			return nil, mxerr.InvalidParam("thread_id field must be a non-empty string")
		}
		if typ == roomserver.FullyRead {
			return nil, mxerr.InvalidParam("thread_id is not compatible with %s", roomserver.FullyRead)
		}
	}
	target, err := a.rooms.CheckReceiptTarget(r.Context(), d.UserID, roomID, eventID, threadID)
	if err != nil {
		return nil, err
	}
	if typ == roomserver.FullyRead {
		return emptyObject, a.account.SetFullyRead(r.Context(), d.UserID, roomID, eventID, target.Depth)
	}
	return emptyObject, a.rooms.PutReceipt(r.Context(), d.UserID, typ, target)
}

// readMarkersRequest is the body of POST /rooms/{roomId}/read_markers;
// every field is optional (spec v1.4). Unknown keys are ignored, as
// Synapse does, so that new receipt types do not break older servers.
type readMarkersRequest struct {
	FullyRead   *string `json:"m.fully_read"`
	Read        *string `json:"m.read"`
	ReadPrivate *string `json:"m.read.private"`
}

// setReadMarkers answers POST /rooms/{roomId}/read_markers: it moves the
// fully read marker and the (unthreaded) m.read and m.read.private
// receipts given. Every target is checked before anything is written, so a
// request that fails changes nothing.
func (a *API) setReadMarkers(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	var body readMarkersRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	ctx := r.Context()
	if err := a.rooms.RequireJoined(ctx, d.UserID, roomID); err != nil {
		return nil, err
	}
	type marker struct {
		typ    string
		target roomserver.ReceiptTarget
	}
	var markers []marker
	for _, m := range []struct {
		typ     string
		eventID *string
	}{
		{roomserver.FullyRead, body.FullyRead},
		{roomserver.ReceiptRead, body.Read},
		{roomserver.ReceiptReadPrivate, body.ReadPrivate},
	} {
		if m.eventID == nil {
			continue
		}
		t, err := a.rooms.CheckReceiptTarget(ctx, d.UserID, roomID, *m.eventID, "")
		if err != nil {
			return nil, err
		}
		markers = append(markers, marker{m.typ, t})
	}
	for _, m := range markers {
		if m.typ == roomserver.FullyRead {
			err = a.account.SetFullyRead(ctx, d.UserID, roomID, m.target.EventID, m.target.Depth)
		} else {
			err = a.rooms.PutReceipt(ctx, d.UserID, m.typ, m.target)
		}
		if err != nil {
			return nil, err
		}
	}
	return emptyObject, nil
}

// typingRequest is the body of PUT /rooms/{roomId}/typing/{userId}.
type typingRequest struct {
	Typing  *bool  `json:"typing"`
	Timeout *int64 `json:"timeout"` // milliseconds
}

// setTyping answers PUT /rooms/{roomId}/typing/{userId}. Users set only
// their own typing state (403 otherwise) in rooms they are joined to. A
// missing timeout is typing.DefaultTimeout; longer ones are cut to
// typing.MaxTimeout.
func (a *API) setTyping(r *http.Request, d *auth.Device) (any, error) {
	roomID, err := roomIDVar(r)
	if err != nil {
		return nil, err
	}
	if mux.Vars(r)["userId"] != d.UserID {
		return nil, mxerr.Forbidden("Cannot set another user's typing state")
	}
	var body typingRequest
	if err := decodeJSON(r, &body, false); err != nil {
		return nil, err
	}
	if body.Typing == nil {
		return nil, mxerr.MissingParam("typing is required")
	}
	timeout := typing.DefaultTimeout
	if body.Timeout != nil {
		if *body.Timeout < 0 {
			return nil, mxerr.InvalidParam("timeout must not be negative")
		}
		timeout = time.Duration(min(*body.Timeout, typing.MaxTimeout.Milliseconds())) * time.Millisecond
	}
	if err := a.rooms.RequireJoined(r.Context(), d.UserID, roomID); err != nil {
		return nil, err
	}
	a.typing.Set(roomID, d.UserID, *body.Typing, timeout)
	return emptyObject, nil
}
