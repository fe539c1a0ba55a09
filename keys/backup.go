package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// BackupAlgorithm is the key backup algorithm the spec defines, the only
// one a backup may use.
const BackupAlgorithm = "m.megolm_backup.v1.curve25519-aes-sha2"

// maxBackupIDLen bounds the room and session IDs of backed-up keys (a room
// ID is at most 255 bytes; a megolm session ID is 43).
const maxBackupIDLen = 255

// Backup implements server-side key backups (/room_keys/*): versions of a
// user's backup, each holding encrypted megolm session keys that only the
// user's clients can decrypt. Keys go to the current version only, the
// highest-numbered one not deleted.
type Backup struct {
	db *storage.DB
}

// NewBackup returns the key backup service.
func NewBackup(db *storage.DB) *Backup { return &Backup{db: db} }

// BackupVersionBody is the body of POST /room_keys/version and of
// PUT /room_keys/version/{version}: fields absent from the JSON are nil.
type BackupVersionBody struct {
	Algorithm *string         `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   *string         `json:"version"` // PUT only: must name the version of the path
}

// BackupInfo describes a backup version, as GET /room_keys/version answers.
type BackupInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int64           `json:"count"`
	Etag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// BackupKeysState is a version's etag and key count after a change of its
// keys, as PUT and DELETE /room_keys/keys answer.
type BackupKeysState struct {
	Etag  string `json:"etag"`
	Count int64  `json:"count"`
}

// BackupKeyData is one backed-up session key (the spec's KeyBackupData).
type BackupKeyData struct {
	FirstMessageIndex int64           `json:"first_message_index"`
	ForwardedCount    int64           `json:"forwarded_count"`
	IsVerified        bool            `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// BackupRoomKeys is the backed-up keys of one room, by session ID.
type BackupRoomKeys struct {
	Sessions map[string]BackupKeyData `json:"sessions"`
}

// BackupAllKeys is all the keys of a backup version, by room ID.
type BackupAllKeys struct {
	Rooms map[string]BackupRoomKeys `json:"rooms"`
}

// Errors a client sees.
var (
	errNoBackup             = mxerr.NotFound("No current backup version")
	errUnknownBackupVersion = mxerr.NotFound("Unknown backup version")
)

// wrongBackupVersion is 403 M_WRONG_ROOM_KEYS_VERSION naming the current version.
func wrongBackupVersion(current int64) *mxerr.Error {
	return mxerr.New(http.StatusForbidden, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version").
		With("current_version", strconv.FormatInt(current, 10))
}

// parseBackupVersion reads a backup version as this server writes them: a
// positive decimal number without sign or leading zeros. Anything else
// names no version.
func parseBackupVersion(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// checkBackupVersionBody checks the algorithm and auth_data of a version body
// and returns auth_data compacted.
func checkBackupVersionBody(b BackupVersionBody) ([]byte, error) {
	if b.Algorithm == nil {
		return nil, mxerr.MissingParam("algorithm is required")
	}
	if len(b.AuthData) == 0 {
		return nil, mxerr.MissingParam("auth_data is required")
	}
	// Any algorithm is stored, as Synapse does: the server never reads the
	// backup, and clients (and conformance suites) use other names than
	// BackupAlgorithm.
	if *b.Algorithm == "" {
		return nil, mxerr.InvalidParam("algorithm must not be empty")
	}
	return backupJSONObject(b.AuthData, "auth_data")
}

// backupJSONObject returns raw compacted if it is a JSON object, and 400
// M_BAD_JSON naming the field otherwise.
func backupJSONObject(raw json.RawMessage, field string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, mxerr.BadJSON("%s must be a JSON object", field)
	}
	return buf.Bytes(), nil
}

// CreateVersion answers POST /room_keys/version: it creates a backup
// version, which becomes the user's current one, and returns its number.
func (b *Backup) CreateVersion(ctx context.Context, userID string, body BackupVersionBody) (string, error) {
	authData, err := checkBackupVersionBody(body)
	if err != nil {
		return "", err
	}
	v, err := b.db.CreateBackupVersion(ctx, userID, *body.Algorithm, authData)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(v, 10), nil
}

// Version answers GET /room_keys/version[/{version}]: the named version,
// or the current one when version is empty; 404 M_NOT_FOUND when there is
// none.
func (b *Backup) Version(ctx context.Context, userID, version string) (BackupInfo, error) {
	var v storage.BackupVersion
	var err error
	if version == "" {
		v, err = b.db.CurrentBackupVersion(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			return BackupInfo{}, errNoBackup
		}
	} else {
		n, ok := parseBackupVersion(version)
		if !ok {
			return BackupInfo{}, errUnknownBackupVersion
		}
		v, err = b.db.BackupVersion(ctx, userID, n)
		if errors.Is(err, storage.ErrNotFound) {
			return BackupInfo{}, errUnknownBackupVersion
		}
	}
	if err != nil {
		return BackupInfo{}, err
	}
	return BackupInfo{
		Algorithm: v.Algorithm,
		AuthData:  v.AuthData,
		Count:     v.Count,
		Etag:      strconv.FormatInt(v.Etag, 10),
		Version:   strconv.FormatInt(v.Version, 10),
	}, nil
}

// UpdateVersion answers PUT /room_keys/version/{version}: it replaces the
// auth_data of one of the user's versions (not deleted; 404 otherwise), as
// Synapse allows. The body's algorithm must be the version's (400
// M_INVALID_PARAM), and so must its version if given.
func (b *Backup) UpdateVersion(ctx context.Context, userID, version string, body BackupVersionBody) error {
	if body.Algorithm == nil {
		return mxerr.MissingParam("algorithm is required")
	}
	if len(body.AuthData) == 0 {
		return mxerr.MissingParam("auth_data is required")
	}
	authData, err := backupJSONObject(body.AuthData, "auth_data")
	if err != nil {
		return err
	}
	if body.Version != nil && *body.Version != version {
		return mxerr.InvalidParam("Version in body does not match")
	}
	n, ok := parseBackupVersion(version)
	if !ok {
		return errUnknownBackupVersion
	}
	err = b.db.UpdateBackupVersion(ctx, userID, n, func(v storage.BackupVersion) ([]byte, error) {
		if v.Algorithm != *body.Algorithm {
			return nil, mxerr.InvalidParam("Algorithm does not match")
		}
		return authData, nil
	})
	return backupError(err)
}

// DeleteVersion answers DELETE /room_keys/version/{version}: it deletes
// the version and its keys. Deleting a deleted version succeeds.
func (b *Backup) DeleteVersion(ctx context.Context, userID, version string) error {
	n, ok := parseBackupVersion(version)
	if !ok {
		return errUnknownBackupVersion
	}
	return backupError(b.db.DeleteBackupVersion(ctx, userID, n))
}

// backupError maps the storage errors of a write to a named version to
// what the client sees.
func backupError(err error) error {
	var stale *storage.StaleBackupError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errUnknownBackupVersion
	case errors.As(err, &stale):
		return wrongBackupVersion(stale.Current)
	}
	return err
}

// ShouldReplaceBackupKey is the spec's rule for a key uploaded for a
// session the backup has a key for: the uploaded one replaces the stored
// one if it is verified and the stored one is not; if both are verified or
// neither is, if it has a lower first_message_index; and if that is equal
// too, if it has a lower forwarded_count. An equal key changes nothing.
// (Synapse lets a lower index win over verification; the spec does not.)
func ShouldReplaceBackupKey(stored, uploaded storage.BackupSession) bool {
	if stored.IsVerified != uploaded.IsVerified {
		return uploaded.IsVerified
	}
	if stored.FirstMessageIndex != uploaded.FirstMessageIndex {
		return uploaded.FirstMessageIndex < stored.FirstMessageIndex
	}
	return uploaded.ForwardedCount < stored.ForwardedCount
}

// UploadKeys answers PUT /room_keys/keys[/{roomId}[/{sessionId}]]: it
// stores the keys of rooms (room ID → session ID → the KeyBackupData
// object as sent) in the current version, which version must name. Every
// key is checked before any is stored. Without any backup it is 404
// M_NOT_FOUND; without a version 400 M_MISSING_PARAM; with a version that
// is not the current one, 403 M_WRONG_ROOM_KEYS_VERSION with
// current_version.
func (b *Backup) UploadKeys(ctx context.Context, userID, version string, rooms map[string]map[string]json.RawMessage) (BackupKeysState, error) {
	if version == "" {
		return BackupKeysState{}, mxerr.MissingParam("version is required")
	}
	var sessions []storage.BackupSession
	for roomID, byID := range rooms {
		if err := checkBackupID("room ID", roomID); err != nil {
			return BackupKeysState{}, err
		}
		for sessionID, raw := range byID {
			if err := checkBackupID("session ID", sessionID); err != nil {
				return BackupKeysState{}, err
			}
			s, err := parseBackupKeyData(raw)
			if err != nil {
				return BackupKeysState{}, err
			}
			s.RoomID, s.SessionID = roomID, sessionID
			sessions = append(sessions, s)
		}
	}
	n, _ := parseBackupVersion(version) // 0, no version, when absent or malformed
	st, err := b.db.UploadBackupKeys(ctx, userID, n, sessions, ShouldReplaceBackupKey)
	var stale *storage.StaleBackupError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return BackupKeysState{}, errNoBackup
	case errors.As(err, &stale):
		return BackupKeysState{}, wrongBackupVersion(stale.Current)
	case err != nil:
		return BackupKeysState{}, err
	}
	return toBackupKeysState(st), nil
}

