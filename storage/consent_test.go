package storage_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestConsentRecords(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")

		st, err := db.ConsentStateOf(ctx, alice)
		if err != nil || st != (storage.ConsentState{}) {
			t.Fatalf("ConsentStateOf(new user) = %+v, %v; want zero", st, err)
		}
		if ok, err := db.HasConsented(ctx, alice, "1.0"); ok || err != nil {
			t.Fatalf("HasConsented before = %v, %v", ok, err)
		}
		if err := db.RecordConsent(ctx, alice, "1.0"); err != nil {
			t.Fatal(err)
		}
		first, _ := db.ConsentStateOf(ctx, alice)
		time.Sleep(3 * time.Millisecond)
		if err := db.RecordConsent(ctx, alice, "1.0"); err != nil { // again: keeps the first time
			t.Fatal(err)
		}
		if st, _ := db.ConsentStateOf(ctx, alice); st.Version != "1.0" || st.TS != first.TS || st.TS == 0 {
			t.Fatalf("after agreeing twice: %+v, first %+v", st, first)
		}
		if ok, _ := db.HasConsented(ctx, bob, "1.0"); ok {
			t.Fatal("bob has consented through alice's record")
		}
		time.Sleep(3 * time.Millisecond)
		if err := db.RecordConsent(ctx, alice, "2.0"); err != nil {
			t.Fatal(err)
		}
		if st, _ := db.ConsentStateOf(ctx, alice); st.Version != "2.0" {
			t.Fatalf("latest version = %q, want 2.0", st.Version)
		}
		h, err := db.ConsentHistory(ctx, alice)
		if err != nil || len(h) != 2 || h[0].Version != "1.0" || h[1].Version != "2.0" {
			t.Fatalf("history = %+v, %v", h, err)
		}

		// Notices are recorded once per version.
		if ok, err := db.RecordConsentNotice(ctx, alice, "1.0"); !ok || err != nil {
			t.Fatalf("first RecordConsentNotice = %v, %v", ok, err)
		}
		if ok, err := db.RecordConsentNotice(ctx, alice, "1.0"); ok || err != nil {
			t.Fatalf("second RecordConsentNotice = %v, %v; want false", ok, err)
		}
		if sent, _ := db.ConsentNoticeSent(ctx, alice, "1.0"); !sent {
			t.Fatal("ConsentNoticeSent = false")
		}
		if st, _ := db.ConsentStateOf(ctx, alice); st.NoticeSent != "1.0" {
			t.Fatalf("NoticeSent = %q", st.NoticeSent)
		}
		if err := db.ForgetConsentNotice(ctx, alice, "1.0"); err != nil {
			t.Fatal(err)
		}
		if sent, _ := db.ConsentNoticeSent(ctx, alice, "1.0"); sent {
			t.Fatal("ConsentNoticeSent after forgetting = true")
		}

		// Notices rooms.
		if _, err := db.NoticeRoom(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("NoticeRoom(none) err = %v", err)
		}
		for _, room := range []string{"!a:example.org", "!b:example.org"} {
			if err := db.SetNoticeRoom(ctx, alice, room); err != nil {
				t.Fatal(err)
			}
			if got, err := db.NoticeRoom(ctx, alice); got != room || err != nil {
				t.Fatalf("NoticeRoom = %q, %v; want %q", got, err, room)
			}
		}

		if err := db.DeactivateUser(ctx, bob); err != nil {
			t.Fatal(err)
		}
		ids, err := db.LocalUserIDs(ctx)
		if err != nil || !slices.Equal(ids, []string{alice}) {
			t.Fatalf("LocalUserIDs = %v, %v", ids, err)
		}
	})
}
