package storage_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestFilters(t *testing.T) {
	const (
		f1 = `{"room":{"timeline":{"limit":10}}}`
		f2 = `{"presence":{"not_types":["*"]}}`
	)
	puts := []struct {
		user, filter, wantID string
	}{
		{"@alice:x", f1, "0"},
		{"@alice:x", f2, "1"},
		{"@alice:x", f1, "0"}, // identical: reused
		{"@alice:x", f1 + " ", "2"},
		{"@bob:x", f2, "0"}, // ids count per user
		{"@bob:x", f1, "1"},
	}
	gets := []struct {
		user, id, want string // want "": ErrNotFound
	}{
		{"@alice:x", "0", f1},
		{"@alice:x", "1", f2},
		{"@alice:x", "2", f1 + " "},
		{"@bob:x", "0", f2},
		{"@alice:x", "3", ""},
		{"@carol:x", "0", ""},
		{"@alice:x", "-1", ""},
		{"@alice:x", "abc", ""},
		{"@alice:x", "", ""},
		{"@alice:x", "99999999999999999999999", ""},
	}
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		for _, p := range puts {
			id, err := db.PutFilter(ctx, p.user, []byte(p.filter))
			if err != nil || id != p.wantID {
				t.Errorf("PutFilter(%s, %s) = %q, %v; want %q", p.user, p.filter, id, err, p.wantID)
			}
		}
		for _, g := range gets {
			f, err := db.Filter(ctx, g.user, g.id)
			if g.want == "" {
				wantErr(t, "Filter("+g.user+", "+g.id+")", err, storage.ErrNotFound)
				continue
			}
			if err != nil || string(f) != g.want {
				t.Errorf("Filter(%s, %s) = %q, %v; want %q", g.user, g.id, f, err, g.want)
			}
		}
	})
}

// TestPutFilterConcurrent checks that concurrent uploads for one user each
// get an ID of their own (on PostgreSQL they race for the next ID).
func TestPutFilterConcurrent(t *testing.T) {
	const n = 16
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if ids[i], err = db.PutFilter(t.Context(), "@alice:x", []byte(strconv.Itoa(i))); err != nil {
					t.Errorf("PutFilter: %v", err)
				}
			}()
		}
		wg.Wait()
		for i, id := range ids {
			if f, err := db.Filter(t.Context(), "@alice:x", id); err != nil || string(f) != strconv.Itoa(i) {
				t.Errorf("Filter(%q) = %q, %v; want %d", id, f, err, i)
			}
		}
	})
}