func toBackupKeysState(st storage.BackupKeysState) BackupKeysState {
	return BackupKeysState{Etag: strconv.FormatInt(st.Etag, 10), Count: st.Count}
}

// checkBackupID checks a room or session ID of a backed-up key.
func checkBackupID(what, id string) error {
	if id == "" || len(id) > maxBackupIDLen {
		return mxerr.InvalidParam("Invalid %s %q: must be 1 to %d bytes", what, id, maxBackupIDLen)
	}
	return nil
}

// parseBackupKeyData checks one KeyBackupData object: every field is required
// (400 M_MISSING_PARAM), of its type (400 M_BAD_JSON); the counts must not
// be negative (400 M_INVALID_PARAM).
func parseBackupKeyData(raw json.RawMessage) (storage.BackupSession, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return storage.BackupSession{}, mxerr.BadJSON("Key data must be a JSON object")
	}
	for _, name := range []string{"first_message_index", "forwarded_count", "is_verified", "session_data"} {
		if _, ok := f[name]; !ok {
			return storage.BackupSession{}, mxerr.MissingParam("%s is required", name)
		}
	}
	var s storage.BackupSession
	var err error
	if s.FirstMessageIndex, err = backupCount(f["first_message_index"], "first_message_index"); err != nil {
		return storage.BackupSession{}, err
	}
	if s.ForwardedCount, err = backupCount(f["forwarded_count"], "forwarded_count"); err != nil {
		return storage.BackupSession{}, err
	}
	switch string(f["is_verified"]) {
	case "true":
		s.IsVerified = true
	case "false":
	default:
		return storage.BackupSession{}, mxerr.BadJSON("is_verified must be a boolean")
	}
	if s.SessionData, err = backupJSONObject(f["session_data"], "session_data"); err != nil {
		return storage.BackupSession{}, err
	}
	return s, nil
}

