package clientapi_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

// syncEvent is an event as /sync returns it.
type syncEvent struct {
	Type     string          `json:"type"`
	EventID  string          `json:"event_id"`
	Sender   string          `json:"sender"`
	StateKey *string         `json:"state_key"`
	RoomID   *string         `json:"room_id"`
	Content  json.RawMessage `json:"content"`
	Unsigned map[string]any  `json:"unsigned"`
}

type syncEvents struct {
	Events []syncEvent `json:"events"`
}

type syncJoined struct {
	Timeline struct {
		Events    []syncEvent `json:"events"`
		Limited   bool        `json:"limited"`
		PrevBatch string      `json:"prev_batch"`
	} `json:"timeline"`
	State      *syncEvents `json:"state"`
	StateAfter *syncEvents `json:"org.matrix.msc4222.state_after"`
	Ephemeral  syncEvents  `json:"ephemeral"`
	Account    syncEvents  `json:"account_data"`
	Summary    *struct {
		Heroes  []string `json:"m.heroes"`
		Joined  int      `json:"m.joined_member_count"`
		Invited int      `json:"m.invited_member_count"`
	} `json:"summary"`
}

type syncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]syncJoined `json:"join"`
		Invite map[string]struct {
			InviteState syncEvents `json:"invite_state"`
		} `json:"invite"`
		Leave map[string]syncJoined `json:"leave"`
		Knock map[string]struct {
			KnockState syncEvents `json:"knock_state"`
		} `json:"knock"`
	} `json:"rooms"`
	AccountData syncEvents `json:"account_data"`
	ToDevice    syncEvents `json:"to_device"`
	Presence    syncEvents `json:"presence"`
}

// doSync calls /sync with the query parameters and decodes the answer.
func doSync(t *testing.T, s *apitest.Server, u apitest.User, q url.Values) syncResp {
	t.Helper()
	r := s.Do("GET", "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil).Expect(t, 200, "")
	var out syncResp
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("decode sync: %v; %s", err, r.Body)
	}
	if out.NextBatch == "" {
		t.Fatalf("sync without next_batch: %s", r.Body)
	}
	return out
}

