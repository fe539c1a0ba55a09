package storage_test

import (
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestPutReceipt(t *testing.T) {
	const alice, bob = "@alice:x", "@bob:x"
	type put struct {
		user, typ, thread string
		depth             int64
		changed           bool // whether PutReceipt should store it
	}
	tests := []struct {
		name string
		puts []put
		want []string // ReceiptsVisibleTo(alice, since 0), as "user type thread depth", stream order
	}{
		{
			name: "forwards only",
			puts: []put{
				{alice, storage.ReceiptRead, "", 3, true},
				{alice, storage.ReceiptRead, "", 3, false}, // same event
				{alice, storage.ReceiptRead, "", 2, false}, // backwards
				{alice, storage.ReceiptRead, "", 5, true},
			},
			want: []string{"@alice:x m.read  5"},
		},
		{
			name: "types and threads are separate markers",
			puts: []put{
				{alice, storage.ReceiptRead, "", 5, true},
				{alice, storage.ReceiptRead, "main", 2, true},
				{alice, storage.ReceiptRead, "$root", 3, true},
				{alice, storage.ReceiptReadPrivate, "", 1, true},
				{alice, storage.ReceiptRead, "main", 4, true},
			},
			want: []string{"@alice:x m.read  5", "@alice:x m.read $root 3", "@alice:x m.read.private  1", "@alice:x m.read main 4"},
		},
		{
			name: "users are separate",
			puts: []put{
				{alice, storage.ReceiptRead, "", 5, true},
				{bob, storage.ReceiptRead, "", 2, true},
				{bob, storage.ReceiptRead, "", 1, false},
			},
			want: []string{"@alice:x m.read  5", "@bob:x m.read  2"},
		},
		{
			name: "other users' private receipts are never visible",
			puts: []put{
				{bob, storage.ReceiptReadPrivate, "", 4, true},
				{bob, storage.ReceiptRead, "", 2, true},
				{bob, storage.ReceiptReadPrivate, "main", 5, true},
				{bob, "org.example.unknown", "", 5, true}, // anything but m.read counts as private
			},
			want: []string{"@bob:x m.read  2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
				db := storagetest.OpenDB(t, dsn)
				ctx := t.Context()
				room := rtNewRoom(t, db, "!r1:x").roomID
				last, err := db.StreamPosition(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i, p := range tt.puts {
					pos, err := db.PutReceipt(ctx, storage.NewReceipt{
						RoomID: room, UserID: p.user, Type: p.typ, ThreadID: p.thread,
						EventID: "$e" + string(rune('0'+p.depth)), EventDepth: p.depth, TS: int64(1000 + i),
					})
					if err != nil {
						t.Fatalf("put %d: %v", i, err)
					}
					cur, err := db.StreamPosition(ctx)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case p.changed && (pos <= last || cur != pos):
						t.Errorf("put %d: position %d (stream at %d), want a new position after %d", i, pos, cur, last)
					case !p.changed && (pos != 0 || cur != last):
						t.Errorf("put %d: position %d, stream moved %d -> %d; want nothing stored", i, pos, last, cur)
					}
					last = cur
				}
				rs, err := db.ReceiptsVisibleTo(ctx, alice, []string{room, "!other:x"}, 0)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rs {
					got = append(got, r.UserID+" "+r.Type+" "+r.ThreadID+" "+r.EventID[2:])
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("ReceiptsVisibleTo(alice) =\n%q\nwant\n%q", got, tt.want)
				}
			})
		})
	}
}

func TestReceiptsVisibleTo(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		r1 := rtNewRoom(t, db, "!r1:x").roomID
		r2 := rtNewRoom(t, db, "!r2:x").roomID
		r3 := rtNewRoom(t, db, "!r3:x").roomID
		put := func(room, user, typ, event string, depth int64) int64 {
			t.Helper()
			pos, err := db.PutReceipt(ctx, storage.NewReceipt{RoomID: room, UserID: user, Type: typ, EventID: event, EventDepth: depth, TS: 42})
			if err != nil || pos == 0 {
				t.Fatalf("PutReceipt: %d, %v", pos, err)
			}
			return pos
		}
		p1 := put(r1, "@bob:x", storage.ReceiptRead, "$a", 1)
		put(r2, "@bob:x", storage.ReceiptRead, "$b", 1)
		p3 := put(r1, "@alice:x", storage.ReceiptReadPrivate, "$c", 2)
		put(r3, "@bob:x", storage.ReceiptRead, "$d", 1)
		p5 := put(r1, "@bob:x", storage.ReceiptRead, "$e", 3) // replaces $a

		ids := func(rs []storage.Receipt) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.EventID)
			}
			return out
		}
		for _, c := range []struct {
			viewer string
			rooms  []string
			since  int64
			want   []string
		}{
			{"@alice:x", []string{r1, r2}, 0, []string{"$b", "$c", "$e"}},
			{"@alice:x", []string{r1, r2}, p1, []string{"$b", "$c", "$e"}},
			{"@alice:x", []string{r1, r2}, p3, []string{"$e"}},
			{"@alice:x", []string{r1}, p5, nil},
			{"@bob:x", []string{r1}, 0, []string{"$e"}}, // not alice's private receipt
			{"@carol:x", []string{r1, r2, r3}, 0, []string{"$b", "$d", "$e"}},
			{"@alice:x", nil, 0, nil},
		} {
			rs, err := db.ReceiptsVisibleTo(ctx, c.viewer, c.rooms, c.since)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(rs); !slices.Equal(got, c.want) {
				t.Errorf("ReceiptsVisibleTo(%s, %v, %d) = %v, want %v", c.viewer, c.rooms, c.since, got, c.want)
			}
		}
		rs, err := db.ReceiptsVisibleTo(ctx, "@carol:x", []string{r1}, 0)
		if err != nil || len(rs) != 1 {
			t.Fatalf("ReceiptsVisibleTo: %v, %v", rs, err)
		}
		if want := (storage.Receipt{RoomID: r1, UserID: "@bob:x", Type: storage.ReceiptRead, EventID: "$e", TS: 42, StreamPos: p5}); rs[0] != want {
			t.Errorf("receipt = %+v, want %+v", rs[0], want)
		}

		own, err := db.OwnReceipts(ctx, "@alice:x", r1)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(own); !slices.Equal(got, []string{"$c"}) {
			t.Errorf("OwnReceipts(alice) = %v, want [$c]", got)
		}
		if own, err := db.OwnReceipts(ctx, "@bob:x", r2); err != nil || !slices.Equal(ids(own), []string{"$b"}) {
			t.Errorf("OwnReceipts(bob, r2) = %v, %v", ids(own), err)
		}
	})
}
