package push

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// GET /notifications is computed when asked, from the event stream: no row
// is stored per recipient per event. The scan reads the events of the
// user's rooms newest first, in pages of scanPage, and stops after
// scanBound events; next_token then says where to go on.
const (
	scanPage  = 200
	scanBound = 5000
)

// Notification is one entry of GET /notifications, without its event
// (the HTTP layer formats that for the reader).
type Notification struct {
	RoomID    string
	EventID   string
	ThreadID  string
	StreamPos int64
	Depth     int64
	// TS is the event's origin_server_ts.
	TS        int64
	Highlight bool
	// Actions are the matched rule's actions, a JSON array.
	Actions []byte
	// Read reports whether the user's receipts cover the event.
	Read bool
}

// scanRoom is what the scan knows about one of the user's rooms.
type scanRoom struct {
	mem     []storage.StateInterval // the user's memberships, oldest first
	names   []string                // display name per membership
	info    *roomInfo               // power levels and creator, current
	count   int                     // joined members now
	receipt *unread                 // the user's receipts, read when first needed
}

// Notifications returns a page of the user's notifications, newest first,
// and the token of the next page ("" when there are no more). from is a
// previous next_token (a stream position: the page starts before it);
// only "highlight" restricts the list to highlights.
//
// The events considered are those of the rooms the user has not forgotten
// that arrived while the user was joined (judged by the user's membership
// before each event), plus invites of the user; the user's own events
// never notify. Each is evaluated with the user's current push rules, the
// room's current member count and power levels, and the display name the
// user had then.
func (s *Service) Notifications(ctx context.Context, userID, from string, limit int, only string) ([]Notification, string, error) {
	limit = max(limit, 1)
	top, err := s.db.StreamPosition(ctx)
	if err != nil {
		return nil, "", err
	}
	before := top + 1 // nothing past the stable position: a later page must not miss it
	if from != "" {
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", mxerr.InvalidParam("Invalid 'from' token")
		}
		before = min(before, n)
	}
	rooms, scan, err := s.scanRooms(ctx, userID)
	if err != nil || len(scan) == 0 {
		return []Notification{}, "", err
	}
	ruleset, err := s.Rules(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	rules := CompileFor(userID, ruleset)
	onlyHighlight := only == "highlight"

	out := make([]Notification, 0, limit)
	for scanned := 0; scanned < scanBound; {
		want := min(scanPage, scanBound-scanned)
		page, err := s.db.NotificationScan(ctx, userID, scan, before, want)
		if err != nil {
			return nil, "", err
		}
		for _, ev := range page {
			scanned++
			before = ev.StreamPos
			r := rooms[ev.RoomID]
			name, ok := r.inScope(userID, ev.Event)
			if !ok || ev.RedactedBy != "" {
				continue
			}
			pe := PrepareEvent(ev.JSON)
			pe.ID, pe.RoomID, pe.Type, pe.Sender, pe.StateKey = ev.EventID, ev.RoomID, ev.Type, ev.Sender, ev.StateKey
			rc := r.info.contextN(ev.Sender, r.count)
			res := rules.Evaluate(pe, &rc, User{DisplayName: name})
			if !res.Notify || (onlyHighlight && !res.Highlight) {
				continue
			}
			if len(out) == limit { // one more exists: the page is full
				return out, strconv.FormatInt(out[limit-1].StreamPos, 10), nil
			}
			if r.receipt == nil {
				if r.receipt, err = s.receipts(ctx, userID, ev.RoomID); err != nil {
					return nil, "", err
				}
			}
			out = append(out, Notification{RoomID: ev.RoomID, EventID: ev.EventID, ThreadID: pe.Thread,
				StreamPos: ev.StreamPos, Depth: ev.Depth, TS: ev.TS, Highlight: res.Highlight,
				Actions: res.ActionsJSON(), Read: ev.Depth <= max(r.receipt.unthreaded, r.receipt.threads[pe.Thread])})
		}
		if len(page) < want {
			return out, "", nil // the start of every room
		}
	}
	return out, strconv.FormatInt(before, 10), nil // bound reached: more may exist
}

