package storage_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage/storagetest"
)

func TestUpdatePushRules(t *testing.T) {
	errRefused := errors.New("refused")
	steps := []struct {
		name        string
		wantCurrent string // what update is handed; "" means nil
		next        string
		err         error
		wantStored  string
	}{
		{"first", "", `{"v":1}`, nil, `{"v":1}`},
		{"replace", `{"v":1}`, `{"v":2}`, nil, `{"v":2}`},
		{"error stores nothing", `{"v":2}`, `{"v":3}`, errRefused, `{"v":2}`},
		{"after the error", `{"v":2}`, `{"v":4}`, nil, `{"v":4}`},
	}
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		const alice = "@alice:x"
		if r, err := db.PushRules(ctx, alice); r != nil || err != nil {
			t.Fatalf("PushRules before any update = %q, %v; want nil, nil", r, err)
		}
		for _, s := range steps {
			before, _ := db.StreamPosition(ctx)
			err := db.UpdatePushRules(ctx, alice, func(current []byte) ([]byte, error) {
				if (s.wantCurrent == "") != (current == nil) || string(current) != s.wantCurrent {
					t.Errorf("%s: update got %q, want %q", s.name, current, s.wantCurrent)
				}
				return []byte(s.next), s.err
			})
			wantErr(t, s.name, err, s.err)
			r, err := db.PushRules(ctx, alice)
			if err != nil || string(r) != s.wantStored {
				t.Errorf("%s: PushRules = %q, %v; want %q", s.name, r, err, s.wantStored)
			}
			after, _ := db.StreamPosition(ctx)
			if s.err == nil && after <= before || s.err != nil && after != before {
				t.Errorf("%s: stream position %d -> %d", s.name, before, after)
			}
		}
		if r, err := db.PushRules(ctx, "@bob:x"); r != nil || err != nil {
			t.Errorf("PushRules of another user = %q, %v; want nil, nil", r, err)
		}
	})
}

// TestUpdatePushRulesConcurrent checks that concurrent read-modify-write
// updates never lose one another, starting from a user without a document.
func TestUpdatePushRulesConcurrent(t *testing.T) {
	const workers, perWorker = 8, 10
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		for _, user := range []string{"@alice:x", "@bob:x"} {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWorker {
						err := db.UpdatePushRules(ctx, user, func(current []byte) ([]byte, error) {
							var items []string
							if current != nil {
								if err := json.Unmarshal(current, &items); err != nil {
									return nil, err
								}
							}
							return json.Marshal(append(items, fmt.Sprintf("%d-%d", w, i)))
						})
						if err != nil {
							t.Errorf("UpdatePushRules: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			r, err := db.PushRules(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			var items []string
			if err := json.Unmarshal(r, &items); err != nil {
				t.Fatalf("stored push rules %q: %v", r, err)
			}
			slices.Sort(items)
			if n := len(slices.Compact(items)); n != workers*perWorker {
				t.Errorf("%s: %d distinct updates stored, want %d", user, n, workers*perWorker)
			}
		}
	})
}
