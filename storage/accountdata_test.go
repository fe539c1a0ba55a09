package storage_test

import (
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestAccountData(t *testing.T) {
	type put struct{ user, room, typ, content string }
	type entry struct{ room, typ, content string }
	tests := []struct {
		name  string
		puts  []put
		want  []entry // alice's entries in stream order (AccountDataSince 0)
		since int     // AccountDataSince(position of puts[since]) must return want[from:]
		from  int
	}{
		{
			name:  "global and room",
			puts:  []put{{"alice", "", "m.a", `{"a":1}`}, {"alice", "!r:x", "m.a", `{"room":true}`}},
			want:  []entry{{"", "m.a", `{"a":1}`}, {"!r:x", "m.a", `{"room":true}`}},
			since: 0, from: 1,
		},
		{
			name:  "replace moves the entry to the end",
			puts:  []put{{"alice", "", "m.a", `{"v":1}`}, {"alice", "", "m.b", `{}`}, {"alice", "", "m.a", `{"v":2}`}},
			want:  []entry{{"", "m.b", `{}`}, {"", "m.a", `{"v":2}`}},
			since: 1, from: 1,
		},
		{
			name:  "other users are separate",
			puts:  []put{{"alice", "", "m.a", `{"mine":1}`}, {"bob", "", "m.a", `{"bob":1}`}, {"bob", "", "m.b", `{}`}},
			want:  []entry{{"", "m.a", `{"mine":1}`}},
			since: 0, from: 1,
		},
		{
			name:  "exact bytes",
			puts:  []put{{"alice", "", "m.x", "{ \"z\": \"é🐇\\u0000\",\n  \"a\" : [1.50, 2e3] }"}},
			want:  []entry{{"", "m.x", "{ \"z\": \"é🐇\\u0000\",\n  \"a\" : [1.50, 2e3] }"}},
			since: 0, from: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
				db := storagetest.OpenDB(t, dsn)
				ctx := t.Context()
				var positions []int64
				last := int64(0)
				for _, p := range tt.puts {
					pos, err := db.PutAccountData(ctx, "@"+p.user+":x", p.room, p.typ, []byte(p.content))
					if err != nil {
						t.Fatalf("PutAccountData: %v", err)
					}
					if pos <= last {
						t.Errorf("PutAccountData position %d after %d, want increasing", pos, last)
					}
					if sp, err := db.StreamPosition(ctx); err != nil || sp != pos {
						t.Errorf("StreamPosition() = %d, %v; want %d", sp, err, pos)
					}
					last = pos
					positions = append(positions, pos)
				}

				got, err := db.AccountDataSince(ctx, "@alice:x", 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("AccountDataSince(0) = %d entries, want %d: %+v", len(got), len(tt.want), got)
				}
				for i, w := range tt.want {
					g := got[i]
					if g.RoomID != w.room || g.Type != w.typ || string(g.Content) != w.content {
						t.Errorf("entry %d = %q %q %q, want %q %q %q", i, g.RoomID, g.Type, g.Content, w.room, w.typ, w.content)
					}
					if i > 0 && g.StreamPos <= got[i-1].StreamPos {
						t.Errorf("entry %d at position %d after %d", i, g.StreamPos, got[i-1].StreamPos)
					}
					// The single-entry read agrees.
					c, err := db.AccountData(ctx, "@alice:x", w.room, w.typ)
					if err != nil || string(c) != w.content {
						t.Errorf("AccountData(%q, %q) = %q, %v; want %q", w.room, w.typ, c, err, w.content)
					}
				}
				later, err := db.AccountDataSince(ctx, "@alice:x", positions[tt.since])
				if err != nil {
					t.Fatal(err)
				}
				if len(later) != len(tt.want)-tt.from {
					t.Errorf("AccountDataSince(%d) = %+v, want the last %d entries", positions[tt.since], later, len(tt.want)-tt.from)
				} else {
					for i, g := range later {
						w := got[tt.from+i]
						if g.RoomID != w.RoomID || g.Type != w.Type || string(g.Content) != string(w.Content) || g.StreamPos != w.StreamPos {
							t.Errorf("AccountDataSince entry %d = %+v, want %+v", i, g, w)
						}
					}
				}
				if none, err := db.AccountDataSince(ctx, "@alice:x", last); err != nil || len(none) != 0 {
					t.Errorf("AccountDataSince(latest) = %+v, %v; want nothing", none, err)
				}
			})
		})
	}
}

func TestAccountDataNotFound(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		if pos, err := db.StreamPosition(ctx); err != nil || pos != 0 {
			t.Errorf("StreamPosition() of an empty database = %d, %v; want 0", pos, err)
		}
		if _, err := db.PutAccountData(ctx, "@alice:x", "!r:x", "m.a", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct{ user, room, typ string }{
			{"@alice:x", "", "m.a"}, // only the room entry exists
			{"@alice:x", "!other:x", "m.a"},
			{"@alice:x", "!r:x", "m.b"},
			{"@bob:x", "!r:x", "m.a"},
		} {
			_, err := db.AccountData(ctx, k.user, k.room, k.typ)
			wantErr(t, "AccountData("+k.user+", "+k.room+", "+k.typ+")", err, storage.ErrNotFound)
		}
	})
}
