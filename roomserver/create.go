package roomserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
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
		if err := checkAliasLocalpart(req.RoomAliasName); err != nil {
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

	r := &room{version: ver, state: map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU{}, loaded: true}
	now := time.Now()
	var built []gomatrixserverlib.PDU
	add := func(p proto) error {
		ev, err := s.build(r, p, now)
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
	if version == "10" {
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

	// 3. Power levels.
	pl := defaultPowerLevels(ver, req.Creator, preset, invitees)
	for k, v := range req.PowerLevels {
		pl[k] = v
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

	// 5. Preset state, unless initial_state sets the same key.
	joinRule, guestAccess := spec.Invite, "can_join"
	if preset == PresetPublicChat {
		joinRule, guestAccess = spec.Public, "forbidden"
	}
	presetState := []proto{
		stateProto(req.Creator, spec.MRoomJoinRules, "", map[string]string{"join_rule": joinRule}),
		stateProto(req.Creator, spec.MRoomHistoryVisibility, "", map[string]string{"history_visibility": "shared"}),
		stateProto(req.Creator, "m.room.guest_access", "", map[string]string{"guest_access": guestAccess}),
	}
	for _, p := range presetState {
		if !inInitialState(req.InitialState, p.typ, *p.stateKey) {
			if err := add(p); err != nil {
				return "", err
			}
		}
	}

	// 6. initial_state, minus what name and topic will set.
	for _, st := range req.InitialState {
		if (st.Type == spec.MRoomName && req.Name != nil) || (st.Type == spec.MRoomTopic && req.Topic != nil) {
			continue
		}
		if st.Type == spec.MRoomCreate || st.Type == spec.MRoomMember || st.Type == spec.MRoomPowerLevels {
			return "", mxerr.BadJSON("initial_state cannot set %s", st.Type)
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
		return "", mxerr.New(http.StatusBadRequest, "M_ROOM_IN_USE", "Room alias %s is already in use", alias)
	}
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.rooms[r.id] = r
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

func inInitialState(list []StateEvent, typ, stateKey string) bool {
	for _, st := range list {
		if st.Type == typ && st.StateKey == stateKey {
			return true
		}
	}
	return false
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
// profile.
func memberContent(membership string, u storage.User, isDirect bool, reason string) map[string]any {
	c := map[string]any{"membership": membership}
	if membership == "join" || membership == "invite" {
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
	if _, server, _ := cutUserID(userID); server != s.cfg.ServerName {
		return mxerr.Forbidden("%s is on another server; this server does not federate", userID)
	}
	u, err := s.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Deactivated) {
		return mxerr.NotFound("User %s does not exist", userID)
	}
	return err
}

// checkAliasLocalpart checks room_alias_name: no ":" or whitespace, and
// a sensible length.
func checkAliasLocalpart(name string) error {
	if len(name) > 200 {
		return mxerr.InvalidParam("room_alias_name is too long")
	}
	for _, r := range name {
		if r == ':' || r == ' ' || r == '\t' || r == '\n' || r == 0 || r == '#' {
			return mxerr.InvalidParam("room_alias_name may not contain ':', '#' or whitespace")
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
