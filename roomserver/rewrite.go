package roomserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/aula-chat/aula/storage"
)

// RedactInPlace removes the content of stored events of one room without
// sending redaction events: each is rewritten with the room version's
// redaction algorithm, as a redaction would leave it, and dropped from the
// search index (storage.RewriteEvents). Erasure and retention use it
// (docs/privacy.md). The event IDs and the rows stay, so the room's chain,
// pagination tokens and anything that points at the events keep working.
//
// The rewritten events carry a synthetic unsigned.redacted_because (an
// m.room.redaction that was never sent, with reason and the event's own
// sender), so that clients show them as removed rather than as empty
// messages. progress is passed on to storage (retention's bookkeeping).
func (s *Server) RedactInPlace(ctx context.Context, roomID string, evs []storage.Event, reason string, progress int64) error {
	r, err := s.lockRoom(ctx, roomID)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	now := time.Now().UnixMilli()
	rw := make([]storage.Rewrite, 0, len(evs))
	for _, ev := range evs {
		if ev.RoomID != roomID {
			continue
		}
		js, err := redactedInPlace(r.version, roomID, ev, reason, now)
		if err != nil {
			return err
		}
		rw = append(rw, storage.Rewrite{EventID: ev.EventID, JSON: js})
	}
	err = s.db.RewriteEvents(ctx, roomID, rw, progress)
	// Rewritten state events (member events of an erased user) may be in
	// the cached current state: the next writer reloads it.
	r.loaded = false
	return err
}

// redactedInPlace is ev's JSON after the redaction algorithm, with a
// synthetic redaction in unsigned.redacted_because.
func redactedInPlace(ver gomatrixserverlib.IRoomVersion, roomID string, ev storage.Event, reason string, now int64) ([]byte, error) {
	red, err := redactJSON(ver, ev.JSON)
	if err != nil {
		return nil, fmt.Errorf("roomserver: redact %s: %w", ev.EventID, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(red, &m); err != nil {
		return nil, fmt.Errorf("roomserver: redacted %s: %w", ev.EventID, err)
	}
	sum := sha256.Sum256([]byte(ev.EventID + "\x00" + reason))
	content := map[string]any{"reason": reason}
	because := map[string]any{
		"event_id":         "$" + base64.RawURLEncoding.EncodeToString(sum[:]),
		"type":             "m.room.redaction",
		"room_id":          roomID,
		"sender":           ev.Sender,
		"origin_server_ts": now,
		"content":          content,
		"unsigned":         map[string]any{},
	}
	if preV11(ver) {
		because["redacts"] = ev.EventID
	} else {
		content["redacts"] = ev.EventID
	}
	if m["unsigned"], err = marshalNoEscape(map[string]any{"redacted_because": because}); err != nil {
		return nil, err
	}
	return marshalNoEscape(m)
}

// marshalNoEscape is json.Marshal without HTML escaping: stored events keep
// "<" and "&" as they are, as the server built them.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
