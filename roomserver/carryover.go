package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/push"
	"github.com/aula-chat/aula/storage"
)

// predecessor returns the room r was upgraded from, or "". r is locked.
func (r *room) predecessor() string {
	create, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCreate}]
	if !ok {
		return ""
	}
	var c struct {
		Predecessor struct {
			RoomID string `json:"room_id"`
		} `json:"predecessor"`
	}
	_ = json.Unmarshal(create.Content(), &c)
	return c.Predecessor.RoomID
}

// carryOverUserState gives a user who joins an upgraded room what they had
// set up for its predecessor, as the spec's room upgrade module asks: their
// room tags, their room-specific push rule, and the room's place in
// m.direct. Failures are logged, not returned: the join has happened.
func (s *Server) carryOverUserState(ctx context.Context, userID, oldRoom, newRoom string) {
	if err := s.carryOver(ctx, userID, oldRoom, newRoom); err != nil {
		s.log.Warn("carrying user state over a room upgrade failed", "user_id", userID, "room_id", newRoom, "err", err)
	}
}

func (s *Server) carryOver(ctx context.Context, userID, oldRoom, newRoom string) error {
	// Room tags (m.tag), unless the new room has its own already.
	if tags, err := s.db.AccountData(ctx, userID, oldRoom, "m.tag"); err == nil {
		if _, err := s.db.AccountData(ctx, userID, newRoom, "m.tag"); errors.Is(err, storage.ErrNotFound) {
			if _, err := s.db.PutAccountData(ctx, userID, newRoom, "m.tag", tags); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	// m.direct: the new room joins every list that holds the old one.
	err := s.db.UpdateAccountData(ctx, userID, "", "m.direct", func(current []byte) ([]byte, error) {
		if current == nil {
			return nil, errNothingToDo
		}
		var direct map[string][]string
		if json.Unmarshal(current, &direct) != nil {
			return nil, errNothingToDo
		}
		changed := false
		for u, rooms := range direct {
			if slices.Contains(rooms, oldRoom) && !slices.Contains(rooms, newRoom) {
				direct[u] = append(rooms, newRoom)
				changed = true
			}
		}
		if !changed {
			return nil, errNothingToDo
		}
		return json.Marshal(direct)
	})
	if err != nil && !errors.Is(err, errNothingToDo) {
		return err
	}
	// The room's own push rule (e.g. "mute this room").
	err = push.NewService(s.db).Update(ctx, userID, func(ur *push.UserRules) error {
		for _, rule := range ur.Room {
			if rule.RuleID == newRoom {
				return errNothingToDo
			}
		}
		for _, rule := range ur.Room {
			if rule.RuleID == oldRoom {
				copied := rule
				copied.RuleID = newRoom
				ur.Room = append([]push.Rule{copied}, ur.Room...)
				return nil
			}
		}
		return errNothingToDo
	})
	if err != nil && !errors.Is(err, errNothingToDo) {
		return err
	}
	return nil
}

// errNothingToDo aborts an update transaction that would change nothing.
var errNothingToDo = errors.New("roomserver: nothing to do")