// scanRooms finds the rooms whose events can notify the user: those they
// have not forgotten and were joined to or invited to at some point.
// Rooms they are no longer joined to are read up to their membership
// change.
func (s *Service) scanRooms(ctx context.Context, userID string) (map[string]*scanRoom, []storage.ScanRoom, error) {
	mems, err := s.db.MembershipsOf(ctx, userID)
	if err != nil || len(mems) == 0 {
		return nil, nil, err
	}
	ids := make([]string, 0, len(mems))
	for _, m := range mems {
		ids = append(ids, m.RoomID)
	}
	intervals, err := s.db.MemberIntervals(ctx, userID, ids)
	if err != nil {
		return nil, nil, err
	}
	rooms := map[string]*scanRoom{}
	var scan []storage.ScanRoom
	ids = ids[:0]
	for _, m := range mems {
		ivs := intervals[m.RoomID]
		r := &scanRoom{mem: ivs, info: newRoomInfo()}
		relevant := false
		for _, iv := range ivs {
			var pdu struct {
				Content struct {
					DisplayName string `json:"displayname"`
				} `json:"content"`
			}
			_ = json.Unmarshal(iv.Content, &pdu)
			r.names = append(r.names, pdu.Content.DisplayName)
			relevant = relevant || iv.Membership == "join" || iv.Membership == "invite"
		}
		if !relevant {
			continue
		}
		upto := int64(0)
		if m.Membership != "join" {
			upto = m.StreamPos
		}
		rooms[m.RoomID] = r
		scan = append(scan, storage.ScanRoom{RoomID: m.RoomID, Upto: upto})
		ids = append(ids, m.RoomID)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	state, err := s.db.CurrentStateOfTypes(ctx, ids, []string{"m.room.create", "m.room.power_levels"})
	if err != nil {
		return nil, nil, err
	}
	for _, ev := range state {
		if r := rooms[ev.RoomID]; r != nil {
			r.info.apply(ev)
		}
	}
	counts, err := s.db.JoinedMemberCounts(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	for id, n := range counts {
		rooms[id].count = int(n)
	}
	return rooms, scan, nil
}

// inScope reports whether an event (not the user's own) was one the user
// would have been notified of: sent while they were joined, or their own
// invite. It also returns the user's display name in the room then.
func (r *scanRoom) inScope(userID string, ev storage.Event) (string, bool) {
	if r == nil {
		return "", false
	}
	before := ev.Depth - 1
	for i := len(r.mem) - 1; i >= 0; i-- {
		iv := r.mem[i]
		if iv.FromDepth > before {
			continue
		}
		if iv.Membership == "join" && (iv.ToDepth == 0 || iv.ToDepth > before) {
			return r.names[i], true
		}
		break
	}
	if ev.Type == "m.room.member" && ev.StateKey != nil && *ev.StateKey == userID && membershipOf(ev.JSON) == "invite" {
		return "", true
	}
	return "", false
}

// receipts reads the user's read receipts in a room as depths.
func (s *Service) receipts(ctx context.Context, userID, roomID string) (*unread, error) {
	receipts, err := s.db.OwnReceipts(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(receipts))
	for _, r := range receipts {
		ids = append(ids, r.EventID)
	}
	evs, err := s.db.EventsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	u := &unread{}
	for _, r := range receipts {
		if r.Type == storage.ReceiptRead || r.Type == storage.ReceiptReadPrivate {
			if ev, ok := evs[r.EventID]; ok {
				u.receipt(r.ThreadID, ev.Depth)
			}
		}
	}
	return u, nil
}

// ActionList decodes a notification's actions.
func (n Notification) ActionList() []json.RawMessage {
	var out []json.RawMessage
	if json.Unmarshal(n.Actions, &out) != nil || out == nil {
		return []json.RawMessage{}
	}
	return out
}
