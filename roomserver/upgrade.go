package roomserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// UpgradeRequest is POST /rooms/{roomId}/upgrade.
type UpgradeRequest struct {
	RoomID     string
	UserID     string
	NewVersion string
	// AdditionalCreators is additional_creators as the client sent it (nil
	// when absent). It is read only when the new version has privileged
	// creators; for other versions the spec says it is ignored.
	AdditionalCreators json.RawMessage
}

const (
	// tombstoneBody is the body of the old room's m.room.tombstone, which
	// the spec leaves to the server (this is Synapse's).
	tombstoneBody = "This room has been replaced"
	// upgradeReplayWindow is how long a repeated upgrade request from the
	// same user answers with the room the first one created, rather than
	// replacing the replacement (Synapse caches the answer as long).
	upgradeReplayWindow = 5 * time.Minute
	// maxUserIDBytes is the spec's limit on a user ID.
	maxUserIDBytes = 255
)

// upgradeCopiedState is the state the replacement room takes over from the
// old room when it has it, in the order it is sent after the power levels:
// the spec's recommended list (Synapse's too), access rules first as
// createRoom sends its preset's. A space also keeps its m.space.child links
// (as in Synapse). Not copied: m.room.pinned_events (the pinned events stay
// in the old room), m.space.parent (its validity depends on who sent it; the
// spec says not to copy such state), other custom state, memberships other
// than bans, and the aliases, which move instead.
var upgradeCopiedState = []string{
	spec.MRoomJoinRules, spec.MRoomHistoryVisibility, spec.MRoomGuestAccess,
	"m.room.server_acl", spec.MRoomEncryption, spec.MRoomName, spec.MRoomAvatar, spec.MRoomTopic,
}

