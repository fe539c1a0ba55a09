package syncapi

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aula-chat/aula/internal/ids"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

// Values of Filter.EventFormat.
const (
	EventFormatClient     = "client"
	EventFormatFederation = "federation"
)

// MaxLimit is the largest limit a parsed filter holds: a larger limit in the
// JSON is read as MaxLimit. Servers clamp further with EffectiveLimit.
const MaxLimit = math.MaxInt32

// EventFilter selects events by type and sender (spec: EventFilter). It is
// used on its own for presence and global account data, and embedded in
// RoomEventFilter.
//
// For the inclusive lists (Types, Senders, and Rooms in the room filters) a
// nil slice means the key was absent, so everything matches, while a non-nil
// empty slice means nothing matches. The not_ lists exclude, and win over the
// inclusive lists. Type patterns may use "*" to match any run of characters;
// senders and rooms match exactly.
type EventFilter struct {
	Limit      *int     `json:"limit,omitzero"` // nil: server default; never negative
	NotSenders []string `json:"not_senders,omitzero"`
	NotTypes   []string `json:"not_types,omitzero"`
	Senders    []string `json:"senders,omitzero"`
	Types      []string `json:"types,omitzero"`
}

// RoomEventFilter is an EventFilter for room events (spec: RoomEventFilter).
type RoomEventFilter struct {
	EventFilter

	// UnreadThreadNotifications asks /sync for per-thread notification
	// counts. It is read from the timeline filter.
	UnreadThreadNotifications bool `json:"unread_thread_notifications,omitzero"`
	// LazyLoadMembers and IncludeRedundantMembers control lazy-loading of
	// membership events. /sync reads them from the state filter, as Synapse
	// does; /messages and /context from their own filter.
	LazyLoadMembers         bool `json:"lazy_load_members,omitzero"`
	IncludeRedundantMembers bool `json:"include_redundant_members,omitzero"`

	NotRooms []string `json:"not_rooms,omitzero"`
	Rooms    []string `json:"rooms,omitzero"`
	// ContainsURL, when set, keeps only events whose content has a url
	// (true) or only those without one (false).
	ContainsURL *bool `json:"contains_url,omitzero"`
}

// RoomFilter is the "room" part of a Filter. Rooms and NotRooms apply before
// the per-section filters.
type RoomFilter struct {
	NotRooms     []string        `json:"not_rooms,omitzero"`
	Rooms        []string        `json:"rooms,omitzero"`
	Ephemeral    RoomEventFilter `json:"ephemeral,omitzero"`
	IncludeLeave bool            `json:"include_leave,omitzero"`
	State        RoomEventFilter `json:"state,omitzero"`
	Timeline     RoomEventFilter `json:"timeline,omitzero"`
	AccountData  RoomEventFilter `json:"account_data,omitzero"`
}

// Filter is a sync filter definition (spec: Filter). The zero Filter is the
// default filter: everything, in client format.
type Filter struct {
	// EventFields lists dot-separated paths of the event fields to return;
	// nil or empty means all fields.
	EventFields []string `json:"event_fields,omitzero"`
	// EventFormat is EventFormatClient, EventFormatFederation, or "" for
	// client.
	EventFormat string      `json:"event_format,omitzero"`
	Presence    EventFilter `json:"presence,omitzero"`
	AccountData EventFilter `json:"account_data,omitzero"`
	Room        RoomFilter  `json:"room,omitzero"`
}

