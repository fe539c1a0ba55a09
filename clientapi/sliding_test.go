package clientapi_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

const slidingPath = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

// ssEvent is an event of a sliding sync response.
type ssEvent struct {
	Type     string          `json:"type"`
	EventID  string          `json:"event_id"`
	Sender   string          `json:"sender"`
	StateKey *string         `json:"state_key"`
	RoomID   string          `json:"room_id"`
	Content  json.RawMessage `json:"content"`
}

type ssRoom struct {
	Name              string    `json:"name"`
	Initial           bool      `json:"initial"`
	IsDM              bool      `json:"is_dm"`
	InviteState       []ssEvent `json:"invite_state"`
	RequiredState     []ssEvent `json:"required_state"`
	Timeline          []ssEvent `json:"timeline"`
	PrevBatch         string    `json:"prev_batch"`
	Limited           *bool     `json:"limited"`
	NumLive           *int      `json:"num_live"`
	JoinedCount       *int      `json:"joined_count"`
	InvitedCount      *int      `json:"invited_count"`
	NotificationCount *int      `json:"notification_count"`
	HighlightCount    *int      `json:"highlight_count"`
	BumpStamp         *int64    `json:"bump_stamp"`
	Heroes            []struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"displayname"`
	} `json:"heroes"`
}

type ssResp struct {
	Pos   string `json:"pos"`
	Lists map[string]struct {
		Count int `json:"count"`
	} `json:"lists"`
	Rooms      map[string]ssRoom `json:"rooms"`
	Extensions struct {
		ToDevice *struct {
			NextBatch string           `json:"next_batch"`
			Events    []map[string]any `json:"events"`
		} `json:"to_device"`
		E2EE *struct {
			OTKCounts   map[string]int `json:"device_one_time_keys_count"`
			Fallback    []string       `json:"device_unused_fallback_key_types"`
			DeviceLists *struct {
				Changed []string `json:"changed"`
				Left    []string `json:"left"`
			} `json:"device_lists"`
		} `json:"e2ee"`
		AccountData *struct {
			Global []map[string]any            `json:"global"`
			Rooms  map[string][]map[string]any `json:"rooms"`
		} `json:"account_data"`
		Receipts *struct {
			Rooms map[string]map[string]any `json:"rooms"`
		} `json:"receipts"`
		Typing *struct {
			Rooms map[string]map[string]any `json:"rooms"`
		} `json:"typing"`
	} `json:"extensions"`
}

// ss posts a sliding sync request and decodes the 200 answer.
func ss(t *testing.T, s *apitest.Server, u apitest.User, pos string, timeout int, body any) ssResp {
	t.Helper()
	q := url.Values{}
	if pos != "" {
		q.Set("pos", pos)
	}
	if timeout > 0 {
		q.Set("timeout", itoa(timeout))
	}
	r := s.Do("POST", slidingPath+"?"+q.Encode(), u.Token, body).Expect(t, 200, "")
	var out ssResp
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("decode sliding sync: %v; body %s", err, r.Body)
	}
	if out.Pos == "" {
		t.Fatalf("sliding sync without pos: %s", r.Body)
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// listBody is Element X's room list request (shortened).
func listBody(end, timeline int) map[string]any {
	return map[string]any{
		"conn_id": "room-list",
		"lists": map[string]any{"all": map[string]any{
			"ranges":         [][]int{{0, end}},
			"timeline_limit": timeline,
			"required_state": [][]string{{"m.room.name", ""}, {"m.room.member", "$LAZY"}, {"m.room.member", "$ME"}, {"m.room.create", ""}},
		}},
	}
}

func stateTypes(evs []ssEvent) []string {
	var out []string
	for _, ev := range evs {
		k := ""
		if ev.StateKey != nil {
			k = *ev.StateKey
		}
		out = append(out, ev.Type+"|"+k)
	}
	slices.Sort(out)
	return out
}

func TestSlidingInitialListOrderAndIncremental(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		r1 := s.CreateRoom(alice, map[string]any{"name": "One"})
		r2 := s.CreateRoom(alice, map[string]any{"name": "Two"})
		r3 := s.CreateRoom(alice, map[string]any{"name": "Three"})
		s.Invite(alice, r1, bob)
		s.Join(bob, r1)
		m1 := s.SendText(bob, r1, "hello")
		s.SendText(alice, r3, "three")

		// A window of two out of three rooms: the newest activity first.
		resp := ss(t, s, alice, "", 0, listBody(1, 1))
		if resp.Lists["all"].Count != 3 {
			t.Fatalf("list count %d, want 3", resp.Lists["all"].Count)
		}
		if len(resp.Rooms) != 2 || resp.Rooms[r3].Name != "Three" || resp.Rooms[r1].Name != "One" {
			t.Fatalf("rooms %v, want r3 and r1 (r2 is oldest)", keysOf(resp.Rooms))
		}
		if _, ok := resp.Rooms[r2]; ok {
			t.Fatal("room outside the range was sent")
		}
		room := resp.Rooms[r1]
		if !room.Initial || len(room.Timeline) != 1 || room.Timeline[0].EventID != m1 || room.Timeline[0].RoomID != "" {
			t.Fatalf("r1 initial %v timeline %+v, want only %s without room_id", room.Initial, room.Timeline, m1)
		}
		if room.Limited == nil || !*room.Limited || room.PrevBatch == "" || room.NumLive == nil || *room.NumLive != 0 {
			t.Fatalf("r1 limited %v prev_batch %q num_live %v", room.Limited, room.PrevBatch, room.NumLive)
		}
		if room.JoinedCount == nil || *room.JoinedCount != 2 || room.InvitedCount == nil || *room.InvitedCount != 0 {
			t.Fatalf("r1 counts joined %v invited %v", room.JoinedCount, room.InvitedCount)
		}
		if room.BumpStamp == nil || resp.Rooms[r3].BumpStamp == nil || *resp.Rooms[r3].BumpStamp <= *room.BumpStamp {
			t.Fatalf("bump stamps r3 %v r1 %v: r3 is newer", resp.Rooms[r3].BumpStamp, room.BumpStamp)
		}
		// required_state: name, create, the user's member event and the
		// timeline sender's ($LAZY); no other member, no other state.
		want := []string{"m.room.create|", "m.room.member|" + alice.ID, "m.room.member|" + bob.ID, "m.room.name|"}
		if got := stateTypes(room.RequiredState); !slices.Equal(got, want) {
			t.Fatalf("r1 required_state %v, want %v", got, want)
		}
		if room.NotificationCount == nil || *room.NotificationCount != 1 || room.HighlightCount == nil || *room.HighlightCount != 0 {
			t.Fatalf("r1 notification_count %v highlight_count %v, want 1 and 0", room.NotificationCount, room.HighlightCount)
		}

		// Nothing new: a request with a timeout waits, then answers with
		// no rooms.
		start := time.Now()
		empty := ss(t, s, alice, resp.Pos, 300, listBody(1, 1))
		if time.Since(start) < 250*time.Millisecond || len(empty.Rooms) != 0 {
			t.Fatalf("empty long poll returned after %v with rooms %v", time.Since(start), keysOf(empty.Rooms))
		}

		// A parked request wakes on a message, with that room only and
		// only the new event; r2 moves to the top of the list.
		done := make(chan ssResp, 1)
		go func() { done <- ss(t, s, alice, empty.Pos, 20000, listBody(1, 5)) }()
		select {
		case <-done:
			t.Fatal("long poll returned before anything happened")
		case <-time.After(300 * time.Millisecond):
		}
		m2 := s.SendText(alice, r1, "news")
		var inc ssResp
		select {
		case inc = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("long poll not woken by a message")
		}
		if len(inc.Rooms) != 1 {
			t.Fatalf("incremental rooms %v, want only %s", keysOf(inc.Rooms), r1)
		}
		room = inc.Rooms[r1]
		if room.Initial || len(room.Timeline) != 1 || room.Timeline[0].EventID != m2 || room.NumLive == nil || *room.NumLive != 1 {
			t.Fatalf("incremental r1 initial %v timeline %+v num_live %v", room.Initial, room.Timeline, room.NumLive)
		}
		if room.Limited == nil || *room.Limited {
			t.Fatalf("incremental r1 limited %v, want false", room.Limited)
		}

		// The same position again (a lost answer) gives the same rooms.
		again := ss(t, s, alice, empty.Pos, 0, listBody(1, 5))
		if len(again.Rooms[r1].Timeline) != 1 || again.Rooms[r1].Timeline[0].EventID != m2 {
			t.Fatalf("repeated pos gave %+v", again.Rooms)
		}

		// Unknown, malformed and other users' positions: M_UNKNOWN_POS.
		for _, pos := range []string{"s1_0_p99", "garbage", inc.Pos + "0"} {
			s.Do("POST", slidingPath+"?pos="+url.QueryEscape(pos), alice.Token, listBody(1, 1)).Expect(t, 400, "M_UNKNOWN_POS")
		}
		s.Do("POST", slidingPath+"?pos="+url.QueryEscape(inc.Pos), bob.Token, listBody(1, 1)).Expect(t, 400, "M_UNKNOWN_POS")
		// Another conn_id does not share positions.
		other := listBody(1, 1)
		other["conn_id"] = "encryption"
		s.Do("POST", slidingPath+"?pos="+url.QueryEscape(inc.Pos), alice.Token, other).Expect(t, 400, "M_UNKNOWN_POS")
		// Bad shapes.
		s.Do("POST", slidingPath, alice.Token, map[string]any{"lists": map[string]any{"x": map[string]any{"ranges": [][]int{{3, 1}}}}}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", slidingPath, alice.Token, map[string]any{"lists": map[string]any{"x": map[string]any{"required_state": [][]string{{"a"}}}}}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", slidingPath, alice.Token, "[]").Expect(t, 400, "M_BAD_JSON")
		s.Do("POST", slidingPath, "", listBody(1, 1)).Expect(t, 401, "M_MISSING_TOKEN")
	})
}

func keysOf(m map[string]ssRoom) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSlidingInvitesAndSubscriptions(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		own := s.CreateRoom(bob, map[string]any{})
		s.SendText(bob, own, "mine")
		dm := s.CreateRoom(alice, map[string]any{"name": "Chat", "is_direct": true, "invite": []string{bob.ID}})

		body := listBody(10, 1)
		body["lists"].(map[string]any)["invites"] = map[string]any{
			"ranges": [][]int{{0, 10}}, "timeline_limit": 1, "filters": map[string]any{"is_invite": true},
		}
		resp := ss(t, s, bob, "", 0, body)
		if resp.Lists["all"].Count != 2 || resp.Lists["invites"].Count != 1 {
			t.Fatalf("list counts %+v, want all 2 and invites 1", resp.Lists)
		}
		inv := resp.Rooms[dm]
		if !inv.Initial || !inv.IsDM || len(inv.Timeline) != 0 || inv.BumpStamp == nil {
			t.Fatalf("invite room %+v", inv)
		}
		if got := stateTypes(inv.InviteState); !slices.Contains(got, "m.room.name|") || !slices.Contains(got, "m.room.member|"+bob.ID) {
			t.Fatalf("invite_state %v lacks the name or bob's invite", got)
		}
		if *inv.BumpStamp <= *resp.Rooms[own].BumpStamp {
			t.Fatal("the invite is newer than bob's own room but sorts lower")
		}

		// Joining: the room comes again, as initial, with its timeline.
		s.Join(bob, dm)
		after := ss(t, s, bob, resp.Pos, 5000, body)
		joined, ok := after.Rooms[dm]
		if !ok || !joined.Initial || len(joined.Timeline) != 1 || joined.Timeline[0].Type != "m.room.member" || len(joined.InviteState) != 0 {
			t.Fatalf("after join: %+v", after.Rooms)
		}
		if after.Lists["invites"].Count != 0 {
			t.Fatalf("invites count %d after joining", after.Lists["invites"].Count)
		}

		// Leaving: the room comes once more with the leave, then is gone.
		s.Leave(bob, dm)
		left := ss(t, s, bob, after.Pos, 5000, body)
		lr, ok := left.Rooms[dm]
		if !ok || lr.Initial || len(lr.Timeline) != 1 || lr.Timeline[0].Type != "m.room.member" || left.Lists["all"].Count != 2 {
			t.Fatalf("after leave: rooms %+v count %d", left.Rooms, left.Lists["all"].Count)
		}
		s.SendText(bob, own, "later")
		gone := ss(t, s, bob, left.Pos, 5000, body)
		if _, ok := gone.Rooms[dm]; ok || gone.Lists["all"].Count != 1 {
			t.Fatalf("left room still listed: %v count %d", keysOf(gone.Rooms), gone.Lists["all"].Count)
		}

		// A room subscription with a longer timeline and every state event,
		// outside any list; rooms bob is not in are ignored.
		nobody := s.CreateRoom(alice, map[string]any{})
		sub := ss(t, s, bob, "", 0, map[string]any{
			"conn_id": "sub",
			"room_subscriptions": map[string]any{
				own:    map[string]any{"timeline_limit": 20, "required_state": [][]string{{"*", "*"}}},
				nobody: map[string]any{"timeline_limit": 20},
			},
		})
		if len(sub.Rooms) != 1 {
			t.Fatalf("subscription rooms %v, want only %s", keysOf(sub.Rooms), own)
		}
		r := sub.Rooms[own]
		if len(r.Timeline) < 5 || r.Timeline[len(r.Timeline)-1].Content == nil || r.Limited == nil || *r.Limited {
			t.Fatalf("subscribed room timeline of %d events, limited %v", len(r.Timeline), r.Limited)
		}
		got := stateTypes(r.RequiredState)
		for _, w := range []string{"m.room.create|", "m.room.power_levels|", "m.room.join_rules|", "m.room.member|" + bob.ID} {
			if !slices.Contains(got, w) {
				t.Fatalf("required_state %v lacks %s", got, w)
			}
		}
	})
}

func TestSlidingExtensions(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		uploadKeys(t, s, bob, map[string]any{"one_time_keys": otks("b", 3),
			"fallback_keys": map[string]any{"signed_curve25519:fb": map[string]any{"key": "fallback", "fallback": true}}})
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(bob.ID)+"/account_data/m.test", bob.Token, map[string]any{"a": 1}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(bob.ID)+"/rooms/"+url.PathEscape(room)+"/account_data/m.room_test", bob.Token, map[string]any{"b": 2}).Expect(t, 200, "")
		ev := s.SendText(alice, room, "read me")
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/receipt/m.read/"+url.PathEscape(ev), alice.Token, map[string]any{}).Expect(t, 200, "")
		sendToDevice(t, s, alice, "m.test", "t1", map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{"n": 1}}})

		enc := func(since string) map[string]any {
			td := map[string]any{"enabled": true}
			if since != "" {
				td["since"] = since
			}
			return map[string]any{"conn_id": "encryption", "extensions": map[string]any{"to_device": td, "e2ee": map[string]any{"enabled": true}}}
		}
		first := ss(t, s, bob, "", 0, enc(""))
		td, e2ee := first.Extensions.ToDevice, first.Extensions.E2EE
		if td == nil || len(td.Events) != 1 || td.Events[0]["type"] != "m.test" || td.Events[0]["sender"] != alice.ID || td.NextBatch == "" {
			t.Fatalf("to_device %+v", td)
		}
		if e2ee == nil || e2ee.OTKCounts["signed_curve25519"] != 3 || !slices.Equal(e2ee.Fallback, []string{"signed_curve25519"}) {
			t.Fatalf("e2ee %+v", e2ee)
		}
		// Acknowledged with since: not sent again, and nothing new waits.
		start := time.Now()
		second := ss(t, s, bob, first.Pos, 300, enc(td.NextBatch))
		if second.Extensions.ToDevice == nil || len(second.Extensions.ToDevice.Events) != 0 || time.Since(start) < 250*time.Millisecond {
			t.Fatalf("after ack: to_device %+v after %v", second.Extensions.ToDevice, time.Since(start))
		}
		// A new message wakes a parked request.
		done := make(chan ssResp, 1)
		go func() { done <- ss(t, s, bob, second.Pos, 20000, enc(second.Extensions.ToDevice.NextBatch)) }()
		time.Sleep(200 * time.Millisecond)
		sendToDevice(t, s, alice, "m.test", "t2", map[string]any{bob.ID: map[string]any{bob.DeviceID: map[string]any{"n": 2}}})
		select {
		case third := <-done:
			if evs := third.Extensions.ToDevice.Events; len(evs) != 1 || evs[0]["content"].(map[string]any)["n"] != float64(2) {
				t.Fatalf("woken to_device %+v", evs)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("to-device message did not wake the request")
		}
		// Device lists: a new device of a room-mate is reported.
		prevPos := second.Pos
		alice2 := s.Login("alice", "pw-alice-123")
		uploadKeys(t, s, alice2, map[string]any{"device_keys": deviceKeysOf(alice2)})
		dl := ss(t, s, bob, prevPos, 5000, enc(""))
		if dl.Extensions.E2EE.DeviceLists == nil || !slices.Contains(dl.Extensions.E2EE.DeviceLists.Changed, alice.ID) {
			t.Fatalf("device_lists %+v, want alice changed", dl.Extensions.E2EE.DeviceLists)
		}

		// Account data, receipts and typing of the rooms in the list.
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/typing/"+url.PathEscape(alice.ID), alice.Token,
			map[string]any{"typing": true, "timeout": 30000}).Expect(t, 200, "")
		body := listBody(5, 1)
		body["extensions"] = map[string]any{
			"account_data": map[string]any{"enabled": true},
			"receipts":     map[string]any{"enabled": true, "rooms": []string{"*"}},
			"typing":       map[string]any{"enabled": true},
		}
		rl := ss(t, s, bob, "", 0, body)
		ad := rl.Extensions.AccountData
		if ad == nil || !hasType(ad.Global, "m.test") || !hasType(ad.Global, "m.push_rules") || !hasType(ad.Rooms[room], "m.room_test") {
			t.Fatalf("account_data %+v", ad)
		}
		rc := rl.Extensions.Receipts
		if rc == nil || rc.Rooms[room]["type"] != "m.receipt" {
			t.Fatalf("receipts %+v", rc)
		}
		content := rc.Rooms[room]["content"].(map[string]any)
		if _, ok := content[ev].(map[string]any)["m.read"].(map[string]any)[alice.ID]; !ok {
			t.Fatalf("receipt content %v lacks alice's read receipt on %s", content, ev)
		}
		ty := rl.Extensions.Typing
		if ty == nil || ty.Rooms[room]["type"] != "m.typing" {
			t.Fatalf("typing %+v", ty)
		}
		// Incremental: only what changed.
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(bob.ID)+"/account_data/m.other", bob.Token, map[string]any{"c": 3}).Expect(t, 200, "")
		inc := ss(t, s, bob, rl.Pos, 5000, body)
		if g := inc.Extensions.AccountData.Global; len(g) != 1 || g[0]["type"] != "m.other" {
			t.Fatalf("incremental global account data %v", g)
		}
		if len(inc.Extensions.Receipts.Rooms) != 0 {
			t.Fatalf("incremental receipts %v repeat old receipts", inc.Extensions.Receipts.Rooms)
		}
	})
}

func hasType(evs []map[string]any, typ string) bool {
	return slices.ContainsFunc(evs, func(e map[string]any) bool { return e["type"] == typ })
}

func TestSlidingVersionsAdvertised(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		r := s.Do("GET", "/_matrix/client/versions", "", nil).Expect(t, 200, "")
		if f, _ := r.JSON["unstable_features"].(map[string]any); f["org.matrix.simplified_msc3575"] != true {
			t.Fatalf("unstable_features %v lacks org.matrix.simplified_msc3575", f)
		}
	})
}
