package roomserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// buildFast builds and signs the event of b the way b.Build does, byte for
// byte, for the common case of a message-like event: no state key, and a
// type whose content the redaction algorithm empties. b.Build decodes and
// re-encodes the event JSON five times over (content hash, redaction,
// signing, canonical form, event ID), which costs more CPU than storing
// the event. For these events the redacted form is known in advance, so
// the event is written once in canonical key order, and the one redacted
// form serves both the signature and the reference hash (event ID).
//
// ok is false when the event is outside that case; the caller then uses
// b.Build, which also reports any error (e.g. content that is not
// canonical JSON) in its own words. TestBuildFastMatchesBuild checks
// equality with b.Build over every supported room version.
func buildFast(b *gomatrixserverlib.EventBuilder, ver gomatrixserverlib.IRoomVersion, now time.Time,
	origin spec.ServerName, keyID gomatrixserverlib.KeyID, key ed25519.PrivateKey) (ev gomatrixserverlib.PDU, ok bool) {
	keepsOrigin, known := redactionKeepsOrigin[ver.Version()]
	prev, prevOK := b.PrevEvents.([]string)
	auth, authOK := b.AuthEvents.([]string)
	if !known || !prevOK || !authOK || b.StateKey != nil || b.Redacts != "" || b.PrevStateEvents != nil ||
		len(b.Unsigned) > 0 || len(b.Signature) > 0 || !emptiedByRedaction(b.Type) ||
		!plain(string(origin)) || !plain(string(keyID)) || !plain(b.SenderID) || !plain(b.RoomID) || !plain(b.Type) ||
		!allPlain(prev) || !allPlain(auth) || b.RoomID == "" {
		return nil, false
	}
	if c := bytes.TrimSpace(b.Content); len(c) == 0 || c[0] != '{' {
		return nil, false
	}
	content, err := gomatrixserverlib.EnforcedCanonicalJSON(b.Content, ver.Version())
	if err != nil {
		return nil, false
	}
	ts := strconv.FormatInt(int64(spec.AsTimestamp(now)), 10)

	// write emits the event in canonical key order; hashes and signatures
	// are left out when empty, and origin when omitOrigin is set.
	write := func(content []byte, hashes, signature string, omitOrigin bool) []byte {
		var w bytes.Buffer
		w.Grow(len(content) + 512)
		w.WriteString(`{"auth_events":`)
		writeStringList(&w, auth)
		w.WriteString(`,"content":`)
		w.Write(content)
		w.WriteString(`,"depth":`)
		w.WriteString(strconv.FormatInt(b.Depth, 10))
		if hashes != "" {
			w.WriteString(`,"hashes":{"sha256":"` + hashes + `"}`)
		}
		if !omitOrigin {
			w.WriteString(`,"origin":"` + string(origin) + `"`)
		}
		w.WriteString(`,"origin_server_ts":` + ts + `,"prev_events":`)
		writeStringList(&w, prev)
		w.WriteString(`,"room_id":"` + b.RoomID + `","sender":"` + b.SenderID + `"`)
		if signature != "" {
			w.WriteString(`,"signatures":{"` + string(origin) + `":{"` + string(keyID) + `":"` + signature + `"}}`)
		}
		w.WriteString(`,"type":"` + b.Type + `"}`)
		return w.Bytes()
	}
	contentHash := sha256.Sum256(write(content, "", "", false))
	hashes := base64.RawStdEncoding.EncodeToString(contentHash[:])
	redacted := write([]byte("{}"), hashes, "", !keepsOrigin)
	signature := base64.RawStdEncoding.EncodeToString(ed25519.Sign(key, redacted))
	reference := sha256.Sum256(redacted)
	eventID := "$" + base64.RawURLEncoding.EncodeToString(reference[:])
	ev, err = ver.NewEventFromTrustedJSONWithEventID(eventID, write(content, hashes, signature, false), false)
	if err != nil {
		return nil, false
	}
	if err := gomatrixserverlib.CheckFields(ev); err != nil {
		return nil, false
	}
	return ev, true
}

// redactionKeepsOrigin lists the room versions buildFast knows, and whether
// their redaction algorithm keeps the top-level "origin" key (v11 dropped
// it).
var redactionKeepsOrigin = map[gomatrixserverlib.RoomVersion]bool{
	gomatrixserverlib.RoomVersionV10: true,
	gomatrixserverlib.RoomVersionV11: false,
	gomatrixserverlib.RoomVersionV12: false,
}

// emptiedByRedaction reports whether redaction replaces the content of an
// event of this type by {}: true for every type outside the m.room.*
// namespace, and for the two m.room.* message types. The m.room.* types
// whose content redaction keeps (create, member, power levels, ...) are
// left to the general builder.
func emptiedByRedaction(typ string) bool {
	return !strings.HasPrefix(typ, "m.room.") || typ == "m.room.message" || typ == "m.room.encrypted"
}

// plain reports whether s can be written into JSON as it is: printable
// ASCII without quote or backslash, so its canonical encoding is itself.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func allPlain(ss []string) bool {
	for _, s := range ss {
		if !plain(s) {
			return false
		}
	}
	return true
}

// writeStringList writes a JSON array of plain strings.
func writeStringList(w *bytes.Buffer, ss []string) {
	w.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(`"` + s + `"`)
	}
	w.WriteByte(']')
}