// ParseFilter decodes and validates a filter definition, as uploaded to
// POST /user/{userId}/filter or given inline to /sync. Errors for the client
// are *mxerr.Error: 400 M_NOT_JSON when raw is not JSON (or not UTF-8), and
// 400 M_BAD_JSON when it is not an object or a known field has the wrong type
// or value. Unknown keys are ignored at every level, and null reads as absent.
// It never panics.
func ParseFilter(raw []byte) (*Filter, error) {
	d := &decoder{}
	top := d.root(raw)
	f := &Filter{
		EventFields: d.list(top, "event_fields", nil, ""),
		Presence:    d.eventFilter(d.object(top, "presence")),
		AccountData: d.eventFilter(d.object(top, "account_data")),
	}
	if format, ok := d.str(top, "event_format"); ok {
		if format != EventFormatClient && format != EventFormatFederation {
			d.fail("%s must be %q or %q", top.path("event_format"), EventFormatClient, EventFormatFederation)
		}
		f.EventFormat = format
	}
	room := d.object(top, "room")
	f.Room = RoomFilter{
		NotRooms:     d.list(room, "not_rooms", ids.ValidRoomID, "room ID"),
		Rooms:        d.list(room, "rooms", ids.ValidRoomID, "room ID"),
		Ephemeral:    d.roomEventFilter(d.object(room, "ephemeral")),
		IncludeLeave: isTrue(d.boolean(room, "include_leave")),
		State:        d.roomEventFilter(d.object(room, "state")),
		Timeline:     d.roomEventFilter(d.object(room, "timeline")),
		AccountData:  d.roomEventFilter(d.object(room, "account_data")),
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// ParseRoomEventFilter decodes and validates a RoomEventFilter on its own, as
// the filter parameter of /messages and /context takes it. Errors are as for
// ParseFilter.
func ParseRoomEventFilter(raw []byte) (*RoomEventFilter, error) {
	d := &decoder{}
	f := d.roomEventFilter(d.root(raw))
	if d.err != nil {
		return nil, d.err
	}
	return &f, nil
}

// Allows reports whether an event of the given type from the given sender
// passes the type and sender lists. Pass sender "" for data without one,
// such as account data: it then passes only when Senders is nil. A nil
// filter allows everything.
func (f *EventFilter) Allows(eventType, sender string) bool {
	if f == nil {
		return true
	}
	for _, p := range f.NotTypes {
		if matchType(p, eventType) {
			return false
		}
	}
	if f.Types != nil && !slices.ContainsFunc(f.Types, func(p string) bool { return matchType(p, eventType) }) {
		return false
	}
	if slices.Contains(f.NotSenders, sender) {
		return false
	}
	return f.Senders == nil || slices.Contains(f.Senders, sender)
}

// BlocksAll reports whether no event can pass the type and sender lists, so
// that a caller may skip fetching. It does not look at Limit.
func (f *EventFilter) BlocksAll() bool {
	if f == nil {
		return false
	}
	return (f.Types != nil && len(f.Types) == 0) ||
		(f.Senders != nil && len(f.Senders) == 0) ||
		slices.ContainsFunc(f.NotTypes, func(p string) bool { return p != "" && strings.Trim(p, "*") == "" })
}

// EffectiveLimit returns the filter's limit, or def when it has none, capped
// at ceiling when ceiling > 0. A limit of 0 is kept: the client asked for no
// events.
func (f *EventFilter) EffectiveLimit(def, ceiling int) int {
	n := def
	if f != nil && f.Limit != nil {
		n = *f.Limit
	}
	if ceiling > 0 && n > ceiling {
		n = ceiling
	}
	return n
}

// AllowsRoom reports whether the room passes the filter's room lists.
func (f *RoomEventFilter) AllowsRoom(roomID string) bool {
	return f == nil || allowsRoom(f.Rooms, f.NotRooms, roomID)
}

// AllowsEvent reports whether a room event passes every part of the filter
// but the limit. hasURL tells whether the event content has a string "url".
func (f *RoomEventFilter) AllowsEvent(roomID, eventType, sender string, hasURL bool) bool {
	if f == nil {
		return true
	}
	return f.AllowsRoom(roomID) && f.Allows(eventType, sender) &&
		(f.ContainsURL == nil || *f.ContainsURL == hasURL)
}

// Matches reports whether a room event in the client format passes every
// part of the filter but the limit.
func (f *RoomEventFilter) Matches(ev roomserver.ClientEvent) bool {
	return f.AllowsEvent(ev.RoomID, ev.Type, ev.Sender, hasURL(ev.Content))
}

// MatchesAnyRoom is Matches without the room lists, for callers that
// apply those themselves.
func (f *RoomEventFilter) MatchesAnyRoom(ev roomserver.ClientEvent) bool {
	return f.Allows(ev.Type, ev.Sender) && (f.ContainsURL == nil || *f.ContainsURL == hasURL(ev.Content))
}

// hasURL reports whether event content has a "url" key (contains_url).
func hasURL(content json.RawMessage) bool {
	var c struct {
		URL *string `json:"url"`
	}
	return json.Unmarshal(content, &c) == nil && c.URL != nil
}

// AllowsRoom reports whether the room passes the top-level room lists, which
// apply before the ephemeral, state, timeline and account_data filters.
func (f *RoomFilter) AllowsRoom(roomID string) bool {
	return f == nil || allowsRoom(f.Rooms, f.NotRooms, roomID)
}

func allowsRoom(rooms, notRooms []string, roomID string) bool {
	if slices.Contains(notRooms, roomID) {
		return false
	}
	return rooms == nil || slices.Contains(rooms, roomID)
}

// matchType reports whether an event type matches a pattern in which each
// "*" stands for any run of characters, possibly empty.
func matchType(pattern, s string) bool {
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	// Each middle piece is matched at its leftmost place, which is always
	// safe when "*" is the only special character.
	for {
		piece, more, ok := strings.Cut(rest, "*")
		if !ok {
			return strings.HasSuffix(s, rest)
		}
		i := strings.Index(s, piece)
		if i < 0 {
			return false
		}
		s, rest = s[i+len(piece):], more
	}
}

// decoder reads a filter's JSON. The first error sticks: later calls return
// zero values, and the caller checks err at the end.
type decoder struct {
	err error
}

// object is a decoded JSON object and its dotted path, for error messages.
type object struct {
	at     string
	fields map[string]json.RawMessage
}

func (o object) path(key string) string {
	if o.at == "" {
		return key
	}
	return o.at + "." + key
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = mxerr.BadJSON(format, args...)
	}
}

// root decodes the whole body, which must be a JSON object.
func (d *decoder) root(raw []byte) object {
	if !utf8.Valid(raw) || !json.Valid(raw) {
		d.err = mxerr.NotJSON("Content not JSON.")
		return object{}
	}
	if kind(raw) != '{' {
		d.fail("Filter must be a JSON object")
		return object{}
	}
	return d.decodeObject(raw, "")
}

func (d *decoder) decodeObject(raw json.RawMessage, at string) object {
	o := object{at: at}
	if err := json.Unmarshal(raw, &o.fields); err != nil {
		d.err = mxerr.NotJSON("Content not JSON.")
		return object{at: at}
	}
	return o
}

// value returns the raw value of key, or nil when it is absent or null.
func (d *decoder) value(o object, key string) json.RawMessage {
	if d.err != nil {
		return nil
	}
	v := o.fields[key]
	if kind(v) == 'n' {
		return nil
	}
	return v
}

// object returns the object under key; absent reads as empty.
func (d *decoder) object(o object, key string) object {
	v := d.value(o, key)
	switch {
	case v == nil:
		return object{at: o.path(key)}
	case kind(v) != '{':
		d.fail("%s must be an object", o.path(key))
		return object{at: o.path(key)}
	}
	return d.decodeObject(v, o.path(key))
}

func (d *decoder) boolean(o object, key string) *bool {
	v := d.value(o, key)
	if v == nil {
		return nil
	}
	if k := kind(v); k != 't' && k != 'f' {
		d.fail("%s must be a boolean", o.path(key))
		return nil
	}
	b := kind(v) == 't'
	return &b
}

func (d *decoder) str(o object, key string) (string, bool) {
	v := d.value(o, key)
	if v == nil {
		return "", false
	}
	var s string
	if kind(v) != '"' || json.Unmarshal(v, &s) != nil {
		d.fail("%s must be a string", o.path(key))
		return "", false
	}
	return s, true
}

// list returns the list of strings under key: nil when absent, non-nil
// when present even if empty. A non-nil valid checks each entry, which is
// described by what in the error.
func (d *decoder) list(o object, key string, valid func(string) bool, what string) []string {
	v := d.value(o, key)
	if v == nil {
		return nil
	}
	var items []json.RawMessage
	if kind(v) != '[' || json.Unmarshal(v, &items) != nil {
		d.fail("%s must be a list", o.path(key))
		return nil
	}
	list := make([]string, 0, len(items))
	for _, item := range items {
		var s string
		if kind(item) != '"' || json.Unmarshal(item, &s) != nil {
			d.fail("%s must be a list of strings", o.path(key))
			return nil
		}
		if valid != nil && !valid(s) {
			d.fail("%s: %q is not a valid %s", o.path(key), s, what)
			return nil
		}
		list = append(list, s)
	}
	return list
}

// limit reads a non-negative integer. Integral numbers written with a
// fraction or exponent (10.0, 1e2) are accepted; values above MaxLimit read
// as MaxLimit.
func (d *decoder) limit(o object, key string) *int {
	v := d.value(o, key)
	if v == nil {
		return nil
	}
	n, ok := -1, false
	if k := kind(v); k == '-' || (k >= '0' && k <= '9') {
		n, ok = parseLimit(string(v))
	}
	if !ok {
		d.fail("%s must be a non-negative integer", o.path(key))
		return nil
	}
	return &n
}

func parseLimit(num string) (int, bool) {
	if i, err := strconv.ParseInt(num, 10, 64); err == nil {
		return int(min(i, MaxLimit)), i >= 0
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	if f < 0 || math.IsNaN(f) || math.Trunc(f) != f {
		return 0, false
	}
	return int(min(f, MaxLimit)), true
}

func (d *decoder) eventFilter(o object) EventFilter {
	return EventFilter{
		Limit:      d.limit(o, "limit"),
		NotSenders: d.list(o, "not_senders", ids.ValidUserID, "user ID"),
		NotTypes:   d.list(o, "not_types", nil, ""),
		Senders:    d.list(o, "senders", ids.ValidUserID, "user ID"),
		Types:      d.list(o, "types", nil, ""),
	}
}

func (d *decoder) roomEventFilter(o object) RoomEventFilter {
	f := RoomEventFilter{
		EventFilter: d.eventFilter(o),
		NotRooms:    d.list(o, "not_rooms", ids.ValidRoomID, "room ID"),
		Rooms:       d.list(o, "rooms", ids.ValidRoomID, "room ID"),
		ContainsURL: d.boolean(o, "contains_url"),
	}
	f.LazyLoadMembers = isTrue(d.boolean(o, "lazy_load_members"))
	f.IncludeRedundantMembers = isTrue(d.boolean(o, "include_redundant_members"))
	// Clients that find no v1.4 in /versions send the MSC3773 name.
	f.UnreadThreadNotifications = isTrue(d.boolean(o, "unread_thread_notifications")) ||
		isTrue(d.boolean(o, "org.matrix.msc3773.unread_thread_notifications"))
	return f
}

func isTrue(b *bool) bool { return b != nil && *b }

// kind returns the first byte of a JSON value, which tells its type:
// '{', '[', '"', 't', 'f', 'n', or the start of a number. It is 0 for none.
func kind(v []byte) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