// since builds the query of an incremental sync.
func since(tok string, kv ...string) url.Values {
	q := url.Values{"since": {tok}, "timeout": {"0"}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func eventIDs(evs []syncEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

func types(evs []syncEvent) []string {
	out := []string{}
	for _, e := range evs {
		k := e.Type
		if e.StateKey != nil && *e.StateKey != "" {
			k += " " + *e.StateKey
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSyncInitialAndIncremental(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "name": "Room"})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		m1 := s.SendText(alice, room, "one")
		m2 := s.SendText(alice, room, "two")

		first := doSync(t, s, bob, url.Values{"filter": {`{"room":{"timeline":{"limit":50}}}`}})
		jr, ok := first.Rooms.Join[room]
		if !ok {
			t.Fatalf("initial sync lacks the joined room: %+v", first.Rooms)
		}
		tl := jr.Timeline.Events
		if n := len(tl); n < 2 || tl[n-2].EventID != m1 || tl[n-1].EventID != m2 {
			t.Fatalf("timeline ends %v, want ... %s %s", eventIDs(tl), m1, m2)
		}
		for _, e := range tl {
			if e.RoomID != nil {
				t.Errorf("sync event %s has room_id", e.EventID)
			}
		}
		// The whole room fits in 50 events: no gap, and the state before the
		// timeline's first event (m.room.create) is empty.
		if jr.Timeline.Limited || jr.State == nil || len(jr.State.Events) != 0 {
			t.Errorf("limited %v, state %v; want a complete timeline and empty state", jr.Timeline.Limited, jr.State)
		}
		if jr.StateAfter != nil {
			t.Error("state_after sent without use_state_after")
		}
		pushRules := false
		for _, e := range first.AccountData.Events {
			pushRules = pushRules || e.Type == "m.push_rules"
		}
		if !pushRules {
			t.Error("initial sync lacks m.push_rules account data")
		}

		// Nothing new: no rooms, same position.
		again := doSync(t, s, bob, since(first.NextBatch))
		if len(again.Rooms.Join) != 0 {
			t.Errorf("incremental sync with nothing new returned rooms: %+v", again.Rooms.Join)
		}

		m3 := s.SendText(alice, room, "three")
		inc := doSync(t, s, bob, since(again.NextBatch))
		got := inc.Rooms.Join[room].Timeline
		if !slices.Equal(eventIDs(got.Events), []string{m3}) || got.Limited {
			t.Fatalf("incremental timeline %v limited %v, want [%s]", eventIDs(got.Events), got.Limited, m3)
		}
		if st := inc.Rooms.Join[room].State; st == nil || len(st.Events) != 0 {
			t.Errorf("incremental non-gappy sync has state %v", st)
		}
		// The sender's device sees its transaction ID; others do not.
		own := doSync(t, s, alice, since(first.NextBatch))
		for _, e := range own.Rooms.Join[room].Timeline.Events {
			if e.EventID == m3 && e.Unsigned["transaction_id"] == nil {
				t.Errorf("sender's sync lacks unsigned.transaction_id: %v", e.Unsigned)
			}
		}
		if got.Events[0].Unsigned["transaction_id"] != nil {
			t.Error("another user's sync shows the transaction ID")
		}

		// A token can be used again: the same answer.
		if rep := doSync(t, s, bob, since(again.NextBatch)); !slices.Equal(eventIDs(rep.Rooms.Join[room].Timeline.Events), []string{m3}) {
			t.Errorf("repeated since gave %v", eventIDs(rep.Rooms.Join[room].Timeline.Events))
		}

		// Bad parameters.
		s.Do("GET", "/_matrix/client/v3/sync?since=garbage", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/sync?timeout=-1", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/sync?full_state=yes", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/sync?set_presence=busy", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/sync?filter=999", bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", "/_matrix/client/v3/sync?filter=%7Bnot+json", bob.Token, nil).Expect(t, 400, "M_NOT_JSON")
		s.Do("GET", "/_matrix/client/v3/sync", "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		// Unknown parameters are ignored.
		s.Do("GET", "/_matrix/client/v3/sync?_cacheBuster=1&timeout=0", bob.Token, nil).Expect(t, 200, "")
	})
}

func TestSyncLongPoll(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		tok := doSync(t, s, bob, url.Values{}).NextBatch

		type result struct {
			resp syncResp
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			q := since(tok)
			q.Set("timeout", "20000")
			done <- result{doSync(t, s, bob, q), time.Now()}
		}()
		select {
		case r := <-done:
			t.Fatalf("long poll returned before anything happened: %+v", r.resp.Rooms)
		case <-time.After(300 * time.Millisecond):
		}
		sent := time.Now()
		ev := s.SendText(alice, room, "wake up")
		select {
		case r := <-done:
			if got := eventIDs(r.resp.Rooms.Join[room].Timeline.Events); !slices.Equal(got, []string{ev}) {
				t.Fatalf("woken sync timeline %v, want [%s]", got, ev)
			}
			t.Logf("woken %v after the send began", r.at.Sub(sent))
		case <-time.After(5 * time.Second):
			t.Fatal("long poll not woken by a message")
		}

		// A timeout with nothing new returns an empty answer.
		start := time.Now()
		doSync(t, s, alice, since(doSync(t, s, alice, url.Values{}).NextBatch, "timeout", "200"))
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("sync with timeout 200 ms and nothing new returned after %v", d)
		}
	})
}

// syncRoom is a room of alice's that bob joined, synced once by bob.
type syncRoom struct {
	alice, bob apitest.User
	room, tok  string
}

func newSyncRoom(t *testing.T, s *apitest.Server, create map[string]any, bobQuery url.Values) syncRoom {
	t.Helper()
	r := syncRoom{alice: s.Register("alice", "pw-alice-123"), bob: s.Register("bob", "pw-bob-123")}
	r.room = s.CreateRoom(r.alice, create)
	s.Invite(r.alice, r.room, r.bob)
	s.Join(r.bob, r.room)
	r.tok = doSync(t, s, r.bob, bobQuery).NextBatch
	return r
}

func stateOf(jr syncJoined) []syncEvent {
	if jr.StateAfter != nil {
		return jr.StateAfter.Events
	}
	if jr.State != nil {
		return jr.State.Events
	}
	return nil
}

func TestSyncGappyState(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat", "name": "Old"}, url.Values{})
		limit2 := `{"room":{"timeline":{"limit":2}}}`
		r := s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/state/m.room.name/", sr.alice.Token, map[string]string{"name": "New"}).Expect(t, 200, "")
		nameID := r.String("event_id")
		var msgs []string
		for i := range 5 {
			msgs = append(msgs, s.SendText(sr.alice, sr.room, "m"+string(rune('0'+i))))
		}

		gappy := doSync(t, s, sr.bob, since(sr.tok, "filter", limit2))
		jr := gappy.Rooms.Join[sr.room]
		if !jr.Timeline.Limited || !slices.Equal(eventIDs(jr.Timeline.Events), msgs[3:]) {
			t.Fatalf("gappy timeline %v limited %v, want %v limited", eventIDs(jr.Timeline.Events), jr.Timeline.Limited, msgs[3:])
		}
		if got := eventIDs(stateOf(jr)); !slices.Equal(got, []string{nameID}) {
			t.Errorf("gappy state %v (%v), want the name change %s", got, types(stateOf(jr)), nameID)
		}
		// prev_batch continues right before the timeline.
		m := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/messages?dir=b&limit=3&from="+url.QueryEscape(jr.Timeline.PrevBatch), sr.bob.Token, nil).Expect(t, 200, "")
		var page struct {
			Chunk []syncEvent `json:"chunk"`
		}
		_ = json.Unmarshal(m.Body, &page)
		if got := eventIDs(page.Chunk); !slices.Equal(got, []string{msgs[2], msgs[1], msgs[0]}) {
			t.Errorf("/messages from prev_batch: %v, want %v", got, []string{msgs[2], msgs[1], msgs[0]})
		}
		// A sync token works as a /messages token too.
		s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/messages?dir=b&limit=1&from="+url.QueryEscape(gappy.NextBatch), sr.bob.Token, nil).Expect(t, 200, "")

		// MSC4222: state_after holds every change since the last sync,
		// including those the timeline shows.
		after := doSync(t, s, sr.bob, since(sr.tok, "filter", limit2, "org.matrix.msc4222.use_state_after", "true"))
		ja := after.Rooms.Join[sr.room]
		if ja.State != nil || ja.StateAfter == nil {
			t.Fatalf("use_state_after: state %v state_after %v", ja.State, ja.StateAfter)
		}
		if got := eventIDs(ja.StateAfter.Events); !slices.Equal(got, []string{nameID}) {
			t.Errorf("state_after %v, want [%s]", got, nameID)
		}
		topic := s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/state/m.room.topic/", sr.alice.Token, map[string]string{"topic": "t"}).Expect(t, 200, "").String("event_id")
		nonGappy := doSync(t, s, sr.bob, since(after.NextBatch, "org.matrix.msc4222.use_state_after", "true"))
		jn := nonGappy.Rooms.Join[sr.room]
		if !slices.Equal(eventIDs(jn.Timeline.Events), []string{topic}) || jn.StateAfter == nil || !slices.Equal(eventIDs(jn.StateAfter.Events), []string{topic}) {
			t.Errorf("state_after of a non-gappy sync: timeline %v state_after %v, want the topic in both", eventIDs(jn.Timeline.Events), jn.StateAfter)
		}
		// The stable parameter name answers under the stable key.
		r = s.Do("GET", "/_matrix/client/v3/sync?use_state_after=true&timeout=0&since="+url.QueryEscape(after.NextBatch), sr.bob.Token, nil).Expect(t, 200, "")
		var raw struct {
			Rooms struct {
				Join map[string]map[string]json.RawMessage `json:"join"`
			} `json:"rooms"`
		}
		_ = json.Unmarshal(r.Body, &raw)
		if _, ok := raw.Rooms.Join[sr.room]["state_after"]; !ok {
			t.Errorf("use_state_after=true: no state_after key in %s", r.Body)
		}
	})
}

