package storage_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

const now = 1_800_000_000_000 // the clock handed to Refresh

// refresh exchanges refresh token old for access token access and refresh
// token next (expiring at now+1h).
func refresh(ctx context.Context, db *storage.DB, old, access, next string) error {
	_, _, err := db.Refresh(ctx, hash(old), storage.NewTokens{AccessHash: hash(access),
		RefreshHash: hash(next), RefreshExpiresTS: now + 3_600_000}, now)
	return err
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name string
		// run gets a device logged in with access token a0 and refresh
		// token r0, already refreshed once to a1/r1 (not yet confirmed).
		run func(t *testing.T, ctx context.Context, db *storage.DB)
		// The refresh tokens that must still work afterwards and those that
		// must not; likewise for access tokens.
		liveRefresh, deadRefresh []string
		liveAccess, deadAccess   []string
	}{
		{
			name:        "unconfirmed",
			run:         func(t *testing.T, ctx context.Context, db *storage.DB) {},
			liveRefresh: []string{"r0", "r1"}, liveAccess: []string{"a1"}, deadAccess: []string{"a0"},
		},
		{
			name: "confirmed by using the new access token",
			run: func(t *testing.T, ctx context.Context, db *storage.DB) {
				o, err := db.TokenOwner(ctx, hash("a1"))
				if err != nil || !o.RefreshPending || !bytes.Equal(o.RefreshHash, hash("r1")) {
					t.Fatalf("TokenOwner(a1) = %+v, %v; want RefreshPending for r1", o, err)
				}
				if err := db.ConfirmRefresh(ctx, o.RefreshHash); err != nil {
					t.Fatalf("ConfirmRefresh: %v", err)
				}
				if o, err := db.TokenOwner(ctx, hash("a1")); err != nil || o.RefreshPending {
					t.Fatalf("TokenOwner(a1) after ConfirmRefresh = %+v, %v; want no RefreshPending", o, err)
				}
			},
			liveRefresh: []string{"r1"}, deadRefresh: []string{"r0"},
			liveAccess: []string{"a1"}, deadAccess: []string{"a0"},
		},
		{
			name: "confirmed by using the new refresh token",
			run: func(t *testing.T, ctx context.Context, db *storage.DB) {
				if err := refresh(ctx, db, "r1", "a2", "r2"); err != nil {
					t.Fatalf("Refresh(r1): %v", err)
				}
			},
			// r1 in turn stays usable until a2 or r2 is used.
			liveRefresh: []string{"r1", "r2"}, deadRefresh: []string{"r0"},
			liveAccess: []string{"a2"}, deadAccess: []string{"a0", "a1"},
		},
		{
			name: "retried with the old refresh token",
			run: func(t *testing.T, ctx context.Context, db *storage.DB) {
				if err := refresh(ctx, db, "r0", "a2", "r2"); err != nil {
					t.Fatalf("Refresh(r0) again: %v", err)
				}
			},
			// The lost response's tokens are dropped; r0 works until r2 is used.
			liveRefresh: []string{"r0", "r2"}, deadRefresh: []string{"r1"},
			liveAccess: []string{"a2"}, deadAccess: []string{"a0", "a1"},
		},
		{
			name: "confirm of an unknown token is a no-op",
			run: func(t *testing.T, ctx context.Context, db *storage.DB) {
				if err := db.ConfirmRefresh(ctx, hash("unknown")); err != nil {
					t.Fatalf("ConfirmRefresh(unknown): %v", err)
				}
			},
			liveRefresh: []string{"r0", "r1"}, liveAccess: []string{"a1"},
		},
		{
			name: "logout revokes the refresh token",
			run: func(t *testing.T, ctx context.Context, db *storage.DB) {
				if err := db.DeleteAccessToken(ctx, hash("a1")); err != nil {
					t.Fatal(err)
				}
			},
			liveRefresh: []string{"r0"}, deadRefresh: []string{"r1"}, deadAccess: []string{"a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
				db := storagetest.OpenDB(t, dsn)
				ctx := t.Context()
				alice := createUser(t, db, "alice")
				login(t, db, alice, "D", "a0", "r0")
				if o, err := db.TokenOwner(ctx, hash("a0")); err != nil || o.RefreshPending || !bytes.Equal(o.RefreshHash, hash("r0")) {
					t.Fatalf("TokenOwner(a0) = %+v, %v; want refresh hash r0, nothing pending", o, err)
				}
				user, dev, err := db.Refresh(ctx, hash("r0"), storage.NewTokens{AccessHash: hash("a1"),
					AccessExpiresTS: now + 60_000, RefreshHash: hash("r1")}, now)
				if err != nil || user != alice || dev != "D" {
					t.Fatalf("Refresh(r0) = %q, %q, %v; want %q, D", user, dev, err, alice)
				}
				if o, err := db.TokenOwner(ctx, hash("a1")); err != nil || o.ExpiresTS != now+60_000 || o.DeviceID != "D" || !o.RefreshPending {
					t.Fatalf("TokenOwner(a1) = %+v, %v; want expiry, device D, RefreshPending", o, err)
				}

				tt.run(t, ctx, db)

				for _, a := range tt.liveAccess {
					if !liveToken(t, db, a) {
						t.Errorf("access token %s revoked, want live", a)
					}
				}
				for _, a := range tt.deadAccess {
					if liveToken(t, db, a) {
						t.Errorf("access token %s live, want revoked", a)
					}
				}
				// Using a refresh token changes the state, so look at the rows
				// for all of them, then use the dead ones (failing changes
				// nothing) and one live one.
				raw := storagetest.RawDB(t, dsn)
				for _, r := range append(tt.liveRefresh, tt.deadRefresh...) {
					var n int
					if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1`, hash(r)).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if want := slices.Contains(tt.liveRefresh, r); (n == 1) != want {
						t.Errorf("refresh token %s stored = %v, want %v", r, n == 1, want)
					}
				}
				for _, r := range tt.deadRefresh {
					wantErr(t, "Refresh("+r+")", refresh(ctx, db, r, "x", "y"), storage.ErrNotFound)
				}
				if len(tt.liveRefresh) > 0 {
					r := tt.liveRefresh[0]
					wantErr(t, "Refresh("+r+")", refresh(ctx, db, r, "x", "y"), nil)
				}
			})
		})
	}
}

func TestRefreshFailures(t *testing.T) {
	tests := []struct {
		name      string
		expires   int64 // of the refresh token; 0: never
		now       int64
		token     string
		want      error
		wantOwner bool
	}{
		{"valid", now + 1, now, "r0", nil, true},
		{"never expires", 0, now, "r0", nil, true},
		{"expires now", now, now, "r0", storage.ErrExpired, false},
		{"expired", now - 1, now, "r0", storage.ErrExpired, false},
		{"unknown", now + 1, now, "unknown", storage.ErrNotFound, false},
	}
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		alice := createUser(t, db, "alice")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				if err := db.LoginDevice(ctx, alice, "D", "", storage.NewTokens{AccessHash: hash("a0"),
					RefreshHash: hash("r0"), RefreshExpiresTS: tt.expires}); err != nil {
					t.Fatal(err)
				}
				user, dev, err := db.Refresh(ctx, hash(tt.token), storage.NewTokens{AccessHash: hash("a1")}, tt.now)
				wantErr(t, "Refresh", err, tt.want)
				if tt.wantOwner && (user != alice || dev != "D") {
					t.Errorf("Refresh = %q, %q; want %q, D", user, dev, alice)
				}
				// A failed refresh changes nothing.
				if tt.want != nil && (!liveToken(t, db, "a0") || liveToken(t, db, "a1")) {
					t.Error("failed Refresh changed the access tokens")
				}
			})
		}
	})
}