// backupCount reads a JSON number that must be a whole number (10 and 10.0
// alike) of at least zero.
func backupCount(raw json.RawMessage, field string) (int64, error) {
	var num json.Number
	// json.Number takes a quoted number too; a string is the wrong type.
	if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &num) != nil {
		return 0, mxerr.BadJSON("%s must be an integer", field)
	}
	n, err := num.Int64()
	if err != nil {
		f, ferr := num.Float64()
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, mxerr.BadJSON("%s must be an integer", field)
		}
		n = int64(f)
	}
	if n < 0 {
		return 0, mxerr.InvalidParam("%s must not be negative", field)
	}
	return n, nil
}

// backupVersionParam resolves the version of a read or delete of keys: 400
// M_MISSING_PARAM without one, 404 M_NOT_FOUND when it names none.
func backupVersionParam(version string) (int64, error) {
	if version == "" {
		return 0, mxerr.MissingParam("version is required")
	}
	n, ok := parseBackupVersion(version)
	if !ok {
		return 0, errUnknownBackupVersion
	}
	return n, nil
}

// backupKeysOf reads keys of a version (see storage.DB.BackupKeys).
func (b *Backup) backupKeysOf(ctx context.Context, userID, version, roomID, sessionID string) ([]storage.BackupSession, error) {
	n, err := backupVersionParam(version)
	if err != nil {
		return nil, err
	}
	ks, err := b.db.BackupKeys(ctx, userID, n, roomID, sessionID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errUnknownBackupVersion
	}
	return ks, err
}