const lazyFilter = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":1}}}`

func memberKeys(evs []syncEvent) []string {
	out := []string{}
	for _, e := range evs {
		if e.Type == "m.room.member" && e.StateKey != nil {
			out = append(out, *e.StateKey)
		}
	}
	sort.Strings(out)
	return out
}

func TestSyncLazyLoading(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		carol := s.Register("carol", "pw-carol-123")
		dave := s.Register("dave", "pw-dave-123")
		named := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "name": "Named"})
		unnamed := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
		for _, room := range []string{named, unnamed} {
			for _, u := range []apitest.User{bob, carol, dave} {
				s.Invite(alice, room, u)
				s.Join(u, room)
			}
			s.SendText(carol, room, "hello from carol")
		}

		first := doSync(t, s, bob, url.Values{"filter": {lazyFilter}})
		jr := first.Rooms.Join[named]
		// Exactly the timeline's sender and the syncing user.
		if got := memberKeys(stateOf(jr)); !slices.Equal(got, []string{bob.ID, carol.ID}) {
			t.Errorf("lazy state members %v, want [bob carol]", got)
		}
		if !slices.Contains(types(stateOf(jr)), "m.room.name") || !slices.Contains(types(stateOf(jr)), "m.room.power_levels") {
			t.Errorf("lazy loading dropped non-member state: %v", types(stateOf(jr)))
		}
		if jr.Summary == nil || jr.Summary.Joined != 4 || jr.Summary.Invited != 0 || jr.Summary.Heroes != nil {
			t.Errorf("named room summary %+v, want 4 joined, 0 invited, no heroes", jr.Summary)
		}
		// Without a name, the heroes (the first members, not bob) name the
		// room, and their member events come along.
		ju := first.Rooms.Join[unnamed]
		if ju.Summary == nil || !slices.Equal(ju.Summary.Heroes, []string{alice.ID, carol.ID, dave.ID}) {
			t.Errorf("unnamed room summary %+v, want heroes alice, carol, dave", ju.Summary)
		}
		if got := memberKeys(stateOf(ju)); !slices.Equal(got, []string{alice.ID, bob.ID, carol.ID, dave.ID}) {
			t.Errorf("unnamed room lazy members %v, want the heroes and bob", got)
		}

		// Carol again: bob's device already has her member event.
		s.SendText(carol, named, "again")
		inc := doSync(t, s, bob, since(first.NextBatch, "filter", lazyFilter))
		if got := memberKeys(stateOf(inc.Rooms.Join[named])); len(got) != 0 {
			t.Errorf("redundant members sent again: %v", got)
		}
		if inc.Rooms.Join[named].Summary != nil {
			t.Error("summary sent again although no membership changed")
		}
		// Dave speaks for the first time: his member event is new to bob.
		s.SendText(dave, named, "dave here")
		inc2 := doSync(t, s, bob, since(inc.NextBatch, "filter", lazyFilter))
		if got := memberKeys(stateOf(inc2.Rooms.Join[named])); !slices.Equal(got, []string{dave.ID}) {
			t.Errorf("new sender's member event: %v, want [dave]", got)
		}
		// include_redundant_members sends them every time.
		redundant := `{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true},"timeline":{"limit":1}}}`
		s.SendText(dave, named, "dave again")
		inc3 := doSync(t, s, bob, since(inc2.NextBatch, "filter", redundant))
		if got := memberKeys(stateOf(inc3.Rooms.Join[named])); !slices.Equal(got, []string{dave.ID}) {
			t.Errorf("include_redundant_members: %v, want [dave]", got)
		}
		// A new member joining changes the summary.
		erin := s.Register("erin", "pw-erin-123")
		s.Invite(alice, named, erin)
		inc4 := doSync(t, s, bob, since(inc3.NextBatch, "filter", lazyFilter))
		if sm := inc4.Rooms.Join[named].Summary; sm == nil || sm.Invited != 1 || sm.Joined != 4 {
			t.Errorf("summary after an invite: %+v, want 4 joined 1 invited", sm)
		}
		// Without lazy loading every member comes on an initial sync.
		full := doSync(t, s, bob, url.Values{"filter": {`{"room":{"timeline":{"limit":1}}}`}})
		fj := full.Rooms.Join[named]
		if got := memberKeys(append(stateOf(fj), fj.Timeline.Events...)); len(got) != 5 {
			t.Errorf("full member list %v, want 5 members", got)
		}
	})
}

