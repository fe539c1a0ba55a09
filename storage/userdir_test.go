package storage_test

import (
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// TestSearchUserDirectoryAllUsers checks matching, ranking, the limit and
// who is never found, over every local user. Sharing rooms is covered by
// the integration tests (clientapi/userdir_test.go).
func TestSearchUserDirectoryAllUsers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		names := map[string]string{
			"omer":    "Ömer Çelik",
			"zoe":     "ZOË Straße",
			"bjorn":   "Bjørn Ødegård",
			"celine":  "Céline Dupont",
			"alice":   "",
			"malice":  "Dr. Evil",
			"under_s": "Percent 100%",
			"gone":    "Gone Celik",
			"helper":  "Support Celik",
			"notices": "Celik Notices",
		}
		for lp, dn := range names {
			typ := ""
			if lp == "helper" {
				typ = "support"
			}
			if err := db.CreateUser(ctx, storage.User{UserID: "@" + lp + ":example.org", Localpart: lp, DisplayName: dn, UserType: typ}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.DeactivateUser(ctx, "@gone:example.org"); err != nil {
			t.Fatal(err)
		}
		search := func(term string, limit int) ([]string, bool) {
			t.Helper()
			res, limited, err := db.SearchUserDirectory(ctx, storage.UserDirectoryQuery{
				Searcher: "@alice:example.org", Term: term, AllUsers: true, Limit: limit,
				Exclude: []string{"@notices:example.org"},
			})
			if err != nil {
				t.Fatalf("search %q: %v", term, err)
			}
			ids := []string{}
			for _, u := range res {
				ids = append(ids, u.UserID)
			}
			return ids, limited
		}
		for _, tc := range []struct {
			term string
			want []string
		}{
			{"celik", []string{"@omer:example.org"}}, // not deactivated, support or excluded users
			{"ÇELIK", []string{"@omer:example.org"}},
			{"omer cel", []string{"@omer:example.org"}},
			{"strasse", []string{"@zoe:example.org"}},
			{"zoe", []string{"@zoe:example.org"}},
			{"odegard", []string{"@bjorn:example.org"}},
			{"CÉLINE", []string{"@celine:example.org"}},
			{"@celine:example", []string{"@celine:example.org"}},
			// Prefix matches first: alice (localpart) before malice.
			{"alice", []string{"@alice:example.org", "@malice:example.org"}},
			{"%", []string{"@under_s:example.org"}},
			{"_", []string{"@under_s:example.org"}},
			{"d_r", nil}, // "_" is not a wildcard ("der" would match),
			{"nobody", nil},
			{"   ", nil},
			{"celik dupont", nil}, // every word must match
		} {
			got, limited := search(tc.term, 10)
			if !slices.Equal(got, append([]string{}, tc.want...)) || limited {
				t.Errorf("search %q = %v (limited %v), want %v", tc.term, got, limited, tc.want)
			}
		}

		// limit and limited.
		if got, limited := search("example.org", 3); len(got) != 3 || !limited {
			t.Errorf("limit 3: %v, limited %v", got, limited)
		}
		if got, limited := search("example.org", 7); len(got) != 7 || limited {
			t.Errorf("limit 7 of 7: %v, limited %v", got, limited)
		}

		// A changed display name is found at once, the old one no more.
		if err := db.SetDisplayName(ctx, "@malice:example.org", "Mallory Ünal"); err != nil {
			t.Fatal(err)
		}
		if got, _ := search("unal", 10); !slices.Equal(got, []string{"@malice:example.org"}) {
			t.Errorf("after rename: %v", got)
		}
		if got, _ := search("evil", 10); len(got) != 0 {
			t.Errorf("old name still found: %v", got)
		}
	})
}
