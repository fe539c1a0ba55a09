package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// SendRequest is an event a client sends into a room.
type SendRequest struct {
	RoomID   string
	Sender   string
	DeviceID string
	TxnID    string  // empty for requests without a transaction ID (state events)
	Type     string  // event type
	StateKey *string // set for state events
	Content  json.RawMessage
	Redacts  string // for m.room.redaction: the event being redacted
}

// Send appends one event to a room and returns its ID. A repeated
// transaction ID from the same device returns the first event's ID and
// stores nothing.
func (s *Server) Send(ctx context.Context, req SendRequest) (string, error) {
	txn := storage.Txn{UserID: req.Sender, DeviceID: req.DeviceID, TxnID: req.TxnID}
	if req.TxnID != "" {
		if id, err := s.db.TxnEvent(ctx, txn); err == nil {
			return id, nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	r, err := s.lockRoom(ctx, req.RoomID)
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	if req.TxnID != "" { // a concurrent retry may have won the lock first
		if id, err := s.db.TxnEvent(ctx, txn); err == nil {
			return id, nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	p := proto{sender: req.Sender, typ: req.Type, stateKey: req.StateKey, content: req.Content}
	var redacted []byte
	if req.Type == spec.MRoomRedaction {
		if redacted, err = s.prepareRedaction(ctx, r, &p, req.Redacts); err != nil {
			return "", err
		}
	}
	ev, err := s.build(r, p, time.Now())
	if err != nil {
		return "", err
	}
	ne := newEvent(ev)
	if req.TxnID != "" {
		ne.Txn = txn
	}
	if redacted != nil {
		ne.Redacts, ne.RedactedJSON = req.Redacts, redacted
	}
	if err := s.persist(ctx, r, ne); err != nil {
		return "", err
	}
	r.apply(ev)
	return ev.EventID(), nil
}

// persist stores one built event of r. On failure r's cached head is
// dropped, so the next writer reloads it from storage.
func (s *Server) persist(ctx context.Context, r *room, ne storage.NewEvent) error {
	if _, err := s.db.PersistEvents(ctx, nil, []storage.NewEvent{ne}); err != nil {
		r.loaded = false
		return err
	}
	return nil
}

// prepareRedaction checks that the sender may redact the target and returns
// the target's redacted JSON (nil when the target is unknown, which the spec
// allows: the redaction is stored and applies if the event turns up).
func (s *Server) prepareRedaction(ctx context.Context, r *room, p *proto, target string) ([]byte, error) {
	if target == "" {
		return nil, mxerr.MissingParam("redacts is required")
	}
	if r.version.Version() != gomatrixserverlib.RoomVersionV10 {
		// From room version 11 on, redacts lives in the content.
		content := map[string]json.RawMessage{}
		if len(p.content) > 0 {
			if err := json.Unmarshal(p.content, &content); err != nil {
				return nil, mxerr.BadJSON("content must be an object")
			}
		}
		raw, _ := json.Marshal(target)
		content["redacts"] = raw
		p.content, _ = json.Marshal(content)
	} else {
		p.redacts = target
	}
	ev, err := s.db.Event(ctx, target)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != r.id) {
		return nil, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return nil, err
	}
	if ev.Sender != p.sender && !r.hasPower(p.sender, "redact") {
		return nil, mxerr.Forbidden("You may only redact your own events")
	}
	if ev.RedactedBy != "" {
		return nil, nil // already redacted: keep the first redaction's result
	}
	redacted, err := r.version.RedactEventJSON(ev.JSON)
	if err != nil {
		return nil, err
	}
	return redacted, nil
}

// powerLevels returns the room's power levels (defaults when unset).
func (r *room) powerLevels() gomatrixserverlib.PowerLevelContent {
	if ev, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomPowerLevels}]; ok {
		if pl, err := ev.PowerLevels(); err == nil {
			return *pl
		}
	}
	var pl gomatrixserverlib.PowerLevelContent
	create := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCreate}]
	if create != nil {
		pl.Defaults()
		pl.Users = map[string]int64{string(create.SenderID()): 100}
	}
	return pl
}

// userLevel returns a user's power level; creators of room version 12 rooms
// rank above everyone.
func (r *room) userLevel(userID string) int64 {
	if r.version.PrivilegedCreators() && r.isCreator(userID) {
		return 1 << 53
	}
	pl := r.powerLevels()
	return pl.UserLevel(spec.SenderID(userID))
}

// isCreator reports whether userID created the room or is one of its
// additional creators (room version 12).
func (r *room) isCreator(userID string) bool {
	create := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCreate}]
	if create == nil {
		return false
	}
	if string(create.SenderID()) == userID {
		return true
	}
	var c struct {
		AdditionalCreators []string `json:"additional_creators"`
	}
	_ = json.Unmarshal(create.Content(), &c)
	for _, u := range c.AdditionalCreators {
		if u == userID {
			return true
		}
	}
	return false
}

// hasPower reports whether the user's level reaches the named action level
// ("redact", "kick", "ban", "invite").
func (r *room) hasPower(userID, action string) bool {
	pl := r.powerLevels()
	var need int64
	switch action {
	case "redact":
		need = pl.Redact
	case "kick":
		need = pl.Kick
	case "ban":
		need = pl.Ban
	case "invite":
		need = pl.Invite
	}
	return r.userLevel(userID) >= need
}

// membership returns a user's current membership in r ("" if none).
func (r *room) membership(userID string) string {
	ev, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomMember, StateKey: userID}]
	if !ok {
		return ""
	}
	m, _ := ev.Membership()
	return m
}
