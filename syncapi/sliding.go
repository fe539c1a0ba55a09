package syncapi

import (
	"context"
	"sort"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
)

// Simplified sliding sync (MSC4186, the unstable wire format of
// org.matrix.simplified_msc3575 that Element X speaks). See
// docs/sliding-sync.md. The room list, the rooms and the extensions are
// computed from the same storage and notifier as /sync; what a connection
// has been sent lives in memory (sliding_conn.go).

// Bounds of a sliding sync request.
const (
	// maxSlidingTimeline caps a list's or subscription's timeline_limit.
	maxSlidingTimeline = 100
	// maxConnIDLen caps conn_id.
	maxConnIDLen = 100
	// maxSlidingLists caps the lists of one request.
	maxSlidingLists = 100
	// maxRequiredState caps required_state entries.
	maxRequiredState = 200
)

// SlidingRequest is one POST to the simplified sliding sync endpoint. The
// body fields decode from JSON; the rest the HTTP layer fills in.
type SlidingRequest struct {
	UserID   string        `json:"-"`
	DeviceID string        `json:"-"`
	Pos      string        `json:"-"` // "" starts the connection afresh
	Timeout  time.Duration `json:"-"`

	ConnID            string                       `json:"conn_id"`
	TxnID             string                       `json:"txn_id,omitempty"`
	Lists             map[string]SlidingList       `json:"lists"`
	RoomSubscriptions map[string]SlidingRoomConfig `json:"room_subscriptions"`
	Extensions        SlidingExtensions            `json:"extensions"`
}

// SlidingRoomConfig says what to send of a room: the newest timeline_limit
// events and the state events required_state names ([type, state_key]
// pairs; "*" matches any type or key, "$ME" is the user and "$LAZY" the
// members the timeline needs).
type SlidingRoomConfig struct {
	TimelineLimit int        `json:"timeline_limit"`
	RequiredState [][]string `json:"required_state"`
}

// SlidingList is a list of the user's rooms, newest activity first; the
// rooms at the positions its ranges cover are sent.
type SlidingList struct {
	SlidingRoomConfig
	Ranges  [][]int         `json:"ranges"`
	Filters *SlidingFilters `json:"filters,omitempty"`
}

// SlidingFilters narrow a list. Unset fields do not filter.
type SlidingFilters struct {
	IsDM        *bool `json:"is_dm,omitempty"`
	IsEncrypted *bool `json:"is_encrypted,omitempty"`
	IsInvite    *bool `json:"is_invite,omitempty"`
	// RoomTypes keeps rooms of the types named (null: rooms without a
	// type); NotRoomTypes drops them and wins over RoomTypes.
	RoomTypes    []*string `json:"room_types,omitempty"`
	NotRoomTypes []*string `json:"not_room_types,omitempty"`
	// Spaces keeps rooms that are children (m.space.child) of the spaces.
	Spaces []string `json:"spaces,omitempty"`
}

// SlidingExtensions are the extensions a request enables.
type SlidingExtensions struct {
	ToDevice    *ToDeviceExtension `json:"to_device,omitempty"`
	E2EE        *ExtensionToggle   `json:"e2ee,omitempty"`
	AccountData *RoomsExtension    `json:"account_data,omitempty"`
	Receipts    *RoomsExtension    `json:"receipts,omitempty"`
	Typing      *RoomsExtension    `json:"typing,omitempty"`
}

// ExtensionToggle is an extension that is only switched on.
type ExtensionToggle struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// on reports whether the extension is enabled.
func (t *ExtensionToggle) on() bool { return t != nil && t.Enabled != nil && *t.Enabled }

