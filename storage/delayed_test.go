package storage_test

import (
	"errors"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestDelayedEvents(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		key := "m.member"
		add := func(id, user, txn string, stateKey *string, sendTS int64) string {
			t.Helper()
			got, err := db.AddDelayedEvent(ctx, storage.DelayedEvent{
				DelayID: id, UserID: user, DeviceID: "DEV", RoomID: "!r:x", Type: "m.t", StateKey: stateKey,
				Content: []byte(`{"a":1}`), TxnID: txn, DelayMS: 1000, SendTS: sendTS, CreatedTS: sendTS - 1000,
			}, 3)
			if err != nil {
				t.Fatalf("AddDelayedEvent(%s): %v", id, err)
			}
			return got
		}
		add("d1", "@a:x", "t1", nil, 5000)
		add("d2", "@a:x", "", &key, 3000)
		add("d3", "@b:x", "", nil, 9000)
		// A retried transaction returns the first delay ID and adds nothing.
		if got := add("d4", "@a:x", "t1", nil, 7000); got != "d1" {
			t.Errorf("retried txn: got %s, want d1", got)
		}
		add("d5", "@a:x", "t2", nil, 8000)
		if _, err := db.AddDelayedEvent(ctx, storage.DelayedEvent{DelayID: "d6", UserID: "@a:x", Content: []byte(`{}`)}, 3); !errors.Is(err, storage.ErrDelayedLimit) {
			t.Errorf("fourth event of @a:x: err %v, want ErrDelayedLimit", err)
		}

		list, err := db.DelayedEventsOf(ctx, "@a:x")
		if err != nil || len(list) != 3 || list[0].DelayID != "d2" || list[1].DelayID != "d1" || list[2].DelayID != "d5" {
			t.Fatalf("DelayedEventsOf: %+v, %v", list, err)
		}
		if list[0].StateKey == nil || *list[0].StateKey != key || list[1].StateKey != nil || string(list[1].Content) != `{"a":1}` || list[1].TxnID != "t1" {
			t.Errorf("fields not kept: %+v", list[:2])
		}
		if next, ok, err := db.NextDelayedSendTS(ctx); err != nil || !ok || next != 3000 {
			t.Errorf("NextDelayedSendTS = %d %v %v, want 3000", next, ok, err)
		}
		due, err := db.DueDelayedEvents(ctx, 5000, 10)
		if err != nil || len(due) != 2 || due[0].DelayID != "d2" || due[1].DelayID != "d1" {
			t.Errorf("DueDelayedEvents(5000) = %+v, %v", due, err)
		}
		// Restart: send_ts becomes now + delay.
		if ok, err := db.RestartDelayedEvent(ctx, "d2", 4500); err != nil || !ok {
			t.Fatalf("RestartDelayedEvent: %v %v", ok, err)
		}
		if e, err := db.DelayedEventByID(ctx, "d2"); err != nil || e == nil || e.SendTS != 5500 {
			t.Errorf("after restart: %+v %v", e, err)
		}
		if ok, err := db.RestartDelayedEvent(ctx, "nope", 1); err != nil || ok {
			t.Errorf("restart unknown: %v %v", ok, err)
		}
		if ok, err := db.DeleteDelayedEvent(ctx, "d1"); err != nil || !ok {
			t.Errorf("delete: %v %v", ok, err)
		}
		if ok, err := db.DeleteDelayedEvent(ctx, "d1"); err != nil || ok {
			t.Errorf("delete twice: %v %v", ok, err)
		}
		if e, err := db.DelayedEventByID(ctx, "d1"); err != nil || e != nil {
			t.Errorf("deleted event still there: %+v %v", e, err)
		}
		// Replacing state cancels other users' delayed events for it only.
		other := "m.member"
		if _, err := db.AddDelayedEvent(ctx, storage.DelayedEvent{DelayID: "s1", UserID: "@b:x", RoomID: "!r:x", Type: "m.t", StateKey: &other, Content: []byte(`{}`)}, 3); err != nil {
			t.Fatal(err)
		}
		if n, err := db.CancelDelayedState(ctx, "!r:x", "m.t", key, "@a:x"); err != nil || n != 1 {
			t.Errorf("CancelDelayedState by @a:x = %d %v, want 1 (bob's, not alice's own)", n, err)
		}
		if e, _ := db.DelayedEventByID(ctx, "d2"); e == nil {
			t.Error("alice's own delayed state was cancelled")
		}
		for _, id := range []string{"d2", "d3", "d5"} {
			db.DeleteDelayedEvent(ctx, id)
		}
		if _, ok, err := db.NextDelayedSendTS(ctx); err != nil || ok {
			t.Errorf("NextDelayedSendTS on empty table: %v %v", ok, err)
		}
	})
}

func TestOpenIDTokens(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		if err := db.AddOpenIDToken(ctx, "h1", "@a:x", 2000, 1000); err != nil {
			t.Fatal(err)
		}
		if u, err := db.OpenIDTokenUser(ctx, "h1", 1999); err != nil || u != "@a:x" {
			t.Errorf("valid token: %q %v", u, err)
		}
		if u, err := db.OpenIDTokenUser(ctx, "h1", 2000); err != nil || u != "" {
			t.Errorf("expired token: %q %v", u, err)
		}
		if u, err := db.OpenIDTokenUser(ctx, "h2", 0); err != nil || u != "" {
			t.Errorf("unknown token: %q %v", u, err)
		}
		// Adding a token drops expired ones.
		if err := db.AddOpenIDToken(ctx, "h2", "@b:x", 9000, 3000); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := storagetest.RawDB(t, dsn).QueryRow(`SELECT COUNT(*) FROM openid_tokens`).Scan(&n); err != nil || n != 1 {
			t.Errorf("tokens left: %d %v, want 1", n, err)
		}
	})
}
