package syncapi

import (
	"context"
	"slices"
	"sort"

	"github.com/aula-chat/aula/storage"
)

// Device lists: which users' devices a client must look at again (spec:
// "Tracking the device list for a user"). A user is "changed" for the
// syncing user when their devices or cross-signing keys changed and they
// share a joined room (or are the syncing user), and when they newly share
// a room: the syncing user joined one of their rooms or they joined one of
// the syncing user's. A user is "left" when they no longer share any room
// after someone left.

// deviceListsFor computes device_lists for the changes after since up to
// upto. memberRooms are the user's joined rooms whose membership may have
// changed in that range (nil: none).
func (s *Service) deviceListsFor(ctx context.Context, userID string, since, upto int64, ms map[string]Membership, checkChanges bool, memberRooms []string) (*DeviceLists, error) {
	changed := map[string]bool{}
	candidatesLeft := map[string]bool{}
	if checkChanges {
		list, err := s.db.DeviceListChanges(ctx, userID, since, upto)
		if err != nil {
			return nil, err
		}
		for _, u := range list {
			changed[u] = true
		}
	}
	var joinedNew, leftRooms []string
	for id, m := range ms {
		if m.Pos <= since || m.Pos > upto {
			continue
		}
		switch m.Membership {
		case "join":
			joinedNew = append(joinedNew, id)
		case "leave", "ban":
			leftRooms = append(leftRooms, id)
		}
	}
	sort.Strings(joinedNew)
	sort.Strings(leftRooms)
	// Everyone in a room the user just joined now shares it with them.
	mates, err := s.db.JoinedMembersOf(ctx, joinedNew)
	if err != nil {
		return nil, err
	}
	for _, u := range mates {
		changed[u] = true
	}
	// Everyone in a room the user left may share nothing with them now.
	gone, err := s.db.JoinedMembersOf(ctx, leftRooms)
	if err != nil {
		return nil, err
	}
	for _, u := range gone {
		candidatesLeft[u] = true
	}
	// Others who joined or left the user's rooms.
	moves, err := s.db.MemberChangesSince(ctx, memberRooms, since, upto)
	if err != nil {
		return nil, err
	}
	for _, m := range moves {
		switch m.Membership {
		case "join":
			changed[m.UserID] = true
		case "leave", "ban":
			candidatesLeft[m.UserID] = true
		}
	}
	delete(candidatesLeft, userID)
	var left []string
	if len(candidatesLeft) > 0 {
		users := make([]string, 0, len(candidatesLeft))
		for u := range candidatesLeft {
			users = append(users, u)
		}
		sharing, err := s.db.SharingRooms(ctx, userID, users)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if !sharing[u] {
				left = append(left, u)
				delete(changed, u)
			}
		}
	}
	if len(changed) == 0 && len(left) == 0 {
		return nil, nil
	}
	dl := &DeviceLists{Changed: make([]string, 0, len(changed)), Left: left}
	for u := range changed {
		dl.Changed = append(dl.Changed, u)
	}
	sort.Strings(dl.Changed)
	sort.Strings(dl.Left)
	return dl, nil
}

// memberChangeRooms returns which of the rooms may have had member events
// after since up to upto: from the notifier's recent events when they
// reach back that far, otherwise all of them.
func (n *Notifier) memberChangeRooms(rooms []string, since, upto int64) []string {
	var out []string
	for _, id := range rooms {
		evs, _, complete := n.recentAfter(id, since, upto)
		if !complete || slices.ContainsFunc(evs, func(e recentEvent) bool { return e.ev.Type == "m.room.member" }) {
			out = append(out, id)
		}
	}
	return out
}

// KeyChanges answers GET /keys/changes: the users whose device lists
// changed between two sync tokens, and those who no longer share a room.
func (s *Service) KeyChanges(ctx context.Context, userID string, from, to Token) (changed, left []string, err error) {
	ms, err := s.memberships(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	var joined []string
	for id, m := range ms {
		if m.Membership == "join" {
			joined = append(joined, id)
		}
	}
	sort.Strings(joined)
	dl, err := s.deviceListsFor(ctx, userID, from.Pos, to.Pos, ms, true, joined)
	if err != nil || dl == nil {
		return []string{}, []string{}, err
	}
	if dl.Left == nil {
		dl.Left = []string{}
	}
	return dl.Changed, dl.Left, nil
}

// keyCounts returns the device's key counts, from the notifier's memory
// once read (the change feed drops them when keys are uploaded or
// claimed).
func (s *Service) keyCounts(ctx context.Context, userID, deviceID string) (storage.KeyCounts, error) {
	n := s.notifier
	n.mu.Lock()
	u := n.user(userID)
	c, ok := u.keyCounts[deviceID]
	gen := u.keyGen
	n.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := s.db.KeyCounts(ctx, userID, deviceID)
	if err != nil {
		return c, err
	}
	n.mu.Lock()
	if u.keyGen == gen { // no upload or claim while reading
		if u.keyCounts == nil {
			u.keyCounts = map[string]storage.KeyCounts{}
		}
		u.keyCounts[deviceID] = c
	}
	n.mu.Unlock()
	return c, nil
}

// WatchUser loads the user's memberships into the notifier (once), so that
// a change of the user's presence or devices wakes their room-mates at
// once. Call it before storing such a change.
func (s *Service) WatchUser(ctx context.Context, userID string) error {
	_, err := s.memberships(ctx, userID)
	return err
}
