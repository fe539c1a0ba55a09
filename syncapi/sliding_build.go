package syncapi

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/aula-chat/aula/roomserver"
)

// roomJobResult is one room's computed entry and what the connection
// then has of it.
type roomJobResult struct {
	room *SlidingRoom // nil: nothing new
	sent sentRoom
	skip bool // nothing looked at: the connection's state stays
}

// build computes the response for the changes after prev up to upto, and
// the connection state it hands out.
func (sl *Sliding) build(ctx context.Context, req SlidingRequest, prev *connState, upto int64, ms map[string]Membership) (*SlidingResponse, *connState, error) {
	s := sl.s
	next := &connState{tok: Token{Pos: upto, Typing: s.typing.Serial()}, rooms: map[string]sentRoom{}, lists: map[string]int{}}
	if prev != nil {
		for id, r := range prev.rooms {
			next.rooms[id] = r
		}
	}
	resp := &SlidingResponse{Lists: map[string]SlidingCount{}, Rooms: map[string]*SlidingRoom{}, Extensions: map[string]any{}}

	cands, err := sl.candidates(ctx, prev, ms)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]candidate, len(cands))
	for _, c := range cands {
		byID[c.id] = c
	}
	dms, err := sl.directRooms(ctx, req.UserID)
	if err != nil {
		return nil, nil, err
	}
	li := &listInfo{sl: sl, userID: req.UserID, dms: dms, typ: map[string]*string{}, enc: map[string]bool{},
		invDM: map[string]bool{}, children: map[string]map[string]bool{}}

	configs := map[string]*roomConfig{}
	var order []string // rooms in the order first met
	use := func(id string, c SlidingRoomConfig) {
		rc := configs[id]
		if rc == nil {
			rc = &roomConfig{}
			configs[id] = rc
			order = append(order, id)
		}
		rc.merge(c)
	}
	listRooms := map[string][]string{}
	names := make([]string, 0, len(req.Lists))
	for name := range req.Lists {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l := req.Lists[name]
		var kept []candidate
		for _, c := range cands {
			ok, err := li.keep(ctx, c, l.Filters)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				kept = append(kept, c)
			}
		}
		resp.Lists[name] = SlidingCount{Count: len(kept)}
		next.lists[name] = len(kept)
		for _, r := range l.Ranges {
			for i := r[0]; i <= r[1] && i < len(kept); i++ {
				use(kept[i].id, l.SlidingRoomConfig)
				listRooms[name] = append(listRooms[name], kept[i].id)
			}
		}
	}
	subs := map[string]bool{}
	for id, c := range req.RoomSubscriptions {
		if _, ok := byID[id]; ok { // only rooms the user is (or was just) in
			use(id, c)
			subs[id] = true
		}
	}
	for _, rc := range configs {
		rc.finish()
	}

	ignored, err := s.ignoredUsers(ctx, req.UserID)
	if err != nil {
		return nil, nil, err
	}
	results := make([]roomJobResult, len(order))
	err = s.forEach(ctx, len(order), func(ctx context.Context, i int) error {
		id := order[i]
		var sent *sentRoom
		if prev != nil {
			if r, ok := prev.rooms[id]; ok {
				sent = &r
			}
		}
		res, err := sl.room(ctx, req, byID[id], configs[id], sent, upto, ignored, li)
		if err == nil {
			results[i] = res
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}

	// Unread counts of the joined rooms looked at.
	var joined []string
	for i, id := range order {
		if !results[i].skip && byID[id].m.Membership == "join" {
			joined = append(joined, id)
		}
	}
	if s.push != nil && len(joined) > 0 {
		counts, err := s.push.Counts(ctx, req.UserID, joined, upto)
		if err != nil {
			return nil, nil, err
		}
		for i, id := range order {
			res := &results[i]
			if res.skip || byID[id].m.Membership != "join" {
				continue
			}
			c := counts[id].Total
			res.sent.notif, res.sent.highlight = c.Notifications, c.Highlights
			changed := prev == nil || prev.rooms[id].notif != c.Notifications || prev.rooms[id].highlight != c.Highlights
			if res.room == nil && changed {
				bump := byID[id].bump
				res.room = &SlidingRoom{BumpStamp: &bump}
			}
			if res.room != nil {
				res.room.NotificationCount, res.room.HighlightCount = c.Notifications, c.Highlights
			}
		}
	}
	initialRooms := map[string]bool{}
	for i, id := range order {
		res := results[i]
		if res.skip {
			continue
		}
		next.rooms[id] = res.sent
		if res.room != nil {
			resp.Rooms[id] = res.room
			if res.room.Initial {
				initialRooms[id] = true
			}
		}
	}

	extData, err := sl.extensions(ctx, req, prev, next, upto, ms, extRooms{lists: listRooms, subs: subs, initial: initialRooms, member: byID}, resp)
	if err != nil {
		return nil, nil, err
	}
	resp.extData = extData
	return resp, next, nil
}

// room computes one room's entry, or nil when nothing changed since the
// connection last sent it.
func (sl *Sliding) room(ctx context.Context, req SlidingRequest, c candidate, cfg *roomConfig, sent *sentRoom, upto int64, ignored map[string]bool, li *listInfo) (roomJobResult, error) {
	s := sl.s
	m := c.m
	stripped := m.Membership == "invite" || m.Membership == "knock"
	initial := sent == nil || stripped || (sent.membership == "invite" || sent.membership == "knock")
	if stripped {
		res := roomJobResult{sent: sentRoom{pos: upto, config: cfg.key, membership: m.Membership}}
		if sent != nil && sent.membership == m.Membership && m.Pos <= sent.pos {
			res.sent = *sent
			res.sent.pos = max(sent.pos, upto)
			return res, nil // the client has this invite already
		}
		st, err := s.rooms.StrippedState(ctx, req.UserID, c.id)
		if err != nil {
			return res, err
		}
		bump := c.bump
		room := &SlidingRoom{Initial: true, BumpStamp: &bump, InviteState: make([]any, 0, len(st))}
		for _, ev := range st {
			room.InviteState = append(room.InviteState, ev)
		}
		if room.IsDM, err = li.isDM(ctx, c); err != nil {
			return res, err
		}
		res.room = room
		return res, nil
	}

	cfgChanged := sent != nil && sent.config != cfg.key
	end := upto
	if m.Membership != "join" {
		end = m.Pos // nothing after leaving is visible
	}
	if !initial && !cfgChanged {
		last := m.Pos
		if m.Membership == "join" {
			last = max(last, s.notifier.roomPos(c.id))
		}
		if last <= sent.pos {
			return roomJobResult{skip: true}, nil
		}
	}
	rreq := roomserver.SyncRoomRequest{
		UserID: req.UserID, DeviceID: req.DeviceID, RoomID: c.id, Upto: end,
		StateAfter: true, Limit: cfg.timeline, LazyMembers: !cfg.allMembers(), Summary: true,
		FullState: initial || cfgChanged, Ignored: ignored,
	}
	if !initial {
		rreq.Since = sent.pos
	}
	sr, err := s.rooms.SyncRoom(ctx, rreq)
	if err != nil {
		return roomJobResult{}, err
	}
	state := sr.State
	if explicit := cfg.explicitMembers(); rreq.FullState && rreq.LazyMembers && len(explicit) > 0 {
		more, err := sl.memberEvents(ctx, c.id, end, explicit)
		if err != nil {
			return roomJobResult{}, err
		}
		state = append(state, more...)
	}
	room := &SlidingRoom{Initial: initial, IsDM: li.dms[c.id]}
	bump := c.bump
	room.BumpStamp = &bump
	members := map[string]roomserver.ClientEvent{}
	seen := map[string]bool{}
	for _, ev := range state {
		if ev.StateKey == nil {
			continue
		}
		if ev.Type == "m.room.member" {
			members[*ev.StateKey] = ev
		}
		switch {
		case ev.Type == "m.room.name" && *ev.StateKey == "":
			var n struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(ev.Content, &n)
			room.Name = n.Name
		case ev.Type == "m.room.avatar" && *ev.StateKey == "":
			var a struct {
				URL string `json:"url"`
			}
			_ = json.Unmarshal(ev.Content, &a)
			if a.URL != "" {
				room.Avatar = &a.URL
			}
		}
		if cfg.wants(ev, req.UserID) && !seen[ev.EventID] {
			seen[ev.EventID] = true
			ev.RoomID = ""
			room.RequiredState = append(room.RequiredState, ev)
		}
	}
	for _, ev := range sr.Timeline {
		if ev.Type == "m.room.member" && ev.StateKey != nil {
			members[*ev.StateKey] = ev
		}
	}
	if sr.Summary != nil {
		joined, invited := sr.Summary.Joined, sr.Summary.Invited
		room.JoinedCount, room.InvitedCount = &joined, &invited
		for _, h := range sr.Summary.Heroes {
			hero := SlidingHero{UserID: h}
			if ev, ok := members[h]; ok {
				var mc struct {
					DisplayName string `json:"displayname"`
					AvatarURL   string `json:"avatar_url"`
				}
				_ = json.Unmarshal(ev.Content, &mc)
				hero.DisplayName, hero.AvatarURL = mc.DisplayName, mc.AvatarURL
			}
			room.Heroes = append(room.Heroes, hero)
		}
	}
	if len(sr.Timeline) > 0 || initial || cfgChanged {
		room.Timeline = formatAll(&Filter{}, sr.Timeline)
		room.PrevBatch = sr.PrevBatch
		limited := sr.Limited
		room.Limited = &limited
		live := 0
		if !initial {
			live = len(sr.Timeline)
		}
		room.NumLive = &live
	}
	res := roomJobResult{sent: sentRoom{pos: max(end, upto), config: cfg.key, membership: m.Membership}}
	if sent != nil {
		res.sent.notif, res.sent.highlight = sent.notif, sent.highlight
	}
	if initial || cfgChanged || len(room.Timeline) > 0 || len(room.RequiredState) > 0 || room.Name != "" ||
		room.Avatar != nil || sr.Summary != nil {
		res.room = room
	}
	return res, nil
}

// memberEvents returns the member events of users at the stream position.
func (sl *Sliding) memberEvents(ctx context.Context, roomID string, pos int64, users []string) ([]roomserver.ClientEvent, error) {
	depth, err := sl.s.db.DepthAtStream(ctx, roomID, pos)
	if err != nil {
		return nil, err
	}
	evs, err := sl.s.db.StateEventsAt(ctx, roomID, "m.room.member", users, depth)
	if err != nil {
		return nil, err
	}
	out := make([]roomserver.ClientEvent, 0, len(evs))
	for _, ev := range evs {
		out = append(out, roomserver.ToClientEvent(ev, nil))
	}
	return out, nil
}
