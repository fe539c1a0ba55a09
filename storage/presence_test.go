package storage_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestSetPresence(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		var mu sync.Mutex
		var feed []storage.Change
		db.OnChange(func(_ int64, cs []storage.Change) {
			mu.Lock()
			feed = append(feed, cs...)
			mu.Unlock()
		})

		if _, err := db.UserPresence(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("presence never set: %v, want ErrNotFound", err)
		}
		p1, err := db.SetPresence(ctx, storage.Presence{UserID: alice, State: storage.PresenceOnline, LastActiveTS: 5000, CurrentlyActive: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.UserPresence(ctx, alice)
		want := storage.Presence{UserID: alice, State: storage.PresenceOnline, LastActiveTS: 5000, CurrentlyActive: true, StreamPos: p1}
		if err != nil || got != want {
			t.Fatalf("UserPresence = %+v, %v; want %+v", got, err, want)
		}
		if pos, _ := db.StreamPosition(ctx); pos != p1 {
			t.Errorf("stream position %d after SetPresence at %d", pos, p1)
		}

		// A change takes a new position; last_active_ts never moves back.
		p2, err := db.SetPresence(ctx, storage.Presence{UserID: alice, State: storage.PresenceUnavailable, StatusMsg: "lunch", LastActiveTS: 4000})
		if err != nil || p2 <= p1 {
			t.Fatalf("second SetPresence = %d, %v; want a position after %d", p2, err, p1)
		}
		got, _ = db.UserPresence(ctx, alice)
		want = storage.Presence{UserID: alice, State: storage.PresenceUnavailable, StatusMsg: "lunch", LastActiveTS: 5000, StreamPos: p2}
		if got != want {
			t.Errorf("after change: %+v, want %+v", got, want)
		}

		// Touching takes no position and tells nobody; it only moves forwards
		// and skips users without a row.
		bob := createUser(t, db, "bob")
		if err := db.TouchPresence(ctx, []storage.PresenceTouch{{alice, 9000}, {bob, 9000}}); err != nil {
			t.Fatal(err)
		}
		if err := db.TouchPresence(ctx, []storage.PresenceTouch{{alice, 8000}}); err != nil {
			t.Fatal(err)
		}
		got, _ = db.UserPresence(ctx, alice)
		if got.LastActiveTS != 9000 || got.StreamPos != p2 {
			t.Errorf("after touch: last_active_ts %d stream_pos %d, want 9000 and %d", got.LastActiveTS, got.StreamPos, p2)
		}
		if _, err := db.UserPresence(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("touch created a row for bob: %v", err)
		}
		if pos, _ := db.StreamPosition(ctx); pos != p2 {
			t.Errorf("stream position %d after touches, want %d", pos, p2)
		}

		mu.Lock()
		gotFeed := slices.Clone(feed)
		mu.Unlock()
		var feedText []string
		for _, c := range gotFeed {
			if c.Presence == nil || c.Presence.StreamPos != c.Pos {
				t.Errorf("change %+v does not carry the stored presence", c)
				continue
			}
			feedText = append(feedText, fmt.Sprintf("%d %d %s %s", c.Pos, c.Kind, c.UserID, c.Presence.State))
		}
		wantFeed := []string{
			fmt.Sprintf("%d %d %s %s", p1, storage.ChangePresence, alice, storage.PresenceOnline),
			fmt.Sprintf("%d %d %s %s", p2, storage.ChangePresence, alice, storage.PresenceUnavailable),
		}
		if !slices.Equal(feedText, wantFeed) {
			t.Errorf("change feed %q, want %q", feedText, wantFeed)
		}

		// Only non-offline rows come back after a restart.
		if _, err := db.SetPresence(ctx, storage.Presence{UserID: bob, State: storage.PresenceOffline}); err != nil {
			t.Fatal(err)
		}
		active, err := db.PresenceNotOffline(ctx)
		if err != nil || len(active) != 1 || active[0].UserID != alice {
			t.Errorf("PresenceNotOffline = %+v, %v; want only alice", active, err)
		}
	})
}

