package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestCreateUser(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		before := time.Now().UnixMilli()
		alice := storage.User{UserID: "@alice:example.org", Localpart: "alice", PasswordHash: "$2a$hash",
			DisplayName: "Alice", AvatarURL: "mxc://example.org/a"}
		if err := db.CreateUser(ctx, alice); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		tests := []struct {
			name string
			user storage.User
			want error
		}{
			{"same user ID", storage.User{UserID: "@alice:example.org", Localpart: "alice"}, storage.ErrConflict},
			{"same localpart", storage.User{UserID: "@alice:other.example", Localpart: "alice"}, storage.ErrConflict},
			{"admin bot", storage.User{UserID: "@bot:example.org", Localpart: "bot", IsAdmin: true, UserType: "bot"}, nil},
			{"no password", storage.User{UserID: "@sso:example.org", Localpart: "sso"}, nil},
		}
		for _, tt := range tests {
			err := db.CreateUser(ctx, tt.user)
			wantErr(t, tt.name, err, tt.want)
			if err != nil {
				continue
			}
			got, err := db.User(ctx, tt.user.UserID)
			if err != nil {
				t.Fatalf("%s: User: %v", tt.name, err)
			}
			got.CreatedTS = 0
			if got != tt.user {
				t.Errorf("%s: User() = %+v, want %+v", tt.name, got, tt.user)
			}
		}

		got, err := db.User(ctx, alice.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedTS < before || got.CreatedTS > time.Now().UnixMilli() {
			t.Errorf("CreatedTS = %d, want between %d and now", got.CreatedTS, before)
		}
		got.CreatedTS = 0
		if got != alice {
			t.Errorf("User() = %+v, want %+v", got, alice)
		}
		_, err = db.User(ctx, "@nobody:example.org")
		wantErr(t, "User(unknown)", err, storage.ErrNotFound)
	})
}

func TestUserSetters(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		const id = "@alice:example.org"
		if err := db.CreateUser(ctx, storage.User{UserID: id, Localpart: "alice", PasswordHash: "old"}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			set   func(ctx context.Context, userID string) error
			check func(u storage.User) bool
		}{
			{"password", func(ctx context.Context, u string) error { return db.SetPasswordHash(ctx, u, "new") },
				func(u storage.User) bool { return u.PasswordHash == "new" }},
			{"admin on", func(ctx context.Context, u string) error { return db.SetAdmin(ctx, u, true) },
				func(u storage.User) bool { return u.IsAdmin }},
			{"admin on again", func(ctx context.Context, u string) error { return db.SetAdmin(ctx, u, true) },
				func(u storage.User) bool { return u.IsAdmin }},
			{"admin off", func(ctx context.Context, u string) error { return db.SetAdmin(ctx, u, false) },
				func(u storage.User) bool { return !u.IsAdmin }},
			{"display name", func(ctx context.Context, u string) error { return db.SetDisplayName(ctx, u, "Alïce 🐇") },
				func(u storage.User) bool { return u.DisplayName == "Alïce 🐇" }},
			{"clear display name", func(ctx context.Context, u string) error { return db.SetDisplayName(ctx, u, "") },
				func(u storage.User) bool { return u.DisplayName == "" }},
			{"avatar", func(ctx context.Context, u string) error { return db.SetAvatarURL(ctx, u, "mxc://example.org/x") },
				func(u storage.User) bool { return u.AvatarURL == "mxc://example.org/x" }},
			{"clear avatar", func(ctx context.Context, u string) error { return db.SetAvatarURL(ctx, u, "") },
				func(u storage.User) bool { return u.AvatarURL == "" }},
		}
		for _, tt := range tests {
			if err := tt.set(ctx, id); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			u, err := db.User(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(u) {
				t.Errorf("%s: user is now %+v", tt.name, u)
			}
			wantErr(t, tt.name+" of unknown user", tt.set(ctx, "@nobody:example.org"), storage.ErrNotFound)
		}
	})
}

func TestDeactivateUser(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := storage.User{UserID: "@alice:example.org", Localpart: "alice", PasswordHash: "pw",
			DisplayName: "Alice", AvatarURL: "mxc://example.org/a"}
		if err := db.CreateUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		bob := createUser(t, db, "bob")
		login(t, db, alice.UserID, "A1", "a1", "")
		login(t, db, alice.UserID, "A2", "a2", "ra2")
		login(t, db, bob, "B1", "b1", "rb1")

		if err := db.DeactivateUser(ctx, alice.UserID); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		u, err := db.User(ctx, alice.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Deactivated || u.PasswordHash != "" || u.DisplayName != "" || u.AvatarURL != "" {
			t.Errorf("deactivated user = %+v, want deactivated without password and profile", u)
		}
		if ds, err := db.Devices(ctx, alice.UserID); err != nil || len(ds) != 0 {
			t.Errorf("Devices after deactivation = %v, %v; want none", ds, err)
		}
		for _, tok := range []string{"a1", "a2"} {
			if liveToken(t, db, tok) {
				t.Errorf("access token %s survived deactivation", tok)
			}
		}
		_, _, err = db.Refresh(ctx, hash("ra2"), storage.NewTokens{AccessHash: hash("new")}, time.Now().UnixMilli())
		wantErr(t, "Refresh after deactivation", err, storage.ErrNotFound)

		// The ID stays taken; other users are untouched.
		wantErr(t, "CreateUser of a deactivated ID", db.CreateUser(ctx, storage.User{UserID: alice.UserID, Localpart: "alice"}), storage.ErrConflict)
		if !liveToken(t, db, "b1") {
			t.Error("bob's token was revoked by alice's deactivation")
		}
		wantErr(t, "DeactivateUser(unknown)", db.DeactivateUser(ctx, "@nobody:example.org"), storage.ErrNotFound)
	})
}