func TestSyncMembershipSections(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "name": "Invite me"})
		tok := doSync(t, s, bob, url.Values{}).NextBatch
		s.Invite(alice, room, bob)

		inv := doSync(t, s, bob, since(tok))
		st, ok := inv.Rooms.Invite[room]
		if !ok {
			t.Fatalf("invite not in rooms.invite: %+v", inv.Rooms)
		}
		got := types(st.InviteState.Events)
		for _, want := range []string{"m.room.create", "m.room.name", "m.room.join_rules", "m.room.member " + bob.ID} {
			if !slices.Contains(got, want) {
				t.Errorf("invite_state %v lacks %s", got, want)
			}
		}
		for _, e := range st.InviteState.Events {
			if e.Type == "m.room.member" && e.Sender != alice.ID {
				t.Errorf("invite event sender %s, want alice", e.Sender)
			}
			if e.EventID != "" {
				t.Errorf("stripped state has event_id")
			}
		}
		if len(inv.Rooms.Join) != 0 {
			t.Error("invited room also in join")
		}
		// An initial sync shows the invite too.
		if _, ok := doSync(t, s, bob, url.Values{}).Rooms.Invite[room]; !ok {
			t.Error("initial sync lacks the pending invite")
		}

		s.Join(bob, room)
		joined := doSync(t, s, bob, since(inv.NextBatch))
		jr, ok := joined.Rooms.Join[room]
		if !ok || len(joined.Rooms.Invite) != 0 {
			t.Fatalf("after joining: join %v invite %v", joined.Rooms.Join, joined.Rooms.Invite)
		}
		// Newly joined: the whole state comes (before the timeline).
		all := append(types(stateOf(jr)), types(jr.Timeline.Events)...)
		for _, want := range []string{"m.room.create", "m.room.power_levels", "m.room.member " + bob.ID} {
			if !slices.Contains(all, want) {
				t.Errorf("newly joined room lacks %s: state+timeline %v", want, all)
			}
		}

		// Kicked: the room moves to leave, with the kick at the end.
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/kick", alice.Token, map[string]string{"user_id": bob.ID, "reason": "bye"}).Expect(t, 200, "")
		after := s.SendText(alice, room, "after the kick")
		kicked := doSync(t, s, bob, since(joined.NextBatch))
		lr, ok := kicked.Rooms.Leave[room]
		if !ok || len(kicked.Rooms.Join) != 0 || len(lr.Timeline.Events) == 0 {
			t.Fatalf("after the kick: leave %v join %v", kicked.Rooms.Leave, kicked.Rooms.Join)
		}
		last := lr.Timeline.Events[len(lr.Timeline.Events)-1]
		if last.Type != "m.room.member" || *last.StateKey != bob.ID || last.Sender != alice.ID {
			t.Errorf("leave timeline ends with %+v, want alice's kick of bob", last)
		}
		if slices.Contains(eventIDs(lr.Timeline.Events), after) {
			t.Error("leave timeline shows a message sent after the kick")
		}
		// Nothing more after that, even though the room goes on.
		s.SendText(alice, room, "more")
		if quiet := doSync(t, s, bob, since(kicked.NextBatch)); len(quiet.Rooms.Leave)+len(quiet.Rooms.Join) != 0 {
			t.Errorf("left room still synced: %+v", quiet.Rooms)
		}
		// Initial syncs show left rooms only with include_leave.
		if _, ok := doSync(t, s, bob, url.Values{}).Rooms.Leave[room]; ok {
			t.Error("initial sync without include_leave shows the left room")
		}
		incl := doSync(t, s, bob, url.Values{"filter": {`{"room":{"include_leave":true}}`}})
		if _, ok := incl.Rooms.Leave[room]; !ok {
			t.Error("include_leave: left room missing")
		}

		// Back in, then banned: leave again, with the ban.
		s.Invite(alice, room, bob)
		s.Join(bob, room)
		back := doSync(t, s, bob, since(kicked.NextBatch))
		if _, ok := back.Rooms.Join[room]; !ok {
			t.Fatalf("rejoined room not in join: %+v", back.Rooms)
		}
		s.Do("POST", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/ban", alice.Token, map[string]string{"user_id": bob.ID}).Expect(t, 200, "")
		banned := doSync(t, s, bob, since(back.NextBatch))
		bl, ok := banned.Rooms.Leave[room]
		if !ok || len(bl.Timeline.Events) == 0 {
			t.Fatalf("ban not in leave: %+v", banned.Rooms)
		}
		lastBan := bl.Timeline.Events[len(bl.Timeline.Events)-1]
		if lastBan.Type != "m.room.member" || *lastBan.StateKey != bob.ID {
			t.Errorf("ban timeline ends with %+v", lastBan)
		}
		var c struct {
			Membership string `json:"membership"`
		}
		_ = json.Unmarshal(lastBan.Content, &c)
		if c.Membership != "ban" {
			t.Errorf("last event membership %q, want ban", c.Membership)
		}

		// Knocking shows in rooms.knock.
		knockRoom := s.CreateRoom(alice, map[string]any{"preset": "private_chat", "initial_state": []any{
			map[string]any{"type": "m.room.join_rules", "state_key": "", "content": map[string]string{"join_rule": "knock"}},
		}})
		carol := s.Register("carol", "pw-carol-123")
		ctok := doSync(t, s, carol, url.Values{}).NextBatch
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(knockRoom), carol.Token, map[string]any{}).Expect(t, 200, "")
		kn := doSync(t, s, carol, since(ctok))
		if k, ok := kn.Rooms.Knock[knockRoom]; !ok || !slices.Contains(types(k.KnockState.Events), "m.room.member "+carol.ID) {
			t.Errorf("knock section: %+v", kn.Rooms.Knock)
		}
	})
}