func backupKeyData(s storage.BackupSession) BackupKeyData {
	return BackupKeyData{FirstMessageIndex: s.FirstMessageIndex, ForwardedCount: s.ForwardedCount,
		IsVerified: s.IsVerified, SessionData: s.SessionData}
}

// AllKeys answers GET /room_keys/keys: every key of the version,
// {"rooms": {}} when it has none.
func (b *Backup) AllKeys(ctx context.Context, userID, version string) (BackupAllKeys, error) {
	ks, err := b.backupKeysOf(ctx, userID, version, "", "")
	if err != nil {
		return BackupAllKeys{}, err
	}
	out := BackupAllKeys{Rooms: map[string]BackupRoomKeys{}}
	for _, k := range ks {
		room, ok := out.Rooms[k.RoomID]
		if !ok {
			room = BackupRoomKeys{Sessions: map[string]BackupKeyData{}}
			out.Rooms[k.RoomID] = room
		}
		room.Sessions[k.SessionID] = backupKeyData(k)
	}
	return out, nil
}

// RoomKeys answers GET /room_keys/keys/{roomId}: the room's keys in the
// version, {"sessions": {}} when it has none.
func (b *Backup) RoomKeys(ctx context.Context, userID, version, roomID string) (BackupRoomKeys, error) {
	ks, err := b.backupKeysOf(ctx, userID, version, roomID, "")
	if err != nil {
		return BackupRoomKeys{}, err
	}
	out := BackupRoomKeys{Sessions: make(map[string]BackupKeyData, len(ks))}
	for _, k := range ks {
		out.Sessions[k.SessionID] = backupKeyData(k)
	}
	return out, nil
}

// SessionKey answers GET /room_keys/keys/{roomId}/{sessionId}: the
// session's key, 404 M_NOT_FOUND when the version has none.
func (b *Backup) SessionKey(ctx context.Context, userID, version, roomID, sessionID string) (BackupKeyData, error) {
	ks, err := b.backupKeysOf(ctx, userID, version, roomID, sessionID)
	if err != nil {
		return BackupKeyData{}, err
	}
	if len(ks) == 0 {
		return BackupKeyData{}, mxerr.NotFound("Key not found")
	}
	return backupKeyData(ks[0]), nil
}

// DeleteKeys answers DELETE /room_keys/keys[/{roomId}[/{sessionId}]]: it
// deletes keys of a version (all of them, a room's, or one session's) and
// returns the version's etag and count.
func (b *Backup) DeleteKeys(ctx context.Context, userID, version, roomID, sessionID string) (BackupKeysState, error) {
	n, err := backupVersionParam(version)
	if err != nil {
		return BackupKeysState{}, err
	}
	st, err := b.db.DeleteBackupKeys(ctx, userID, n, roomID, sessionID)
	if errors.Is(err, storage.ErrNotFound) {
		return BackupKeysState{}, errUnknownBackupVersion
	}
	if err != nil {
		return BackupKeysState{}, err
	}
	return toBackupKeysState(st), nil
}
