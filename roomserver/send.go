package roomserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// SendRequest is an event a client sends into a room.
type SendRequest struct {
	RoomID   string
	Sender   string
	DeviceID string
	TxnID    string  // PUT /send's transaction ID; empty for state events, which have none
	Type     string  // event type
	StateKey *string // set for state events
	Content  json.RawMessage
	Redacts  string // for m.room.redaction: the event being redacted
}

// Send appends one event to a room and returns its ID. A repeated
// transaction ID from the same device for the same room and event type (the
// same request path, as the spec scopes transaction IDs) returns the first
// event's ID and stores nothing.
func (s *Server) Send(ctx context.Context, req SendRequest) (string, error) {
	var key string
	if req.TxnID != "" {
		key = txnKey("send", req.RoomID, req.Type, req.TxnID)
	}
	return s.send(ctx, req, key)
}

// RedactRequest is PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
type RedactRequest struct {
	RoomID   string
	Sender   string
	DeviceID string
	TxnID    string
	EventID  string  // the event to redact
	Reason   *string // optional reason, kept in the redaction's content
}

// Redact sends an m.room.redaction for req.EventID and returns its ID,
// once per transaction ID (scoped like Send's).
func (s *Server) Redact(ctx context.Context, req RedactRequest) (string, error) {
	content := map[string]any{}
	if req.Reason != nil {
		content["reason"] = *req.Reason
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return "", err
	}
	return s.send(ctx, SendRequest{
		RoomID: req.RoomID, Sender: req.Sender, DeviceID: req.DeviceID,
		Type: spec.MRoomRedaction, Content: raw, Redacts: req.EventID,
	}, txnKey("redact", req.RoomID, req.EventID, req.TxnID))
}

// txnKey is the stored form of a transaction ID: the endpoint, the path
// variables and the client's ID as a JSON array, so that no two requests
// share one. Absurdly long keys are hashed to stay within index limits.
func txnKey(parts ...string) string {
	raw, _ := json.Marshal(parts) // strings always marshal
	if len(raw) > 1024 {
		sum := sha256.Sum256(raw)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return string(raw)
}

func (s *Server) send(ctx context.Context, req SendRequest, key string) (string, error) {
	txn := storage.Txn{UserID: req.Sender, DeviceID: req.DeviceID, TxnID: key}
	r, err := s.lockRoom(ctx, req.RoomID)
	if e, ok := mxerr.As(err); ok && e.Status == http.StatusNotFound {
		// As for rooms the user is not in (and as Synapse answers), so
		// that room IDs cannot be probed.
		return "", mxerr.Forbidden("Unknown room %s", req.RoomID)
	}
	if err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	p := proto{sender: req.Sender, typ: req.Type, stateKey: req.StateKey, content: req.Content}
	isRedaction := req.Type == spec.MRoomRedaction && req.StateKey == nil
	if isRedaction {
		if err := placeRedacts(r.version, &p, req.Redacts); err != nil {
			return "", err
		}
	}
	ev, err := s.build(r, p, time.Now())
	if err != nil {
		return "", err
	}
	if req.StateKey != nil { // the closed-room policy, once the auth rules allow the event
		if err := s.checkStatePolicy(req.Type, *req.StateKey, req.Content); err != nil { // policy.go
			return "", err
		}
	}
	if err := s.checkRelation(ctx, r.id, req.Content); err != nil {
		return "", err
	}
	var target *storage.Event
	var redacted []byte
	if isRedaction { // after the auth rules, so non-members learn nothing of events
		if target, redacted, err = s.checkRedaction(ctx, r, req.Sender, req.Redacts); err != nil {
			return "", err
		}
	}
	if req.Type == spec.MRoomCanonicalAlias && req.StateKey != nil && *req.StateKey == "" {
		if err := s.checkNewCanonicalAliases(ctx, r, ev.Content()); err != nil {
			return "", err
		}
	}
	if req.StateKey != nil {
		// PUT /state has no transaction ID, so a retried request would add
		// the same state again: an event that changes nothing is not
		// stored, and the current one's ID is returned (as Synapse does).
		cur, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: req.Type, StateKey: *req.StateKey}]
		if ok && cur.SenderID() == ev.SenderID() && sameJSON(cur.Content(), ev.Content()) {
			return cur.EventID(), nil
		}
	}
	ne := newEvent(ev)
	if key != "" {
		ne.Txn = txn
	}
	if redacted != nil {
		ne.Redacts, ne.RedactedJSON = target.EventID, redacted
	}
	if err := s.persist(ctx, r, ne); errors.Is(err, storage.ErrDuplicateTxn) {
		// A retry: the first attempt's event is the answer. Storing the
		// transaction ID with the event, rather than looking it up first,
		// keeps the common case at no extra query.
		return s.db.TxnEvent(ctx, txn)
	} else if err != nil {
		return "", err
	}
	r.apply(ev)
	if redacted != nil && target.StateKey != nil {
		s.applyRedaction(r, *target, redacted)
	}
	return ev.EventID(), nil
}

