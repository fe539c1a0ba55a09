package storage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestOAuthClients(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		now := time.Now().UnixMilli()

		id, created, err := db.RegisterOAuthClient(ctx, "CLIENT1", `{"client_uri":"https://a.example"}`, hash("md-a"), now)
		if err != nil || id != "CLIENT1" || !created {
			t.Fatalf("first registration: %q %v %v", id, created, err)
		}
		// The same metadata keeps its client ID.
		id, created, err = db.RegisterOAuthClient(ctx, "CLIENT2", `{"client_uri":"https://a.example"}`, hash("md-a"), now+1)
		if err != nil || id != "CLIENT1" || created {
			t.Fatalf("same metadata: %q %v %v", id, created, err)
		}
		if got, err := db.OAuthClientByHash(ctx, hash("md-a")); err != nil || got != "CLIENT1" {
			t.Fatalf("OAuthClientByHash = %q, %v", got, err)
		}
		_, err = db.OAuthClientByHash(ctx, hash("md-x"))
		wantErr(t, "unknown metadata", err, storage.ErrNotFound)
		c, err := db.OAuthClient(ctx, "CLIENT1")
		if err != nil || c.Metadata != `{"client_uri":"https://a.example"}` {
			t.Fatalf("OAuthClient = %+v, %v", c, err)
		}
		_, err = db.OAuthClient(ctx, "CLIENT2")
		wantErr(t, "unknown client", err, storage.ErrNotFound)

		// A client with a session survives its idle time; one without
		// does not, once another registration comes.
		user := createUser(t, db, "ann")
		login(t, db, user, "DEV1", "a1", "r1")
		if _, _, err := db.RegisterOAuthClient(ctx, "CLIENT3", `{}`, hash("md-b"), now); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateOAuthSession(ctx, storage.OAuthSession{UserID: user, DeviceID: "DEV1", ClientID: "CLIENT3", Scope: "s"}, hash("code")); err != nil {
			t.Fatal(err)
		}
		later := now + 25*60*60*1000
		if _, _, err := db.RegisterOAuthClient(ctx, "CLIENT4", `{}`, hash("md-c"), later); err != nil {
			t.Fatal(err)
		}
		_, err = db.OAuthClient(ctx, "CLIENT1")
		wantErr(t, "idle client", err, storage.ErrNotFound)
		if _, err := db.OAuthClient(ctx, "CLIENT3"); err != nil {
			t.Fatalf("client with a session: %v", err)
		}
	})
}

func TestOAuthCodesAndSessions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		now := time.Now().UnixMilli()
		user := createUser(t, db, "bea")
		code := storage.OAuthCode{
			ClientID: "C", RedirectURI: "io.element:/callback", UserID: user, DeviceID: "DEV1", Scope: "scope",
			CodeChallenge: "challenge", AuthProvider: "uni", SessionID: "sid", ExpiresTS: now + 1000,
		}
		if err := db.CreateOAuthCode(ctx, hash("c1"), code, now); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ConsumeOAuthCode(ctx, hash("c1"), now); err != nil || got != code {
			t.Fatalf("consume = %+v, %v", got, err)
		}
		// Second use: ErrUsed, with the code, so that its session can go.
		got, err := db.ConsumeOAuthCode(ctx, hash("c1"), now)
		if !errors.Is(err, storage.ErrUsed) || got.DeviceID != "DEV1" {
			t.Fatalf("second consume = %+v, %v", got, err)
		}
		_, err = db.ConsumeOAuthCode(ctx, hash("nope"), now)
		wantErr(t, "unknown code", err, storage.ErrNotFound)
		if err := db.CreateOAuthCode(ctx, hash("c2"), code, now); err != nil {
			t.Fatal(err)
		}
		_, err = db.ConsumeOAuthCode(ctx, hash("c2"), now+2000)
		wantErr(t, "expired code", err, storage.ErrExpired)
		_, err = db.ConsumeOAuthCode(ctx, hash("c2"), now)
		wantErr(t, "expired code, again", err, storage.ErrUsed)
		// Creating a code removes expired ones.
		if err := db.CreateOAuthCode(ctx, hash("c3"), code, now+5000); err != nil {
			t.Fatal(err)
		}
		_, err = db.ConsumeOAuthCode(ctx, hash("c1"), now)
		wantErr(t, "removed code", err, storage.ErrNotFound)

		// Sessions: by device and by code, gone with the device.
		login(t, db, user, "DEV1", "a1", "r1")
		sess := storage.OAuthSession{UserID: user, DeviceID: "DEV1", ClientID: "C", Scope: "scope"}
		if err := db.CreateOAuthSession(ctx, sess, hash("c1")); err != nil {
			t.Fatal(err)
		}
		if got, err := db.OAuthSession(ctx, user, "DEV1"); err != nil || got != sess {
			t.Fatalf("OAuthSession = %+v, %v", got, err)
		}
		if got, err := db.OAuthSessionByCode(ctx, hash("c1")); err != nil || got != sess {
			t.Fatalf("OAuthSessionByCode = %+v, %v", got, err)
		}
		if d, err := db.RefreshTokenDevice(ctx, hash("r1")); err != nil || d != (storage.DeviceRef{UserID: user, DeviceID: "DEV1"}) {
			t.Fatalf("RefreshTokenDevice = %+v, %v", d, err)
		}
		_, err = db.RefreshTokenDevice(ctx, hash("a1"))
		wantErr(t, "access token as refresh token", err, storage.ErrNotFound)
		if err := db.DeleteDevices(ctx, user, []string{"DEV1"}); err != nil {
			t.Fatal(err)
		}
		_, err = db.OAuthSession(ctx, user, "DEV1")
		wantErr(t, "session of a deleted device", err, storage.ErrNotFound)
		_, err = db.OAuthSessionByCode(ctx, hash("c1"))
		wantErr(t, "session by code of a deleted device", err, storage.ErrNotFound)
	})
}
