package roomserver

import (
	"context"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// maxReasonLen bounds report reasons.
const maxReasonLen = 1000

// ReportEvent stores a user's report of an event they can see; events they
// cannot see are 404, as if they did not exist.
func (s *Server) ReportEvent(ctx context.Context, userID, roomID, eventID, reason string, score *int64) error {
	if len(reason) > maxReasonLen {
		return mxerr.InvalidParam("reason is longer than %d bytes", maxReasonLen)
	}
	if score != nil && (*score < -100 || *score > 0) {
		return mxerr.InvalidParam("score must be between -100 and 0")
	}
	// Events of ignored users can be reported: that is often why they are ignored.
	if _, err := s.event(ctx, userID, roomID, eventID, false); err != nil {
		return err
	}
	s.log.Info("event reported", "room_id", roomID, "event_id", eventID, "user_id", userID)
	return s.db.AddReport(ctx, storage.Report{RoomID: roomID, EventID: eventID, Reporter: userID, Reason: reason, Score: score})
}

// ReportRoom stores a user's report of a room they know (are or were in).
func (s *Server) ReportRoom(ctx context.Context, userID, roomID, reason string) error {
	if len(reason) > maxReasonLen {
		return mxerr.InvalidParam("reason is longer than %d bytes", maxReasonLen)
	}
	if err := s.checkRoom(ctx, roomID); err != nil {
		return err
	}
	v, err := s.newViewer(ctx, roomID, userID)
	if err != nil {
		return err
	}
	if len(v.membership) == 0 && !v.worldReadable() {
		return mxerr.NotFound("Unknown room %s", roomID) // rooms are not discoverable by strangers
	}
	s.log.Info("room reported", "room_id", roomID, "user_id", userID)
	return s.db.AddReport(ctx, storage.Report{RoomID: roomID, Reporter: userID, Reason: reason})
}
