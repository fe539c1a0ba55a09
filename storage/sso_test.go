package storage_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestSSOStorage(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		u := storage.User{UserID: "@ann:example.org", Localpart: "ann", DisplayName: "Ann"}
		if err := db.CreateSSOUser(ctx, u, "uni", "sub-1", "ann@example.org"); err != nil {
			t.Fatal(err)
		}
		// The same localpart, or the same subject, is a conflict; nothing
		// of the failed attempt stays.
		wantErr(t, "same localpart", db.CreateSSOUser(ctx, u, "uni", "sub-2", ""), storage.ErrConflict)
		wantErr(t, "same subject", db.CreateSSOUser(ctx, storage.User{UserID: "@ann2:example.org", Localpart: "ann2"}, "uni", "sub-1", "x@example.org"), storage.ErrConflict)
		if _, err := db.User(ctx, "@ann2:example.org"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("rolled-back user exists: %v", err)
		}
		if got, err := db.UserByExternalID(ctx, "uni", "sub-1"); err != nil || got != u.UserID {
			t.Fatalf("UserByExternalID = %q, %v", got, err)
		}
		if _, err := db.UserByExternalID(ctx, "other", "sub-1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("other provider: %v", err)
		}
		if ids, err := db.ExternalIDs(ctx, u.UserID); err != nil || len(ids) != 1 || ids[0].ExternalID != "sub-1" {
			t.Fatalf("ExternalIDs = %v, %v", ids, err)
		}
		if p, err := db.ThreePIDs(ctx, u.UserID); err != nil || len(p) != 1 || p[0].Address != "ann@example.org" {
			t.Fatalf("ThreePIDs = %v, %v", p, err)
		}

		now := time.Now().UnixMilli()
		lt := storage.LoginToken{UserID: u.UserID, ExpiresTS: now + 1000, AuthProvider: "uni", SessionID: "sid-1"}
		if err := db.CreateLoginToken(ctx, hash("t1"), lt); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ConsumeLoginToken(ctx, hash("t1"), now); err != nil || got != lt {
			t.Fatalf("consume = %+v, %v", got, err)
		}
		_, err := db.ConsumeLoginToken(ctx, hash("t1"), now)
		wantErr(t, "used twice", err, storage.ErrNotFound)
		if err := db.CreateLoginToken(ctx, hash("t2"), lt); err != nil {
			t.Fatal(err)
		}
		_, err = db.ConsumeLoginToken(ctx, hash("t2"), now+2000)
		wantErr(t, "expired", err, storage.ErrExpired)

		login(t, db, u.UserID, "DEV1", "a1", "")
		login(t, db, u.UserID, "DEV2", "a2", "")
		if err := db.LinkDeviceSession(ctx, u.UserID, "DEV1", "uni", "sid-1"); err != nil {
			t.Fatal(err)
		}
		if d, err := db.SessionDevices(ctx, "uni", "sid-1", ""); err != nil || len(d) != 1 || d[0].DeviceID != "DEV1" {
			t.Fatalf("SessionDevices = %v, %v", d, err)
		}
		if err := db.DeleteDevices(ctx, u.UserID, []string{"DEV1"}); err != nil {
			t.Fatal(err)
		}
		if d, err := db.SessionDevices(ctx, "uni", "", u.UserID); err != nil || len(d) != 0 {
			t.Fatalf("link outlived its device: %v, %v", d, err)
		}

		k1, err := db.ServerSecret(ctx, "k")
		if err != nil || len(k1) != 32 {
			t.Fatalf("ServerSecret = %x, %v", k1, err)
		}
		if k2, _ := db.ServerSecret(ctx, "k"); !bytes.Equal(k1, k2) {
			t.Fatal("the secret changed")
		}
	})
}