func TestSyncEphemeralAndAccountData(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{})
		msg := s.SendText(sr.alice, sr.room, "read me")
		tok := doSync(t, s, sr.bob, since(sr.tok)).NextBatch

		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/typing/"+url.PathEscape(sr.alice.ID), sr.alice.Token,
			map[string]any{"typing": true, "timeout": 30000}).Expect(t, 200, "")
		typed := doSync(t, s, sr.bob, since(tok))
		eph := typed.Rooms.Join[sr.room].Ephemeral.Events
		if len(eph) != 1 || eph[0].Type != "m.typing" || eph[0].RoomID != nil || string(eph[0].Content) != `{"user_ids":["`+sr.alice.ID+`"]}` {
			t.Fatalf("typing ephemeral: %+v", eph)
		}
		s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(sr.room)+"/typing/"+url.PathEscape(sr.alice.ID), sr.alice.Token,
			map[string]any{"typing": false}).Expect(t, 200, "")
		stopped := doSync(t, s, sr.bob, since(typed.NextBatch))
		if eph := stopped.Rooms.Join[sr.room].Ephemeral.Events; len(eph) != 1 || string(eph[0].Content) != `{"user_ids":[]}` {
			t.Errorf("typing stopped: %+v", eph)
		}

		rcReceipt(s, sr.alice, sr.room, "m.read", msg, map[string]any{}).Expect(t, 200, "")
		rcReceipt(s, sr.alice, sr.room, "m.read.private", msg, map[string]any{}).Expect(t, 200, "")
		got := doSync(t, s, sr.bob, since(stopped.NextBatch))
		eph = got.Rooms.Join[sr.room].Ephemeral.Events
		if len(eph) != 1 || eph[0].Type != "m.receipt" {
			t.Fatalf("receipt ephemeral: %+v", eph)
		}
		var content map[string]map[string]map[string]map[string]any
		_ = json.Unmarshal(eph[0].Content, &content)
		if _, ok := content[msg]["m.read"][sr.alice.ID]["ts"]; !ok || len(content[msg]) != 1 {
			t.Errorf("receipt content %s, want only alice's public m.read of %s", eph[0].Content, msg)
		}
		own := doSync(t, s, sr.alice, since(stopped.NextBatch))
		var ownContent map[string]map[string]map[string]map[string]any
		for _, e := range own.Rooms.Join[sr.room].Ephemeral.Events {
			if e.Type == "m.receipt" {
				_ = json.Unmarshal(e.Content, &ownContent)
			}
		}
		if _, ok := ownContent[msg]["m.read.private"][sr.alice.ID]; !ok {
			t.Errorf("alice does not see her own private receipt: %v", ownContent)
		}

		// Account data: global, and per room (the room appears for it alone).
		base := doSync(t, s, sr.bob, since(got.NextBatch)).NextBatch
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(sr.bob.ID)+"/account_data/org.example.g", sr.bob.Token, map[string]int{"a": 1}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(sr.bob.ID)+"/rooms/"+url.PathEscape(sr.room)+"/account_data/org.example.r", sr.bob.Token, map[string]int{"b": 2}).Expect(t, 200, "")
		ad := doSync(t, s, sr.bob, since(base))
		if got := types(ad.AccountData.Events); !slices.Equal(got, []string{"org.example.g"}) {
			t.Errorf("global account data %v", got)
		}
		if got := types(ad.Rooms.Join[sr.room].Account.Events); !slices.Equal(got, []string{"org.example.r"}) {
			t.Errorf("room account data %v", got)
		}
		// Push rule changes come as m.push_rules.
		s.Do("PUT", "/_matrix/client/v3/pushrules/global/override/org.example.rule/enabled", sr.bob.Token, map[string]bool{"enabled": false})
		s.Do("PUT", "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled", sr.bob.Token, map[string]bool{"enabled": true}).Expect(t, 200, "")
		pr := doSync(t, s, sr.bob, since(ad.NextBatch))
		if got := types(pr.AccountData.Events); !slices.Equal(got, []string{"m.push_rules"}) {
			t.Errorf("after a push rule change: account data %v", got)
		}
	})
}