func TestPresenceVisibleTo(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice, bob, carol, dave, erin, frank := createUser(t, db, "alice"), createUser(t, db, "bob"),
			createUser(t, db, "carol"), createUser(t, db, "dave"), createUser(t, db, "erin"), createUser(t, db, "frank")
		shared := rtNewRoom(t, db, "!shared:x")
		shared.member(alice, "join")
		shared.member(bob, "join")
		shared.member(carol, "join")
		shared.member(carol, "leave") // left: no longer shares
		shared.member(frank, "invite")
		apart := rtNewRoom(t, db, "!apart:x") // dave's room, without alice
		apart.member(dave, "join")
		apart.member(bob, "join")
		later := rtNewRoom(t, db, "!later:x")
		later.member(erin, "join")

		set := func(user, state string) int64 {
			t.Helper()
			pos, err := db.SetPresence(ctx, storage.Presence{UserID: user, State: state, LastActiveTS: 1})
			if err != nil {
				t.Fatal(err)
			}
			return pos
		}
		set(erin, storage.PresenceOnline) // before alice joins erin's room
		set(carol, storage.PresenceOnline)
		set(dave, storage.PresenceOnline)
		set(frank, storage.PresenceOnline)
		set(alice, storage.PresenceOnline)
		mid := set(bob, storage.PresenceOffline)
		last := set(bob, storage.PresenceOnline)

		users := func(q storage.PresenceQuery) []string {
			t.Helper()
			list, err := db.PresenceVisibleTo(ctx, q)
			if err != nil {
				t.Fatalf("PresenceVisibleTo(%+v): %v", q, err)
			}
			out := []string{}
			for _, p := range list {
				out = append(out, p.UserID+" "+p.State)
			}
			return out
		}
		check := func(what string, q storage.PresenceQuery, want ...string) {
			t.Helper()
			if want == nil {
				want = []string{}
			}
			if got := users(q); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", what, got, want)
			}
		}
		check("initial", storage.PresenceQuery{UserID: alice, Upto: last},
			alice+" online", bob+" online")
		check("incremental after bob went offline", storage.PresenceQuery{UserID: alice, Since: mid, Upto: last, IncludeOffline: true},
			bob+" online")
		check("up to bob's offline", storage.PresenceQuery{UserID: alice, Upto: mid},
			alice+" online")
		check("dave sees bob through their own room", storage.PresenceQuery{UserID: dave, Upto: last},
			dave+" online", bob+" online")
		check("nothing new", storage.PresenceQuery{UserID: alice, Since: last, Upto: last, IncludeOffline: true})

		// Alice joins erin's room: erin's older presence comes with it.
		later.member(alice, "join")
		check("new room", storage.PresenceQuery{UserID: alice, Since: last, Upto: last, IncludeOffline: true, NewRooms: []string{"!later:x"}},
			erin+" online")
		check("new room and changes", storage.PresenceQuery{UserID: alice, Since: mid, Upto: last, IncludeOffline: true, NewRooms: []string{"!later:x"}},
			erin+" online", bob+" online")

		// Offline users are left out unless asked for.
		gone := set(bob, storage.PresenceOffline)
		check("initial without offline", storage.PresenceQuery{UserID: alice, Upto: gone},
			erin+" online", alice+" online")
		check("offline included", storage.PresenceQuery{UserID: alice, Since: last, Upto: gone, IncludeOffline: true},
			bob+" offline")

		for _, tc := range []struct {
			a, b string
			want bool
		}{{alice, bob, true}, {bob, alice, true}, {alice, carol, false}, {alice, frank, false}, {alice, dave, false}, {bob, dave, true}, {alice, erin, true}} {
			if got, err := db.ShareJoinedRoom(ctx, tc.a, tc.b); err != nil || got != tc.want {
				t.Errorf("ShareJoinedRoom(%s, %s) = %v, %v; want %v", tc.a, tc.b, got, err, tc.want)
			}
		}
	})
}