// checkNewCanonicalAliases applies the spec's rule for PUT /state of
// m.room.canonical_alias to the aliases the event adds (those already in the
// room's canonical alias event, and those removed, are not checked): each
// must be an alias (400 M_INVALID_PARAM) that points to this room (400
// M_BAD_ALIAS, checked by checkCanonicalAlias). Called after the auth check,
// so that only users who may set the event learn which aliases exist.
func (s *Server) checkNewCanonicalAliases(ctx context.Context, r *room, content []byte) error {
	type aliases struct {
		Alias      *string  `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	var c aliases
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON("alias must be a string and alt_aliases a list of strings")
	}
	present := map[string]bool{}
	if cur, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCanonicalAlias}]; ok {
		var old aliases
		_ = json.Unmarshal(cur.Content(), &old)
		if old.Alias != nil {
			present[*old.Alias] = true
		}
		for _, a := range old.AltAliases {
			present[a] = true
		}
	}
	var fresh []string
	list := c.AltAliases
	if c.Alias != nil && *c.Alias != "" {
		list = append([]string{*c.Alias}, list...)
	}
	for _, a := range list {
		if present[a] {
			continue
		}
		local, server, ok := strings.Cut(strings.TrimPrefix(a, "#"), ":")
		if !strings.HasPrefix(a, "#") || !ok || local == "" || !ids.ValidServerName(server) || len(a) > 255 {
			return mxerr.InvalidParam("%q is not a room alias", a)
		}
		fresh = append(fresh, a)
	}
	if len(fresh) == 0 {
		return nil
	}
	raw, err := json.Marshal(map[string]any{"alt_aliases": fresh})
	if err != nil {
		return err
	}
	return s.checkCanonicalAlias(ctx, r.id, raw)
}

// sameJSON reports whether two JSON values are equal once canonical.
func sameJSON(a, b []byte) bool {
	ca, errA := gomatrixserverlib.CanonicalJSON(a)
	cb, errB := gomatrixserverlib.CanonicalJSON(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// applyRedaction replaces a redacted state event in r's cached current
// state, so that later auth checks and reads see what was left of it (a
// redacted state event still counts, with only its protected keys).
func (s *Server) applyRedaction(r *room, target storage.Event, redacted []byte) {
	t := gomatrixserverlib.StateKeyTuple{EventType: target.Type, StateKey: *target.StateKey}
	cur, ok := r.state[t]
	if !ok || cur.EventID() != target.EventID {
		return
	}
	pdu, err := r.version.NewEventFromTrustedJSON(redacted, true)
	if err != nil {
		s.log.Error("redacted state event does not load; reloading the room", "event_id", target.EventID, "err", err)
		r.loaded = false
		return
	}
	r.state[t] = pdu
}

// persist stores one built event of r. On failure r's cached head is
// dropped, so the next writer reloads it from storage.
func (s *Server) persist(ctx context.Context, r *room, ne storage.NewEvent) error {
	if _, err := s.db.PersistEvents(ctx, nil, []storage.NewEvent{ne}); err != nil {
		if !errors.Is(err, storage.ErrDuplicateTxn) { // that one leaves the room as it was
			r.loaded = false
		}
		return err
	}
	return nil
}

// placeRedacts puts the redacted event's ID into a redaction: in the
// content from room version 11 on, at the top level before (moved out of
// the content, as the spec says for PUT /send).
func placeRedacts(ver gomatrixserverlib.IRoomVersion, p *proto, target string) error {
	if target == "" {
		return mxerr.MissingParam("redacts is required")
	}
	content := map[string]json.RawMessage{}
	if len(p.content) > 0 {
		if err := json.Unmarshal(p.content, &content); err != nil || content == nil {
			return mxerr.BadJSON("content must be an object")
		}
	}
	if preV11(ver) {
		delete(content, "redacts")
		p.redacts = target
	} else {
		raw, _ := json.Marshal(target)
		content["redacts"] = raw
	}
	var err error
	p.content, err = json.Marshal(content)
	return err
}

// checkRedaction checks that the sender may redact the target and returns
// the target with its redacted JSON (nil when it is redacted already: the
// first redaction's result stays). Unknown events, and events of other
// rooms, are 404: aula does not federate, so an event it does not have
// cannot turn up later. The create event cannot be redacted (as in Synapse).
func (s *Server) checkRedaction(ctx context.Context, r *room, sender, target string) (*storage.Event, []byte, error) {
	ev, err := s.db.Event(ctx, target)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && ev.RoomID != r.id) {
		return nil, nil, mxerr.NotFound("Event not found")
	}
	if err != nil {
		return nil, nil, err
	}
	if ev.Type == spec.MRoomCreate && ev.StateKey != nil && *ev.StateKey == "" {
		return nil, nil, mxerr.Forbidden("The room's create event cannot be redacted")
	}
	if ev.Sender != sender && !r.hasPower(sender, "redact") {
		return nil, nil, mxerr.Forbidden("You may only redact your own events")
	}
	if ev.RedactedBy != "" {
		return &ev, nil, nil
	}
	redacted, err := redactJSON(r.version, ev.JSON)
	if err != nil {
		return nil, nil, err
	}
	return &ev, redacted, nil
}

// preV11 reports whether a room version predates version 11, which moved
// redacts into the content and changed the redaction algorithm; it is also
// the version that dropped content.creator, which the version exposes.
func preV11(ver gomatrixserverlib.IRoomVersion) bool { return ver.CreatorInCreateEvent() }

// redactJSON applies the room version's redaction algorithm. From room
// version 11 on the spec also keeps content.third_party_invite.signed of
// member events, which gomatrixserverlib drops; it is put back here.
func redactJSON(ver gomatrixserverlib.IRoomVersion, eventJSON []byte) ([]byte, error) {
	redacted, err := ver.RedactEventJSON(eventJSON)
	if err != nil {
		return nil, err
	}
	if preV11(ver) {
		return redacted, nil
	}
	var orig struct {
		Type    string `json:"type"`
		Content struct {
			ThirdPartyInvite struct {
				Signed json.RawMessage `json:"signed"`
			} `json:"third_party_invite"`
		} `json:"content"`
	}
	if json.Unmarshal(eventJSON, &orig) != nil || orig.Type != spec.MRoomMember || len(orig.Content.ThirdPartyInvite.Signed) == 0 {
		return redacted, nil
	}
	var ev map[string]json.RawMessage
	var content map[string]json.RawMessage
	if err := json.Unmarshal(redacted, &ev); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(ev["content"], &content); err != nil || content == nil {
		content = map[string]json.RawMessage{}
	}
	content["third_party_invite"], _ = json.Marshal(map[string]json.RawMessage{"signed": orig.Content.ThirdPartyInvite.Signed})
	ev["content"], _ = json.Marshal(content)
	return json.Marshal(ev)
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