func TestSyncFilters(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{})
		other := s.CreateRoom(sr.bob, nil)
		msg := s.SendText(sr.alice, sr.room, "text")
		custom := s.Send(sr.alice, sr.room, "org.example.custom", map[string]string{"url": "mxc://aula.test/x"})
		s.SendText(sr.bob, other, "elsewhere")

		check := func(name, filter string, room string, want []string) {
			t.Helper()
			r := doSync(t, s, sr.bob, since(sr.tok, "filter", filter))
			if got := eventIDs(r.Rooms.Join[room].Timeline.Events); !slices.Equal(got, want) {
				t.Errorf("%s: timeline %v, want %v", name, got, want)
			}
		}
		check("types", `{"room":{"timeline":{"types":["m.room.message"]}}}`, sr.room, []string{msg})
		check("not_types", `{"room":{"timeline":{"not_types":["m.room.message"]}}}`, sr.room, []string{custom})
		check("contains_url", `{"room":{"timeline":{"contains_url":true}}}`, sr.room, []string{custom})
		check("not_senders", `{"room":{"timeline":{"not_senders":["`+sr.alice.ID+`"]}}}`, sr.room, []string{})
		r := doSync(t, s, sr.bob, since(sr.tok, "filter", `{"room":{"rooms":["`+other+`"]}}`))
		if _, ok := r.Rooms.Join[sr.room]; ok || len(r.Rooms.Join) != 1 {
			t.Errorf("room filter: joined rooms %v, want only %s", r.Rooms.Join, other)
		}
		// A stored filter works like an inline one.
		id := s.Do("POST", "/_matrix/client/v3/user/"+url.PathEscape(sr.bob.ID)+"/filter", sr.bob.Token,
			map[string]any{"room": map[string]any{"timeline": map[string]any{"types": []string{"m.room.message"}}}}).Expect(t, 200, "").String("filter_id")
		check("stored filter", id, sr.room, []string{msg})
		// Another user's filter ID is unknown to bob.
		aliceFilter := s.Do("POST", "/_matrix/client/v3/user/"+url.PathEscape(sr.alice.ID)+"/filter", sr.alice.Token, map[string]any{}).Expect(t, 200, "").String("filter_id")
		if aliceFilter != id {
			s.Do("GET", "/_matrix/client/v3/sync?filter="+aliceFilter, sr.bob.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		}

		// event_fields keeps only the named fields.
		ef := s.Do("GET", "/_matrix/client/v3/sync?timeout=0&since="+url.QueryEscape(sr.tok)+"&filter="+url.QueryEscape(`{"event_fields":["type","content.body"],"room":{"timeline":{"types":["m.room.message"]}}}`), sr.bob.Token, nil).Expect(t, 200, "")
		var efr struct {
			Rooms struct {
				Join map[string]struct {
					Timeline struct {
						Events []map[string]any `json:"events"`
					} `json:"timeline"`
				} `json:"join"`
			} `json:"rooms"`
		}
		_ = json.Unmarshal(ef.Body, &efr)
		evs := efr.Rooms.Join[sr.room].Timeline.Events
		if len(evs) != 1 || len(evs[0]) != 2 || evs[0]["type"] != "m.room.message" {
			t.Errorf("event_fields: %v", evs)
		} else if c, _ := evs[0]["content"].(map[string]any); len(c) != 1 || c["body"] != "text" {
			t.Errorf("event_fields content: %v", evs[0]["content"])
		}
		// event_format federation gives the stored PDU.
		fed := s.Do("GET", "/_matrix/client/v3/sync?timeout=0&since="+url.QueryEscape(sr.tok)+"&filter="+url.QueryEscape(`{"event_format":"federation","room":{"timeline":{"types":["m.room.message"]}}}`), sr.bob.Token, nil).Expect(t, 200, "")
		_ = json.Unmarshal(fed.Body, &efr)
		if evs := efr.Rooms.Join[sr.room].Timeline.Events; len(evs) != 1 || evs[0]["signatures"] == nil || evs[0]["room_id"] != sr.room {
			t.Errorf("federation format: %v", evs)
		}
	})
}

// An incremental sync with nothing new, for a user in many rooms, runs no
// SQL: the notifier answers from memory.
func TestSyncNothingNewRunsNoSQL(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		var rooms []string
		for range 30 {
			rooms = append(rooms, s.CreateRoom(alice, map[string]any{"preset": "private_chat"}))
		}
		q := url.Values{"filter": {lazyFilter}}
		tok := doSync(t, s, alice, q).NextBatch
		tok = doSync(t, s, alice, since(tok, "filter", lazyFilter)).NextBatch // loads the filter
		before := s.App.DB.Queries()
		for range 5 {
			r := doSync(t, s, alice, since(tok, "filter", lazyFilter))
			if len(r.Rooms.Join) != 0 || r.NextBatch != tok {
				t.Fatalf("nothing new, yet rooms %v, next_batch %s (was %s)", r.Rooms.Join, r.NextBatch, tok)
			}
		}
		if n := s.App.DB.Queries() - before; n != 0 {
			t.Errorf("5 incremental syncs with nothing new ran %d queries, want 0", n)
		}
		// Something new in one room computes that room only.
		s.SendText(alice, rooms[7], "news")
		r := doSync(t, s, alice, since(tok, "filter", lazyFilter))
		if len(r.Rooms.Join) != 1 {
			t.Errorf("one new message: rooms %d, want 1", len(r.Rooms.Join))
		}
	})
}