// UpgradeRoom replaces a room with a new one of another room version and
// returns the new room's ID, following the spec's steps: the user must be
// allowed to send m.room.tombstone in the old room; the new room's create
// event names its predecessor; the transferable state, the bans and the
// power levels are copied; the local aliases and the canonical alias move
// to the new room; the old room gets a tombstone and power levels that
// leave only moderators able to speak or invite.
//
// Every event of both rooms is built and authorised before anything is
// stored. Then the new room is stored (one transaction), the old room's
// closing events (one transaction, the tombstone last) and the aliases
// move. A failure before the second commit leaves at most an unused new
// room and the old room as it was: never a tombstone without its
// replacement.
func (s *Server) UpgradeRoom(ctx context.Context, req UpgradeRequest) (string, error) {
	if !slices.Contains(config.SupportedRoomVersions, req.NewVersion) {
		return "", mxerr.New(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "Room version %q is not supported", req.NewVersion)
	}
	ver := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersion(req.NewVersion))
	var extra []string
	if ver.PrivilegedCreators() {
		var err error
		if extra, err = additionalCreators(req.UserID, req.AdditionalCreators); err != nil {
			return "", err
		}
	}

	old, err := s.lockRoom(ctx, req.RoomID)
	if e, ok := mxerr.As(err); ok && e.Status == http.StatusNotFound {
		return "", mxerr.Forbidden("Unknown room %s", req.RoomID) // as for Send: room IDs cannot be probed
	}
	if err != nil {
		return "", err
	}
	defer old.mu.Unlock()
	now := time.Now()

	// The spec's permission: may the user send a tombstone here? The auth
	// rules also require them to be joined. The content does not matter.
	if _, err := s.build(old, tombstoneProto(req.UserID, old.id), now); err != nil {
		if e, ok := mxerr.As(err); ok && e.Code == "M_FORBIDDEN" {
			return "", mxerr.Forbidden("You cannot upgrade this room: %s", e.Msg)
		}
		return "", err
	}
	if id, err := s.recentUpgrade(ctx, old, req.UserID, req.NewVersion, extra); err != nil || id != "" {
		if err == nil {
			// Finishes the alias move of a first attempt that failed there.
			err = s.db.MoveAliases(ctx, old.id, id)
		}
		return id, err
	}

	aliases, err := s.db.RoomAliases(ctx, old.id)
	if err != nil {
		return "", err
	}
	oldCanonical, newCanonical := splitCanonicalAlias(old, aliases)
	profile, err := s.db.User(ctx, req.UserID)
	if err != nil {
		return "", err
	}

	nr := &room{version: ver, state: map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU{}, loaded: true}
	var built []gomatrixserverlib.PDU
	add := func(p proto) error {
		ev, err := s.build(nr, p, now)
		if err != nil {
			return err
		}
		nr.apply(ev)
		built = append(built, ev)
		return nil
	}
	// The old room's closing events are built on a copy of it, so that
	// nothing changes in memory unless they are stored.
	shadow := &room{loaded: true, id: old.id, version: old.version, latest: old.latest, depth: old.depth, state: maps.Clone(old.state)}
	var closing []gomatrixserverlib.PDU
	closeOld := func() error {
		var err error
		closing, err = s.closingEvents(shadow, req.UserID, nr.id, oldCanonical, now)
		return err
	}

	// 1. The create event. A version 12 room's ID is the create event's
	// hash, so the tombstone naming it comes after, and the predecessor
	// cannot name the tombstone (the spec lets event_id out from version
	// 12 on). Earlier versions name it, as Synapse does: it is the old
	// room's last event.
	create := upgradedCreateContent(old, ver, req.UserID, extra)
	if ver.DomainlessRoomIDs() {
		nr.id = ""
		if err := add(stateProto(req.UserID, spec.MRoomCreate, "", create)); err != nil {
			return "", err
		}
		nr.id = built[0].RoomID().String()
		if err := closeOld(); err != nil {
			return "", err
		}
	} else {
		nr.id = "!" + rand.Text() + ":" + s.cfg.ServerName
		if err := closeOld(); err != nil {
			return "", err
		}
		create["predecessor"].(map[string]string)["event_id"] = closing[len(closing)-1].EventID()
		if err := add(stateProto(req.UserID, spec.MRoomCreate, "", create)); err != nil {
			return "", err
		}
	}

	// 2. The upgrader joins.
	if err := add(stateProto(req.UserID, spec.MRoomMember, req.UserID, memberContent(spec.Join, profile, false, ""))); err != nil {
		return "", err
	}

	// What follows the power levels, which decides how much power the
	// upgrader needs in the meantime: the copied state, a space's
	// children, the bans and the canonical alias.
	creators := append([]string{req.UserID}, extra...)
	var rest []proto
	for _, typ := range upgradeCopiedState {
		if ev, ok := old.state[gomatrixserverlib.StateKeyTuple{EventType: typ}]; ok {
			// State the closed-room policy no longer allows becomes its
			// closed equivalent (policy.go).
			if content, ok := s.policyStateFallback(typ, ev.Content()); ok {
				rest = append(rest, proto{sender: req.UserID, typ: typ, stateKey: stateKeyPtr(""), content: content})
			}
		}
	}
	if roomType(old) == "m.space" {
		rest = append(rest, copiedStateOfType(old, req.UserID, "m.space.child", hasVia)...)
	}
	rest = append(rest, copiedStateOfType(old, req.UserID, spec.MRoomMember, func(ev gomatrixserverlib.PDU) bool {
		m, _ := ev.Membership()
		// A creator cannot be banned (and the upgrader chose them).
		return m == spec.Ban && !(ver.PrivilegedCreators() && slices.Contains(creators, *ev.StateKey()))
	})...)
	if newCanonical != nil {
		rest = append(rest, stateProto(req.UserID, spec.MRoomCanonicalAlias, "", newCanonical))
	}

	// 3. Power levels, raised for the upgrader if needed (as Synapse does);
	// 4. the rest; 5. the old room's power levels as they are to stay.
	initial, final, err := upgradedPowerLevels(old, ver, req.UserID, creators, rest)
	if err != nil {
		return "", err
	}
	if err := add(proto{sender: req.UserID, typ: spec.MRoomPowerLevels, stateKey: stateKeyPtr(""), content: initial}); err != nil {
		return "", err
	}
	for _, p := range rest {
		if err := add(p); err != nil {
			return "", err
		}
	}
	if !bytes.Equal(initial, final) {
		if err := add(proto{sender: req.UserID, typ: spec.MRoomPowerLevels, stateKey: stateKeyPtr(""), content: final}); err != nil {
			return "", err
		}
	}

	events := make([]storage.NewEvent, len(built))
	for i, ev := range built {
		events[i] = newEvent(ev)
	}
	if _, err := s.db.PersistEvents(ctx, &storage.NewRoom{RoomID: nr.id, Version: req.NewVersion, Creator: req.UserID}, events); err != nil {
		return "", err
	}
	s.mu.Lock()
	if _, ok := s.rooms[nr.id]; !ok {
		s.rooms[nr.id] = nr
	}
	s.mu.Unlock()

	events = make([]storage.NewEvent, len(closing))
	for i, ev := range closing {
		events[i] = newEvent(ev)
	}
	if _, err := s.db.PersistEvents(ctx, nil, events); err != nil {
		old.loaded = false
		return "", err
	}
	old.latest, old.depth, old.state = shadow.latest, shadow.depth, shadow.state

	// Last: should this fail, the aliases still lead to the old room, whose
	// tombstone leads on; a retry (answered from recentUpgrade) moves them.
	if len(aliases) > 0 {
		if err := s.db.MoveAliases(ctx, old.id, nr.id); err != nil {
			return "", err
		}
	}
	s.carryOverUserState(ctx, req.UserID, old.id, nr.id) // the upgrader joined by creating it
	s.log.Debug("upgraded room", "room_id", old.id, "replacement_room", nr.id, "room_version", req.NewVersion)
	return nr.id, nil
}

