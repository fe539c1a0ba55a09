package roomserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"
	"unicode"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// Presets of POST /createRoom.
const (
	PresetPrivateChat        = "private_chat"
	PresetTrustedPrivateChat = "trusted_private_chat"
	PresetPublicChat         = "public_chat"
)

// StateEvent is one entry of createRoom's initial_state.
type StateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CreateRoomRequest is a validated POST /createRoom.
type CreateRoomRequest struct {
	Creator         string
	Visibility      string
	Preset          string
	RoomAliasName   string
	Name            *string
	Topic           *string
	Invite          []string
	RoomVersion     string
	CreationContent map[string]json.RawMessage
	InitialState    []StateEvent
	PowerLevels     map[string]json.RawMessage // power_level_content_override
	IsDirect        bool
}

// CreateRoom creates a room and its initial state in the order the spec
// lists, all in one transaction, and returns the room ID.
func (s *Server) CreateRoom(ctx context.Context, req CreateRoomRequest) (string, error) {
	version := req.RoomVersion
	if version == "" {
		version = s.cfg.Rooms.DefaultVersion
	}
	if !slices.Contains(config.SupportedRoomVersions, version) {
		return "", mxerr.New(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "Room version %q is not supported", version)
	}
	ver := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersion(version))
	if err := s.checkCreatePolicy(req); err != nil { // policy.go
		return "", err
	}
	preset := req.Preset
	if preset == "" {
		preset = PresetPrivateChat
		if req.Visibility == "public" {
			preset = PresetPublicChat
		}
	}
	var alias string
	if req.RoomAliasName != "" {
		alias = "#" + req.RoomAliasName + ":" + s.cfg.ServerName
		if err := checkAlias(req.RoomAliasName, alias); err != nil {
			return "", err
		}
		// Checked again when the alias is stored; this answers early,
		// before anything is built.
		if _, err := s.db.AliasRoom(ctx, alias); err == nil {
			return "", roomInUse(alias)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	invitees := make([]string, 0, len(req.Invite))
	for _, u := range req.Invite {
		if u == req.Creator || slices.Contains(invitees, u) {
			continue
		}
		if err := s.checkInvitee(ctx, u); err != nil {
			return "", err
		}
		invitees = append(invitees, u)
	}

	initial, initialOrder, err := normaliseInitialState(req.InitialState)
	if err != nil {
		return "", err
	}

	r := &room{version: ver, state: map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU{}, loaded: true}
	now := time.Now()
	var built []gomatrixserverlib.PDU
	add := func(p proto) error {
		if p.stateKey != nil {
			if err := s.checkStatePolicy(p.typ, *p.stateKey, p.content); err != nil { // policy.go
				return err
			}
		}
		ev, err := s.build(r, p, now)
		if e, ok := mxerr.As(err); ok && e.Code == "M_FORBIDDEN" {
			// The spec's answer when the request's own state does not pass
			// the auth rules (e.g. a power level override that leaves the
			// creator unable to send the preset's events).
			return mxerr.New(http.StatusBadRequest, "M_INVALID_ROOM_STATE", "Invalid initial state: %s", e.Msg)
		}
		if err != nil {
			return err
		}
		r.apply(ev)
		built = append(built, ev)
		return nil
	}

	// 1. m.room.create. In room version 12 the room ID is derived from it.
	create := map[string]any{}
	for k, v := range req.CreationContent {
		create[k] = v
	}
	create["room_version"] = version
	create["m.federate"] = false // aula never federates
	if !ver.PrivilegedCreators() {
		delete(create, "additional_creators")
	}
	// The server overwrites creator: room version 10 requires it; from 11 on
	// the sender is the creator and a "creator" key would only mislead.
	delete(create, "creator")
	if ver.CreatorInCreateEvent() {
		create["creator"] = req.Creator
	}
	creators := []string{req.Creator}
	if ver.PrivilegedCreators() {
		var extra []string
		if raw, ok := req.CreationContent["additional_creators"]; ok {
			if err := json.Unmarshal(raw, &extra); err != nil {
				return "", mxerr.BadJSON("additional_creators must be a list of user IDs")
			}
		}
		if preset == PresetTrustedPrivateChat {
			extra = append(extra, invitees...)
		}
		var deduped []string
		for _, u := range extra {
			if !ids.ValidUserID(u) {
				return "", mxerr.BadJSON("additional_creators: %q is not a user ID", u)
			}
			if u != req.Creator && !slices.Contains(deduped, u) {
				deduped = append(deduped, u)
			}
		}
		delete(create, "additional_creators")
		if len(deduped) > 0 {
			create["additional_creators"] = deduped
		}
		creators = append(creators, deduped...)
	}
	if ver.DomainlessRoomIDs() {
		r.id = "" // the builder leaves room_id out of the create event
	} else {
		r.id = "!" + rand.Text() + ":" + s.cfg.ServerName
	}
	if err := add(stateProto(req.Creator, spec.MRoomCreate, "", create)); err != nil {
		return "", err
	}
	if ver.DomainlessRoomIDs() {
		r.id = built[0].RoomID().String()
	}

	// 2. The creator joins.
	profile, err := s.db.User(ctx, req.Creator)
	if err != nil {
		return "", err
	}
	if err := add(stateProto(req.Creator, spec.MRoomMember, req.Creator, memberContent("join", profile, false, ""))); err != nil {
		return "", err
	}

	// 3. Power levels: the defaults, or an m.room.power_levels of
	// initial_state in their place (as Synapse does), with
	// power_level_content_override merged on top, key by key.
	pl := defaultPowerLevels(ver, req.Creator, preset, invitees)
	if st, ok := initial[gomatrixserverlib.StateKeyTuple{EventType: spec.MRoomPowerLevels}]; ok {
		pl = map[string]any{}
		if err := json.Unmarshal(st.Content, &pl); err != nil {
			return "", mxerr.BadJSON("initial_state: m.room.power_levels content must be an object")
		}
	}
	for k, v := range req.PowerLevels {
		pl[k] = v
	}
	if ver.PrivilegedCreators() {
		// Creators of version 12 rooms have infinite power and may not be
		// listed (auth rule 10.4); clients written for earlier versions
		// still list them, so drop them instead of failing.
		if err := dropCreators(pl, creators); err != nil {
			return "", err
		}
	}
	if err := add(stateProto(req.Creator, spec.MRoomPowerLevels, "", pl)); err != nil {
		return "", err
	}

	// 4. Canonical alias.
	if alias != "" {
		if err := add(stateProto(req.Creator, spec.MRoomCanonicalAlias, "", map[string]string{"alias": alias})); err != nil {
			return "", err
		}
	}

	// 5. Preset state, unless initial_state sets the same key. Guest
	// access is always forbidden: there are no guests (policy.go).
	joinRule, guestAccess := spec.Invite, "forbidden"
	if preset == PresetPublicChat {
		joinRule = spec.Public
	}
	presetState := []proto{
		stateProto(req.Creator, spec.MRoomJoinRules, "", map[string]string{"join_rule": joinRule}),
		stateProto(req.Creator, spec.MRoomHistoryVisibility, "", map[string]string{"history_visibility": "shared"}),
		stateProto(req.Creator, "m.room.guest_access", "", map[string]string{"guest_access": guestAccess}),
	}
	for _, p := range presetState {
		if _, ok := initial[gomatrixserverlib.StateKeyTuple{EventType: p.typ, StateKey: *p.stateKey}]; !ok {
			if err := add(p); err != nil {
				return "", err
			}
		}
	}

	// 6. initial_state in its order, minus power levels (step 3) and what
	// name and topic will set.
	for _, st := range initialOrder {
		switch {
		case st.Type == spec.MRoomPowerLevels && st.StateKey == "",
			st.Type == spec.MRoomName && st.StateKey == "" && req.Name != nil,
			st.Type == spec.MRoomTopic && st.StateKey == "" && req.Topic != nil:
			continue
		}
		key := st.StateKey
		if err := add(proto{sender: req.Creator, typ: st.Type, stateKey: &key, content: st.Content}); err != nil {
			return "", err
		}
	}

	// 7. Name and topic.
	if req.Name != nil {
		if err := add(stateProto(req.Creator, spec.MRoomName, "", map[string]string{"name": *req.Name})); err != nil {
			return "", err
		}
	}
	if req.Topic != nil {
		topic := map[string]any{
			"topic":   *req.Topic,
			"m.topic": map[string]any{"m.text": []map[string]string{{"mimetype": "text/plain", "body": *req.Topic}}},
		}
		if err := add(stateProto(req.Creator, spec.MRoomTopic, "", topic)); err != nil {
			return "", err
		}
	}

	// 8. Invites.
	for _, u := range invitees {
		invitee, err := s.db.User(ctx, u)
		if err != nil {
			return "", err
		}
		if err := add(stateProto(req.Creator, spec.MRoomMember, u, memberContent("invite", invitee, req.IsDirect, ""))); err != nil {
			return "", err
		}
	}

	events := make([]storage.NewEvent, len(built))
	for i, ev := range built {
		events[i] = newEvent(ev)
	}
	_, err = s.db.PersistEvents(ctx, &storage.NewRoom{RoomID: r.id, Version: version, Creator: req.Creator, Alias: alias}, events)
	if errors.Is(err, storage.ErrAliasTaken) {
		return "", roomInUse(alias)
	}
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if _, ok := s.rooms[r.id]; !ok { // a writer that got here first loaded it from storage
		s.rooms[r.id] = r
	}
	s.mu.Unlock()
	s.log.Debug("created room", "room_id", r.id, "room_version", version, "creators", len(creators))
	return r.id, nil
}

// defaultPowerLevels is the m.room.power_levels content of a new room,
// following Synapse's defaults so rooms behave as users know them.
func defaultPowerLevels(ver gomatrixserverlib.IRoomVersion, creator, preset string, invitees []string) map[string]any {
	users := map[string]int{}
	if !ver.PrivilegedCreators() {
		users[creator] = 100
		if preset == PresetTrustedPrivateChat {
			for _, u := range invitees {
				users[u] = 100
			}
		}
	}
	tombstone := 100
	if ver.PrivilegedCreators() {
		tombstone = 150 // must exceed state_default and the moderators' level
	}
	invite := 50
	if preset != PresetPublicChat {
		invite = 0
	}
	return map[string]any{
		"users":         users,
		"users_default": 0,
		"events": map[string]int{
			spec.MRoomName:              50,
			spec.MRoomPowerLevels:       100,
			spec.MRoomHistoryVisibility: 100,
			spec.MRoomCanonicalAlias:    50,
			"m.room.avatar":             50,
			"m.room.tombstone":          tombstone,
			"m.room.server_acl":         100,
			spec.MRoomEncryption:        100,
		},
		"events_default": 0,
		"state_default":  50,
		"ban":            50,
		"kick":           50,
		"redact":         50,
		"invite":         invite,
		"historical":     100,
	}
}

// normaliseInitialState indexes createRoom's initial_state by type and
// state key. A repeated key keeps its first position and its last content
// (as Synapse does). Events that only the server may create are refused.
func normaliseInitialState(list []StateEvent) (map[gomatrixserverlib.StateKeyTuple]StateEvent, []StateEvent, error) {
	byKey := make(map[gomatrixserverlib.StateKeyTuple]StateEvent, len(list))
	var order []gomatrixserverlib.StateKeyTuple
	for _, st := range list {
		switch st.Type {
		case spec.MRoomCreate, spec.MRoomMember:
			return nil, nil, mxerr.New(http.StatusBadRequest, "M_INVALID_ROOM_STATE", "initial_state cannot set %s", st.Type)
		}
		k := gomatrixserverlib.StateKeyTuple{EventType: st.Type, StateKey: st.StateKey}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = st
	}
	out := make([]StateEvent, len(order))
	for i, k := range order {
		out[i] = byKey[k]
	}
	return byKey, out, nil
}

// dropCreators removes the room's creators from the users map of power
// levels content.
func dropCreators(pl map[string]any, creators []string) error {
	raw, ok := pl["users"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	var users map[string]json.RawMessage
	if err := json.Unmarshal(b, &users); err != nil || users == nil {
		return nil // not an object: the auth rules reject it
	}
	for _, c := range creators {
		delete(users, c)
	}
	pl["users"] = users
	return nil
}

func roomInUse(alias string) error {
	return mxerr.New(http.StatusBadRequest, "M_ROOM_IN_USE", "Room alias %s is already in use", alias)
}

// stateProto is a state event with JSON-marshalled content.
func stateProto(sender, typ, stateKey string, content any) proto {
	raw, err := json.Marshal(content)
	if err != nil {
		panic(err) // content is always a map of plain values here
	}
	return proto{sender: sender, typ: typ, stateKey: &stateKey, content: raw}
}

// memberContent is the content of a member event for u, with their
// profile on joins, invites and knocks (as Synapse does).
func memberContent(membership string, u storage.User, isDirect bool, reason string) map[string]any {
	c := map[string]any{"membership": membership}
	if membership == spec.Join || membership == spec.Invite || membership == spec.Knock {
		if u.DisplayName != "" {
			c["displayname"] = u.DisplayName
		}
		if u.AvatarURL != "" {
			c["avatar_url"] = u.AvatarURL
		}
	}
	if isDirect {
		c["is_direct"] = true
	}
	if reason != "" {
		c["reason"] = reason
	}
	return c
}

// checkInvitee refuses users who cannot be invited: malformed IDs, users of
// other servers (aula does not federate) and unknown or deactivated users.
func (s *Server) checkInvitee(ctx context.Context, userID string) error {
	if !ids.ValidUserID(userID) {
		return mxerr.InvalidParam("%q is not a user ID", userID)
	}
	localpart, server, _ := cutUserID(userID)
	if server != s.cfg.ServerName {
		return errNoFederation(userID)
	}
	if localpart == s.cfg.ServerNotices.Localpart {
		// The system account only ever sits in the notices rooms it owns.
		return mxerr.Forbidden("%s sends server notices and cannot be invited to rooms", userID)
	}
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return mxerr.NotFound("User %s does not exist", userID)
	}
	return err
}

// maxAliasBytes is the spec's limit on a room alias.
const maxAliasBytes = 255

// checkAlias checks room_alias_name and the alias it makes, at most 255
// bytes in all.
func checkAlias(localpart, alias string) error {
	if len(alias) > maxAliasBytes {
		return mxerr.InvalidParam("Room alias %s is longer than %d bytes", alias, maxAliasBytes)
	}
	return checkAliasLocalpart(localpart)
}

// checkAliasLocalpart checks the localpart of an alias: no ":" (a client
// must send room_alias_name without the server name), no whitespace,
// control characters or NUL. Like Synapse it allows "#", which bridged IRC
// channel names carry.
func checkAliasLocalpart(name string) error {
	for _, r := range name {
		if r == ':' {
			return mxerr.InvalidParam("The alias localpart may not contain ':'; send 'name', not '#name:server'")
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return mxerr.InvalidParam("The alias localpart may not contain whitespace or control characters")
		}
	}
	return nil
}

// cutUserID splits "@local:server".
func cutUserID(userID string) (local, server string, ok bool) {
	if len(userID) < 2 || userID[0] != '@' {
		return "", "", false
	}
	for i := 1; i < len(userID); i++ {
		if userID[i] == ':' {
			return userID[1:i], userID[i+1:], true
		}
	}
	return "", "", false
}