// A message to a room whose members all have a parked /sync wakes every
// one of them, and the woken requests answer from memory: the number of
// queries does not grow with the number of members.
func TestSyncFanOutAnswersFromMemory(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
		const n = 12
		members := make([]apitest.User, n)
		toks := make([]string, n)
		for i := range members {
			members[i] = s.Register("member"+string(rune('a'+i)), "pw-member-123")
			s.Invite(alice, room, members[i])
			s.Join(members[i], room)
		}
		first := s.SendText(alice, room, "first")
		for i, m := range members {
			// Offline, so that members coming online do not wake each other.
			tok := doSync(t, s, m, url.Values{"filter": {lazyFilter}, "set_presence": {"offline"}}).NextBatch
			toks[i] = tok
		}
		before := s.App.DB.Queries()
		type woken struct {
			i    int
			resp syncResp
		}
		done := make(chan woken, n)
		for i, m := range members {
			go func() {
				q := since(toks[i], "filter", lazyFilter, "set_presence", "offline")
				q.Set("timeout", "20000")
				done <- woken{i, doSync(t, s, m, q)}
			}()
		}
		time.Sleep(300 * time.Millisecond) // let them park
		ev := s.SendText(alice, room, "to everyone")
		var got []woken
		for range n {
			select {
			case w := <-done:
				got = append(got, w)
			case <-time.After(10 * time.Second):
				t.Fatal("not every member was woken")
			}
		}
		queries := s.App.DB.Queries() - before
		for _, w := range got {
			jr := w.resp.Rooms.Join[room]
			if !slices.Equal(eventIDs(jr.Timeline.Events), []string{ev}) || jr.Timeline.Limited {
				t.Fatalf("member %d woken with %v, want [%s]", w.i, eventIDs(jr.Timeline.Events), ev)
			}
			if got := memberKeys(stateOf(jr)); len(got) != 0 {
				t.Errorf("member %d sent alice's member event again: %v", w.i, got)
			}
			if jr.Timeline.Events[0].Unsigned["membership"] != "join" {
				t.Errorf("unsigned.membership %v", jr.Timeline.Events[0].Unsigned)
			}
			// prev_batch leads back to the first message.
			r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=1&from="+url.QueryEscape(jr.Timeline.PrevBatch), members[w.i].Token, nil).Expect(t, 200, "")
			var page struct {
				Chunk []syncEvent `json:"chunk"`
			}
			_ = json.Unmarshal(r.Body, &page)
			if got := eventIDs(page.Chunk); !slices.Equal(got, []string{first}) {
				t.Errorf("/messages from the woken prev_batch: %v, want [%s]", got, first)
			}
		}
		// The send itself takes a few statements; the n woken syncs none.
		if queries > 10 {
			t.Errorf("sending one message and waking %d syncs ran %d queries", n, queries)
		}
	})
}

// Tokens survive a restart: a token of the old process, used with the new
// one, gets exactly what happened since, once.
func TestSyncTokenSurvivesRestart(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{})
		before := s.SendText(sr.alice, sr.room, "before the restart")
		quiet := s.CreateRoom(sr.alice, map[string]any{"preset": "private_chat"})
		s.Invite(sr.alice, quiet, sr.bob)
		s.Join(sr.bob, quiet)
		tok := doSync(t, s, sr.bob, since(sr.tok)).NextBatch
		missed := s.SendText(sr.alice, quiet, "sent before the restart, not synced yet")
		s.App.Close()

		s2 := apitest.Start(t, s.Config)
		after := s2.SendText(sr.alice, sr.room, "after the restart")
		got := doSync(t, s2, sr.bob, since(tok))
		if ids := eventIDs(got.Rooms.Join[sr.room].Timeline.Events); !slices.Equal(ids, []string{after}) {
			t.Errorf("after a restart: timeline %v, want [%s] (and not %s again)", ids, after, before)
		}
		if ids := eventIDs(got.Rooms.Join[quiet].Timeline.Events); !slices.Equal(ids, []string{missed}) {
			t.Errorf("a room quiet since the restart: timeline %v, want [%s]", ids, missed)
		}
		if again := doSync(t, s2, sr.bob, since(got.NextBatch)); len(again.Rooms.Join) != 0 {
			t.Errorf("the new token repeats rooms: %+v", again.Rooms.Join)
		}
	})
}

// While messages are sent concurrently into several rooms, a client that
// keeps syncing sees every message exactly once, in each room's order.
func TestSyncNeverSkipsOrRepeats(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-123")
		var rooms []string
		for range 3 {
			room := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
			s.Invite(alice, room, bob)
			s.Join(bob, room)
			rooms = append(rooms, room)
		}
		tok := doSync(t, s, bob, url.Values{}).NextBatch
		const perRoom = 15
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			done := make(chan struct{}, len(rooms)*2)
			for _, room := range rooms {
				for w := range 2 { // two senders per room
					go func() {
						for i := range perRoom / 2 {
							s.SendText(alice, room, "msg "+string(rune('a'+w))+string(rune('a'+i)))
						}
						done <- struct{}{}
					}()
				}
			}
			for range len(rooms) * 2 {
				<-done
			}
		}()
		seen := map[string][]string{}
		count := map[string]int{}
		deadline := time.Now().Add(30 * time.Second)
		want := len(rooms) * (perRoom / 2) * 2
		total := 0
		for total < want && time.Now().Before(deadline) {
			q := since(tok, "filter", `{"room":{"timeline":{"limit":100}}}`)
			q.Set("timeout", "2000")
			r := doSync(t, s, bob, q)
			for room, jr := range r.Rooms.Join {
				if jr.Timeline.Limited {
					t.Errorf("room %s: limited timeline in an incremental sync with limit 100", room)
				}
				for _, e := range jr.Timeline.Events {
					count[e.EventID]++
					seen[room] = append(seen[room], e.EventID)
					total++
				}
			}
			tok = r.NextBatch
		}
		<-sent
		if total != want {
			t.Fatalf("saw %d messages, want %d", total, want)
		}
		for id, n := range count {
			if n != 1 {
				t.Errorf("event %s seen %d times", id, n)
			}
		}
		// Each room's order is the order /messages gives.
		for _, room := range rooms {
			r := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=100&filter="+url.QueryEscape(`{"types":["m.room.message"]}`), bob.Token, nil).Expect(t, 200, "")
			var page struct {
				Chunk []syncEvent `json:"chunk"`
			}
			_ = json.Unmarshal(r.Body, &page)
			ids := eventIDs(page.Chunk)
			slices.Reverse(ids)
			if !slices.Equal(ids, seen[room]) {
				t.Errorf("room %s: sync order %v, /messages order %v", room, seen[room], ids)
			}
		}
	})
}