// additionalCreators validates additional_creators of an upgrade to a
// version with privileged creators: a list of user IDs, returned without
// duplicates and without the upgrader (the creator anyway).
func additionalCreators(upgrader string, raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, mxerr.BadJSON("additional_creators must be a list of user IDs")
	}
	var out []string
	for _, u := range list {
		if !ids.ValidUserID(u) || len(u) > maxUserIDBytes {
			return nil, mxerr.BadJSON("additional_creators: %q is not a user ID", u)
		}
		if u != upgrader && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// tombstoneProto is the m.room.tombstone pointing to the replacement room.
func tombstoneProto(sender, replacement string) proto {
	return stateProto(sender, "m.room.tombstone", "", map[string]string{"body": tombstoneBody, "replacement_room": replacement})
}

// recentUpgrade returns the replacement room when the user upgraded the
// room to the same version (and the same additional creators) less than
// upgradeReplayWindow ago, so that a retried request does not replace the
// replacement; "" otherwise.
func (s *Server) recentUpgrade(ctx context.Context, old *room, userID, version string, extra []string) (string, error) {
	t, ok := old.state[gomatrixserverlib.StateKeyTuple{EventType: "m.room.tombstone"}]
	if !ok || string(t.SenderID()) != userID || time.Since(t.OriginServerTS().Time()) > upgradeReplayWindow {
		return "", nil
	}
	var tc struct {
		ReplacementRoom string `json:"replacement_room"`
	}
	if json.Unmarshal(t.Content(), &tc) != nil || tc.ReplacementRoom == "" {
		return "", nil
	}
	create, err := s.db.StateEventAt(ctx, tc.ReplacementRoom, spec.MRoomCreate, "", 0)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var cc struct {
		Content struct {
			RoomVersion        string   `json:"room_version"`
			AdditionalCreators []string `json:"additional_creators"`
			Predecessor        struct {
				RoomID string `json:"room_id"`
			} `json:"predecessor"`
		} `json:"content"`
	}
	if json.Unmarshal(create.JSON, &cc) != nil || cc.Content.RoomVersion != version || cc.Content.Predecessor.RoomID != old.id {
		return "", nil
	}
	a, b := slices.Clone(cc.Content.AdditionalCreators), slices.Clone(extra)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		return "", nil
	}
	return tc.ReplacementRoom, nil
}

// upgradedCreateContent is the replacement room's create content: the
// version, the predecessor (its event_id is added by the caller where it
// applies), the old room's type (the spec) and the creators.
func upgradedCreateContent(old *room, ver gomatrixserverlib.IRoomVersion, upgrader string, extra []string) map[string]any {
	c := map[string]any{
		"room_version": string(ver.Version()),
		"predecessor":  map[string]string{"room_id": old.id},
		"m.federate":   false, // aula never federates
	}
	if t := roomType(old); t != "" {
		c["type"] = t
	}
	if ver.CreatorInCreateEvent() {
		c["creator"] = upgrader
	}
	if len(extra) > 0 {
		c["additional_creators"] = extra
	}
	return c
}

// roomType is the type in a room's create event ("" for none).
func roomType(r *room) string {
	create, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCreate}]
	if !ok {
		return ""
	}
	var c struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(create.Content(), &c)
	return c.Type
}

