package syncapi

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/keys"
	"github.com/aula-chat/aula/storage"
)

// extRooms is what the extensions need to know of a response's rooms.
type extRooms struct {
	lists   map[string][]string // list name → the rooms of its ranges
	subs    map[string]bool     // room subscriptions in effect
	initial map[string]bool     // rooms sent as initial in this response
	member  map[string]candidate
}

// relevant returns the rooms a room extension covers: those of the lists
// and subscriptions it names ("*" or nothing: all of them).
func (er extRooms) relevant(x *RoomsExtension) []string {
	set := map[string]bool{}
	lists := x.Lists
	if lists == nil {
		lists = []string{"*"}
	}
	for _, name := range lists {
		for ln, ids := range er.lists {
			if name == "*" || name == ln {
				for _, id := range ids {
					set[id] = true
				}
			}
		}
	}
	rooms := x.Rooms
	if rooms == nil {
		rooms = []string{"*"}
	}
	for _, id := range rooms {
		if id == "*" {
			for sub := range er.subs {
				set[sub] = true
			}
		} else if er.subs[id] {
			set[id] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// extensions fills resp.Extensions and reports whether they carry
// anything the client must see at once (to-device messages, device-list
// changes, account data, receipts, typing; key counts alone do not).
func (sl *Sliding) extensions(ctx context.Context, req SlidingRequest, prev, next *connState, upto int64, ms map[string]Membership, er extRooms, resp *SlidingResponse) (bool, error) {
	s := sl.s
	ext := req.Extensions
	since := int64(0)
	if prev != nil {
		since = prev.tok.Pos
	}
	data := false
	if ext.ToDevice.on() && req.DeviceID != "" {
		got, err := sl.toDeviceExt(ctx, req, upto, resp)
		if err != nil {
			return false, err
		}
		data = data || got
	}
	if ext.E2EE.on() && req.DeviceID != "" {
		counts, err := s.keyCounts(ctx, req.UserID, req.DeviceID)
		if err != nil {
			return false, err
		}
		fallback := counts.Fallback
		if fallback == nil {
			fallback = []string{}
		}
		e := map[string]any{
			"device_one_time_keys_count":       keys.OneTimeKeyCounts(counts),
			"device_unused_fallback_key_types": fallback,
		}
		if prev != nil {
			var joined []string
			for id, m := range ms {
				if m.Membership == "join" {
					joined = append(joined, id)
				}
			}
			sort.Strings(joined)
			memberRooms := s.notifier.memberChangeRooms(joined, since, upto)
			dl, err := s.deviceListsFor(ctx, req.UserID, since, upto, ms, true, memberRooms)
			if err != nil {
				return false, err
			}
			if dl != nil {
				changed, left := dl.Changed, dl.Left
				if changed == nil {
					changed = []string{}
				}
				if left == nil {
					left = []string{}
				}
				e["device_lists"] = map[string][]string{"changed": changed, "left": left}
				data = true
			}
		}
		resp.Extensions["e2ee"] = e
	}
	if x := ext.AccountData; x.on() {
		got, err := sl.accountDataExt(ctx, req, prev, er, er.relevant(x), resp)
		if err != nil {
			return false, err
		}
		data = data || got
	}
	if x := ext.Receipts; x.on() {
		got, err := sl.receiptsExt(ctx, req, since, upto, er, er.relevant(x), resp)
		if err != nil {
			return false, err
		}
		data = data || got
	}
	if x := ext.Typing; x.on() {
		var joined []string
		for _, id := range er.relevant(x) {
			if er.member[id].m.Membership == "join" {
				joined = append(joined, id)
			}
		}
		var typingSince int64
		if prev != nil {
			typingSince = prev.tok.Typing
		}
		changed, serial := s.typing.ChangedSince(typingSince, joined)
		next.tok.Typing = serial
		rooms := map[string]any{}
		for _, id := range joined {
			users, ok := changed[id]
			if !ok && er.initial[id] {
				users, ok = s.typing.Typing(id), true
				if len(users) == 0 {
					continue
				}
			}
			if !ok {
				continue
			}
			if users == nil {
				users = []string{}
			}
			rooms[id] = map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}}
		}
		resp.Extensions["typing"] = map[string]any{"rooms": rooms}
		data = data || len(rooms) > 0
	}
	return data, nil
}

// toDeviceExt delivers the device's to-device messages after since, and
// deletes those up to since: the client sends the next_batch of the last
// response that carried messages, acknowledging them.
func (sl *Sliding) toDeviceExt(ctx context.Context, req SlidingRequest, upto int64, resp *SlidingResponse) (bool, error) {
	s := sl.s
	x := req.Extensions.ToDevice
	var after int64
	if x.Since != "" {
		v, err := strconv.ParseInt(x.Since, 10, 64)
		if err != nil || v < 0 {
			return false, mxerr.InvalidParam("Invalid to_device since %q", x.Since)
		}
		after = min(v, upto)
		if err := s.db.DeleteToDevice(ctx, req.UserID, req.DeviceID, after); err != nil {
			return false, err
		}
	}
	limit := x.Limit
	if limit <= 0 || limit > toDeviceBatch {
		limit = toDeviceBatch
	}
	msgs, err := s.db.ToDeviceMessages(ctx, req.UserID, req.DeviceID, after, upto, limit+1)
	if err != nil {
		return false, err
	}
	nextBatch := upto
	if len(msgs) > limit {
		msgs = msgs[:limit]
		nextBatch = msgs[len(msgs)-1].StreamPos
	}
	evs := make([]toDeviceEvent, 0, len(msgs))
	for _, m := range msgs {
		evs = append(evs, toDeviceEvent{Sender: m.Sender, Type: m.Type, Content: m.Content})
	}
	resp.Extensions["to_device"] = map[string]any{"next_batch": strconv.FormatInt(nextBatch, 10), "events": evs}
	return len(evs) > 0, nil
}

// accountDataExt sends global account data changed since the last
// response (all of it on a new connection) and the room account data of
// the relevant rooms (all of it for rooms sent as initial).
func (sl *Sliding) accountDataExt(ctx context.Context, req SlidingRequest, prev *connState, er extRooms, rooms []string, resp *SlidingResponse) (bool, error) {
	s := sl.s
	since := int64(0)
	if prev != nil {
		since = prev.tok.Pos
	}
	from := since
	for _, id := range rooms {
		if er.initial[id] {
			from = 0
			break
		}
	}
	list, err := s.db.AccountDataSince(ctx, req.UserID, from)
	if err != nil {
		return false, err
	}
	relevant := map[string]bool{}
	for _, id := range rooms {
		relevant[id] = true
	}
	global := []any{}
	perRoom := map[string][]any{}
	for _, a := range list {
		ev := map[string]any{"type": a.Type, "content": json.RawMessage(a.Content)}
		switch {
		case a.RoomID == "" && a.StreamPos > since:
			global = append(global, ev)
		case a.RoomID != "" && relevant[a.RoomID] && (a.StreamPos > since || er.initial[a.RoomID]):
			perRoom[a.RoomID] = append(perRoom[a.RoomID], ev)
		}
	}
	pos, err := s.db.PushRulesPos(ctx, req.UserID)
	if err != nil {
		return false, err
	}
	if prev == nil || pos > since {
		rules, err := s.push.Rules(ctx, req.UserID)
		if err != nil {
			return false, err
		}
		global = append(global, map[string]any{"type": "m.push_rules", "content": map[string]any{"global": rules}})
	}
	resp.Extensions["account_data"] = map[string]any{"global": global, "rooms": perRoom}
	return len(global) > 0 || len(perRoom) > 0, nil
}

// receiptsExt sends the receipts of the relevant joined rooms that
// changed since the last response (all of them for rooms sent as
// initial).
func (sl *Sliding) receiptsExt(ctx context.Context, req SlidingRequest, since, upto int64, er extRooms, rooms []string, resp *SlidingResponse) (bool, error) {
	s := sl.s
	var fresh, old []string
	for _, id := range rooms {
		if er.member[id].m.Membership != "join" {
			continue
		}
		if er.initial[id] {
			fresh = append(fresh, id)
		} else {
			old = append(old, id)
		}
	}
	byRoom := map[string][]storage.Receipt{}
	for _, part := range []struct {
		ids   []string
		since int64
	}{{fresh, 0}, {old, since}} {
		if len(part.ids) == 0 {
			continue
		}
		list, err := s.db.ReceiptsVisibleTo(ctx, req.UserID, part.ids, part.since)
		if err != nil {
			return false, err
		}
		for _, r := range list {
			if r.StreamPos <= upto {
				byRoom[r.RoomID] = append(byRoom[r.RoomID], r)
			}
		}
	}
	out := map[string]any{}
	for id, list := range byRoom {
		if evs := s.ephemeral(&Filter{}, id, nil, list); len(evs) > 0 {
			out[id] = evs[0]
		}
	}
	resp.Extensions["receipts"] = map[string]any{"rooms": out}
	return len(out) > 0, nil
}