// ToDeviceExtension asks for the device's to-device messages after Since
// (the next_batch of the last response that carried some).
type ToDeviceExtension struct {
	ExtensionToggle
	Since string `json:"since,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// RoomsExtension is an extension about rooms: those of the lists named
// (default "*": every list) and of the room subscriptions named (default
// "*": all of them).
type RoomsExtension struct {
	ExtensionToggle
	Lists []string `json:"lists,omitempty"`
	Rooms []string `json:"rooms,omitempty"`
}

// SlidingResponse is the answer to a sliding sync request.
type SlidingResponse struct {
	Pos        string                  `json:"pos"`
	TxnID      string                  `json:"txn_id,omitempty"`
	Lists      map[string]SlidingCount `json:"lists"`
	Rooms      map[string]*SlidingRoom `json:"rooms"`
	Extensions map[string]any          `json:"extensions"`

	extData bool // the extensions carry something to send at once
}

// SlidingCount is a list in a response: how many rooms it has in all.
type SlidingCount struct {
	Count int `json:"count"`
}

// SlidingRoom is one room of a response. Fields that did not change since
// the connection last sent the room are left out.
type SlidingRoom struct {
	Name              string        `json:"name,omitempty"`
	Avatar            *string       `json:"avatar,omitempty"`
	Heroes            []SlidingHero `json:"heroes,omitempty"`
	Initial           bool          `json:"initial,omitempty"`
	IsDM              bool          `json:"is_dm,omitempty"`
	InviteState       []any         `json:"invite_state,omitempty"`
	RequiredState     []any         `json:"required_state,omitempty"`
	Timeline          []any         `json:"timeline,omitempty"`
	PrevBatch         string        `json:"prev_batch,omitempty"`
	Limited           *bool         `json:"limited,omitempty"`
	NumLive           *int          `json:"num_live,omitempty"`
	JoinedCount       *int          `json:"joined_count,omitempty"`
	InvitedCount      *int          `json:"invited_count,omitempty"`
	NotificationCount int           `json:"notification_count"`
	HighlightCount    int           `json:"highlight_count"`
	BumpStamp         *int64        `json:"bump_stamp,omitempty"`
}

// SlidingHero is a member a room without a name is named after.
type SlidingHero struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// errUnknownPos makes the client start the connection afresh.
func errUnknownPos() error {
	return mxerr.New(400, "M_UNKNOWN_POS", "Unknown or expired position")
}

// validate checks a request's shape and clamps its limits.
func (req *SlidingRequest) validate() error {
	if len(req.ConnID) > maxConnIDLen {
		return mxerr.InvalidParam("conn_id may be at most %d characters", maxConnIDLen)
	}
	if len(req.Lists) > maxSlidingLists {
		return mxerr.InvalidParam("At most %d lists", maxSlidingLists)
	}
	for name, l := range req.Lists {
		for _, r := range l.Ranges {
			if len(r) != 2 || r[0] < 0 || r[1] < r[0] {
				return mxerr.InvalidParam("lists.%s.ranges: each range must be [start, end] with 0 <= start <= end", name)
			}
		}
		if err := l.SlidingRoomConfig.check("lists." + name); err != nil {
			return err
		}
		req.Lists[name] = l
	}
	for id, c := range req.RoomSubscriptions {
		if err := c.check("room_subscriptions." + id); err != nil {
			return err
		}
	}
	return nil
}

func (c *SlidingRoomConfig) check(where string) error {
	if c.TimelineLimit < 0 {
		return mxerr.InvalidParam("%s.timeline_limit must not be negative", where)
	}
	c.TimelineLimit = min(c.TimelineLimit, maxSlidingTimeline)
	if len(c.RequiredState) > maxRequiredState {
		return mxerr.InvalidParam("%s.required_state: at most %d entries", where, maxRequiredState)
	}
	for _, p := range c.RequiredState {
		if len(p) != 2 {
			return mxerr.InvalidParam("%s.required_state: each entry must be [type, state_key]", where)
		}
	}
	return nil
}

// SlidingSync answers a sliding sync request: at once when the connection
// is new or something changed for it, otherwise when the first change
// that concerns the user happens, or with nothing new after the timeout.
func (sl *Sliding) SlidingSync(ctx context.Context, req SlidingRequest) (*SlidingResponse, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	s := sl.s
	conn, prev, err := sl.conns.lookup(req.UserID, req.DeviceID, req.ConnID, req.Pos)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(min(req.Timeout, MaxTimeout))
	for {
		ms, err := s.memberships(ctx, req.UserID)
		if err != nil {
			return nil, err
		}
		upto := s.notifier.Position()
		resp, next, err := sl.build(ctx, req, prev, upto, ms)
		if err != nil {
			return nil, err
		}
		if prev == nil || !resp.empty(prev) || !time.Now().Before(deadline) {
			resp.Pos = sl.conns.store(conn, prev, next)
			resp.TxnID = req.TxnID
			return resp, nil
		}
		// Nothing new: park until something the user sees changes.
		wr := watchRequest{userID: req.UserID, deviceID: req.DeviceID, since: next.tok}
		for id, m := range ms {
			if m.Membership == "join" {
				wr.rooms = append(wr.rooms, id)
			}
		}
		sort.Strings(wr.rooms)
		_, w := s.notifier.changes(wr, true, false)
		if w == nil {
			continue // something changed after upto already: look again
		}
		if err := s.notifier.wait(ctx, wr, w, deadline); err != nil {
			return nil, err
		}
	}
}

// empty reports whether a response to an incremental request tells the
// client nothing new: no rooms, no extension data and the same counts.
func (r *SlidingResponse) empty(prev *connState) bool {
	if len(r.Rooms) > 0 || r.extData {
		return false
	}
	for name, c := range r.Lists {
		if old, ok := prev.lists[name]; !ok || old != c.Count {
			return false
		}
	}
	return true
}

// on reports whether the extension is enabled (nil: not requested).
func (x *ToDeviceExtension) on() bool { return x != nil && x.ExtensionToggle.on() }

// on reports whether the extension is enabled (nil: not requested).
func (x *RoomsExtension) on() bool { return x != nil && x.ExtensionToggle.on() }