// copiedStateOfType returns copies, sent by sender, of the room's current
// state events of one type that keep passes, ordered by state key.
func copiedStateOfType(r *room, sender, typ string, keep func(gomatrixserverlib.PDU) bool) []proto {
	var keys []string
	for k, ev := range r.state {
		if k.EventType == typ && keep(ev) {
			keys = append(keys, k.StateKey)
		}
	}
	slices.Sort(keys)
	out := make([]proto, len(keys))
	for i, k := range keys {
		ev := r.state[gomatrixserverlib.StateKeyTuple{EventType: typ, StateKey: k}]
		out[i] = proto{sender: sender, typ: typ, stateKey: stateKeyPtr(k), content: ev.Content()}
	}
	return out
}

// hasVia reports whether a space child event is a link: the spec ignores
// children without a non-empty via (that is how a child is removed).
func hasVia(ev gomatrixserverlib.PDU) bool {
	var c struct {
		Via []string `json:"via"`
	}
	return json.Unmarshal(ev.Content(), &c) == nil && len(c.Via) > 0
}

// splitCanonicalAlias divides the old room's m.room.canonical_alias between
// the rooms when its aliases move: the moving aliases (the old room's
// aliases in the directory) named as alias or alt_aliases go to the new
// room, the others stay. oldContent is nil when the old room's event needs
// no change, newContent nil when the new room gets none (as Synapse does).
func splitCanonicalAlias(old *room, moving []string) (oldContent map[string]json.RawMessage, newContent map[string]any) {
	ev, ok := old.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCanonicalAlias}]
	if !ok || len(moving) == 0 {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(ev.Content(), &raw) != nil || raw == nil {
		return nil, nil
	}
	var c struct {
		Alias      string   `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	_ = json.Unmarshal(ev.Content(), &c) // a field of the wrong type moves nothing
	newContent = map[string]any{}
	changed := false
	if c.Alias != "" && slices.Contains(moving, c.Alias) {
		newContent["alias"] = c.Alias
		delete(raw, "alias")
		changed = true
	}
	var moved, kept []string
	for _, a := range c.AltAliases {
		if slices.Contains(moving, a) {
			moved = append(moved, a)
		} else {
			kept = append(kept, a)
		}
	}
	if len(moved) > 0 {
		newContent["alt_aliases"] = moved
		if len(kept) > 0 {
			raw["alt_aliases"], _ = json.Marshal(kept)
		} else {
			delete(raw, "alt_aliases")
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return raw, newContent
}

// closingEvents builds the old room's last events on r (a copy of the old
// room): the canonical alias without the aliases that move, power levels
// that leave speaking and inviting to moderators, and the tombstone, which
// comes last. The first two are left out, as in Synapse, when the user may
// not send them; the tombstone they may (checked before).
func (s *Server) closingEvents(r *room, userID, replacement string, canonical map[string]json.RawMessage, now time.Time) ([]gomatrixserverlib.PDU, error) {
	var out []gomatrixserverlib.PDU
	optional := func(p proto) error {
		ev, err := s.build(r, p, now)
		if e, ok := mxerr.As(err); ok && e.Code == "M_FORBIDDEN" {
			s.log.Warn("room upgrade: not changing the old room", "room_id", r.id, "event_type", p.typ, "reason", e.Msg)
			return nil
		}
		if err != nil {
			return err
		}
		r.apply(ev)
		out = append(out, ev)
		return nil
	}
	if canonical != nil {
		if err := optional(stateProto(userID, spec.MRoomCanonicalAlias, "", canonical)); err != nil {
			return nil, err
		}
	}
	if pl, err := restrictedPowerLevels(r); err != nil {
		return nil, err
	} else if pl != nil {
		if err := optional(stateProto(userID, spec.MRoomPowerLevels, "", pl)); err != nil {
			return nil, err
		}
	}
	ev, err := s.build(r, tombstoneProto(userID, replacement), now)
	if err != nil {
		return nil, err
	}
	r.apply(ev)
	return append(out, ev), nil
}

// restrictedPowerLevels returns the room's power levels content with
// events_default and invite raised to at least the spec's example level
// (the greater of 50 and users_default + 1), or nil when they are there
// already or the room has no power levels.
func restrictedPowerLevels(r *room) (map[string]json.RawMessage, error) {
	ev, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomPowerLevels}]
	if !ok {
		return nil, nil
	}
	pl, err := ev.PowerLevels()
	if err != nil {
		return nil, fmt.Errorf("roomserver: power levels of %s: %w", r.id, err)
	}
	var content map[string]json.RawMessage
	if err := json.Unmarshal(ev.Content(), &content); err != nil {
		return nil, fmt.Errorf("roomserver: power levels of %s: %w", r.id, err)
	}
	level := max(pl.UsersDefault+1, 50)
	changed := false
	for key, cur := range map[string]int64{"events_default": pl.EventsDefault, "invite": pl.Invite} {
		if cur < level {
			content[key], _ = json.Marshal(level)
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	return content, nil
}

// upgradedPowerLevels returns the replacement room's power levels: final,
// the old room's content with the new room's creators left out of users
// (room version 12 forbids listing them) or, going from a version with
// privileged creators to one without, the old creators given the highest
// level in use (at least 100) so they keep the room; and initial, final
// with the upgrader raised to what sending rest (and then final) needs, as
// Synapse does, or final itself when no raise is needed.
func upgradedPowerLevels(old *room, ver gomatrixserverlib.IRoomVersion, upgrader string, creators []string, rest []proto) (initial, final []byte, err error) {
	var content map[string]json.RawMessage
	if ev, ok := old.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomPowerLevels}]; ok {
		err = json.Unmarshal(ev.Content(), &content)
	} else {
		var raw []byte
		if raw, err = json.Marshal(defaultPowerLevels(ver, upgrader, PresetPrivateChat, nil)); err == nil {
			err = json.Unmarshal(raw, &content)
		}
	}
	if err != nil || content == nil {
		return nil, nil, fmt.Errorf("roomserver: power levels of %s: %v", old.id, err)
	}
	users := map[string]int64{}
	if raw, ok := content["users"]; ok {
		if err := json.Unmarshal(raw, &users); err != nil {
			return nil, nil, fmt.Errorf("roomserver: power levels of %s: users: %w", old.id, err)
		}
		if users == nil {
			users = map[string]int64{}
		}
	}
	if old.version.PrivilegedCreators() && !ver.PrivilegedCreators() {
		oldPL := old.powerLevels()
		level := max(100, highestLevel(oldPL))
		for _, c := range roomCreators(old) {
			if _, listed := users[c]; !listed {
				users[c] = level
			}
		}
	}
	if ver.PrivilegedCreators() {
		for _, c := range creators {
			delete(users, c)
		}
	}
	withUsers := func(users map[string]int64) ([]byte, error) {
		c := maps.Clone(content)
		if _, had := content["users"]; had || len(users) > 0 {
			c["users"], _ = json.Marshal(users)
		}
		return json.Marshal(c)
	}
	if final, err = withUsers(users); err != nil {
		return nil, nil, err
	}
	if ver.PrivilegedCreators() { // the upgrader's power is infinite
		return final, final, nil
	}

	var pl gomatrixserverlib.PowerLevelContent
	pl.Defaults()
	if err := json.Unmarshal(final, &pl); err != nil {
		return nil, nil, fmt.Errorf("roomserver: power levels of %s: %w", old.id, err)
	}
	need := int64(0)
	for _, p := range rest {
		if p.typ == spec.MRoomMember { // a ban: the level to ban, above the target's
			need = max(need, pl.Ban, pl.UserLevel(spec.SenderID(*p.stateKey))+1)
		} else {
			need = max(need, pl.EventLevel(p.typ, true))
		}
	}
	if pl.UserLevel(spec.SenderID(upgrader)) >= need {
		return final, final, nil
	}
	need = max(need, pl.EventLevel(spec.MRoomPowerLevels, true)) // to put final in place
	raised := maps.Clone(users)
	raised[upgrader] = need
	if initial, err = withUsers(raised); err != nil {
		return nil, nil, err
	}
	return initial, final, nil
}

// highestLevel is the highest level a power levels content names.
func highestLevel(pl gomatrixserverlib.PowerLevelContent) int64 {
	h := max(pl.Ban, pl.Invite, pl.Kick, pl.Redact, pl.UsersDefault, pl.EventsDefault, pl.StateDefault)
	for _, m := range []map[string]int64{pl.Users, pl.Events} {
		for _, v := range m {
			h = max(h, v)
		}
	}
	return h
}

// roomCreators lists the room's creators: the create event's sender and,
// from room version 12, its additional_creators.
func roomCreators(r *room) []string {
	create, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomCreate}]
	if !ok {
		return nil
	}
	out := []string{string(create.SenderID())}
	if r.version.PrivilegedCreators() {
		var c struct {
			AdditionalCreators []string `json:"additional_creators"`
		}
		_ = json.Unmarshal(create.Content(), &c)
		out = append(out, c.AdditionalCreators...)
	}
	return out
}

// stateKeyPtr returns a pointer to a state key.
func stateKeyPtr(s string) *string { return &s }
