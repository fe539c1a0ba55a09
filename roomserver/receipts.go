package roomserver

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Receipt types and the read marker a client can set (spec: "Receipts",
// "Fully read markers").
const (
	ReceiptRead        = storage.ReceiptRead
	ReceiptReadPrivate = storage.ReceiptReadPrivate
	FullyRead          = "m.fully_read"
)

// MainThread is the thread_id of a threaded receipt on the main timeline.
const MainThread = "main"

// maxRelationHops bounds the walk up an event's relations to find its
// thread (the spec recommends at most 3 hops).
const maxRelationHops = 3

// ReceiptTarget is an event a receipt or read marker may point at: checked
// by CheckReceiptTarget, stored by PutReceipt.
type ReceiptTarget struct {
	RoomID   string
	EventID  string
	ThreadID string // "" for an unthreaded receipt
	Depth    int64  // the event's depth, which orders receipts
}

// RequireJoined returns 403 M_FORBIDDEN unless the user is joined to the
// room now; unknown rooms are 403 too, so that room IDs cannot be probed.
func (s *Server) RequireJoined(ctx context.Context, userID, roomID string) error {
	own, err := s.db.StateEventAt(ctx, roomID, spec.MRoomMember, userID, 0)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && membershipOf(own) != spec.Join) {
		return forbiddenNotMember()
	}
	return err
}

// CheckReceiptTarget checks that a receipt or read marker of the user may
// point at the event: the user must be joined to the room (403 M_FORBIDDEN)
// and the event must be in the room and visible to them (404 M_NOT_FOUND
// otherwise, as GET /event answers, so that events cannot be probed). A
// threadID ("main" or a thread root's event ID; "" for none) must be the
// event's thread (400 M_INVALID_PARAM), as Synapse checks: "main" for an
// event in no thread, the root for an event in the thread, for the root
// itself and for events related to the root.
func (s *Server) CheckReceiptTarget(ctx context.Context, userID, roomID, eventID, threadID string) (ReceiptTarget, error) {
	if !validEventID(eventID) {
		return ReceiptTarget{}, mxerr.InvalidParam("%q is not an event ID", eventID)
	}
	if threadID != "" && threadID != MainThread && !validEventID(threadID) {
		return ReceiptTarget{}, mxerr.InvalidParam("thread_id must be %q or a thread root's event ID", MainThread)
	}
	if err := s.RequireJoined(ctx, userID, roomID); err != nil {
		return ReceiptTarget{}, err
	}
	ev, err := s.db.Event(ctx, eventID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != roomID) {
		return ReceiptTarget{}, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return ReceiptTarget{}, err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	if err != nil {
		return ReceiptTarget{}, err
	}
	if !v.canSee(ev) {
		return ReceiptTarget{}, mxerr.NotFound("Event not found")
	}
	if threadID != "" {
		ok, err := s.inThread(ctx, roomID, eventID, threadID)
		if err != nil {
			return ReceiptTarget{}, err
		}
		if !ok {
			return ReceiptTarget{}, mxerr.InvalidParam("Event %s is not in thread %s", eventID, threadID)
		}
	}
	return ReceiptTarget{RoomID: roomID, EventID: eventID, ThreadID: threadID, Depth: ev.Depth}, nil
}

// PutReceipt stores the user's receipt (m.read or m.read.private) at a
// target checked by CheckReceiptTarget. A receipt for an event at or
// before the user's current one of the same type and thread changes
// nothing: receipts mark "read up to" and only move forwards (as in
// Synapse; the spec leaves it open).
func (s *Server) PutReceipt(ctx context.Context, userID, receiptType string, t ReceiptTarget) error {
	if receiptType != ReceiptRead && receiptType != ReceiptReadPrivate {
		return mxerr.InvalidParam("Receipt type must be %s or %s", ReceiptRead, ReceiptReadPrivate)
	}
	_, err := s.db.PutReceipt(ctx, storage.NewReceipt{
		RoomID: t.RoomID, UserID: userID, Type: receiptType, ThreadID: t.ThreadID,
		EventID: t.EventID, EventDepth: t.Depth, TS: time.Now().UnixMilli(),
	})
	return err
}

// validEventID checks the shape of an event ID: "$" and at most 255 bytes.
func validEventID(id string) bool {
	return len(id) > 1 && len(id) <= 255 && strings.HasPrefix(id, "$")
}

// inThread reports whether a receipt for the event may name the thread, as
// Synapse decides: "main" fits an event that is in no thread; a root's
// event ID fits the events of its thread, and the root itself and events
// related to the root by other relations, provided the root has thread
// replies.
func (s *Server) inThread(ctx context.Context, roomID, eventID, threadID string) (bool, error) {
	thread, top, err := s.threadOf(ctx, eventID)
	switch {
	case err != nil:
		return false, err
	case threadID == MainThread:
		return thread == "", nil
	case thread != "":
		return thread == threadID, nil
	case top != threadID:
		return false, nil
	}
	return s.db.HasThreadReplies(ctx, roomID, threadID)
}

// threadOf walks up the event's recorded relations (at most
// maxRelationHops; redacted relations no longer count) and returns the root
// of the thread the event is in ("" for the main timeline) and the top-most
// event of the walk (the event itself when it relates to nothing).
func (s *Server) threadOf(ctx context.Context, eventID string) (thread, top string, err error) {
	top = eventID
	for range maxRelationHops {
		relType, parent, err := s.db.RelationOf(ctx, top)
		if errors.Is(err, storage.ErrNotFound) {
			return "", top, nil
		}
		if err != nil {
			return "", "", err
		}
		if relType == relThread {
			return parent, parent, nil
		}
		top = parent
	}
	return "", top, nil
}