// A presence change wakes the room-mates' parked syncs, which answer from
// memory rather than with a query each.
func TestSyncPresenceWakeAnswersFromMemory(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		room := s.CreateRoom(alice, map[string]any{"preset": "private_chat"})
		const n = 8
		members := make([]apitest.User, n)
		toks := make([]string, n)
		for i := range members {
			members[i] = s.Register("mate"+string(rune('a'+i)), "pw-member-123")
			s.Invite(alice, room, members[i])
			s.Join(members[i], room)
		}
		for i, m := range members {
			toks[i] = doSync(t, s, m, url.Values{"set_presence": {"offline"}}).NextBatch
		}
		// alice's PUT loads her rooms once; do it before counting.
		s.Do("PUT", "/_matrix/client/v3/presence/"+url.PathEscape(alice.ID)+"/status", alice.Token, map[string]string{"presence": "unavailable"}).Expect(t, 200, "")
		for i, m := range members {
			toks[i] = doSync(t, s, m, since(toks[i], "set_presence", "offline")).NextBatch
		}
		done := make(chan syncResp, n)
		for i, m := range members {
			go func() {
				q := since(toks[i], "set_presence", "offline")
				q.Set("timeout", "20000")
				done <- doSync(t, s, m, q)
			}()
		}
		time.Sleep(300 * time.Millisecond)
		before := s.App.DB.Queries()
		s.Do("PUT", "/_matrix/client/v3/presence/"+url.PathEscape(alice.ID)+"/status", alice.Token, map[string]string{"presence": "online", "status_msg": "here"}).Expect(t, 200, "")
		for range n {
			select {
			case r := <-done:
				evs := r.Presence.Events
				if len(evs) != 1 || evs[0].Sender != alice.ID || string(evs[0].Content) == "" {
					t.Fatalf("woken with presence %+v, want alice's", evs)
				}
				var c struct {
					Presence  string `json:"presence"`
					StatusMsg string `json:"status_msg"`
				}
				_ = json.Unmarshal(evs[0].Content, &c)
				if c.Presence != "online" || c.StatusMsg != "here" {
					t.Errorf("presence content %s, want online with status here", evs[0].Content)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a room-mate was not woken by the presence change")
			}
		}
		if q := s.App.DB.Queries() - before; q > 5 {
			t.Errorf("one presence change and %d woken syncs ran %d queries", n, q)
		}
	})
}

// Presence alone is batched for a moment, but anything else answers at
// once, and with the presence held back so far.
func TestSyncPresenceBatching(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{"set_presence": {"offline"}})
		s.Do("PUT", "/_matrix/client/v3/presence/"+url.PathEscape(sr.alice.ID)+"/status", sr.alice.Token, map[string]string{"presence": "unavailable"}).Expect(t, 200, "")
		tok := doSync(t, s, sr.bob, since(sr.tok, "set_presence", "offline")).NextBatch
		done := make(chan syncResp, 1)
		start := time.Now()
		go func() {
			q := since(tok, "set_presence", "offline")
			q.Set("timeout", "20000")
			done <- doSync(t, s, sr.bob, q)
		}()
		time.Sleep(200 * time.Millisecond)
		s.Do("PUT", "/_matrix/client/v3/presence/"+url.PathEscape(sr.alice.ID)+"/status", sr.alice.Token, map[string]string{"presence": "online"}).Expect(t, 200, "")
		time.Sleep(300 * time.Millisecond)
		ev := s.SendText(sr.alice, sr.room, "now")
		r := <-done
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("a message during the presence hold answered after %v", d)
		}
		if got := eventIDs(r.Rooms.Join[sr.room].Timeline.Events); !slices.Equal(got, []string{ev}) {
			t.Errorf("timeline %v, want [%s]", got, ev)
		}
		if len(r.Presence.Events) != 1 || r.Presence.Events[0].Sender != sr.alice.ID {
			t.Errorf("presence %+v, want alice's held-back change", r.Presence.Events)
		}
	})
}

// Sending without a syncing client (a script, a bridge) does not make
// anyone appear online, and costs the send nothing in presence.
func TestSendDoesNotMakeOfflineUserOnline(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		sr := newSyncRoom(t, s, map[string]any{"preset": "private_chat"}, url.Values{"set_presence": {"offline"}})
		s.SendText(sr.alice, sr.room, "from a script")
		r := s.Do("GET", "/_matrix/client/v3/presence/"+url.PathEscape(sr.alice.ID)+"/status", sr.bob.Token, nil).Expect(t, 200, "")
		if p := r.String("presence"); p != "offline" {
			t.Errorf("alice after sending without syncing: %q, want offline", p)
		}
	})
}
