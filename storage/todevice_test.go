package storage_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

// inbox returns the contents of a device's whole inbox, in stream order.
func inbox(t *testing.T, db *storage.DB, userID, deviceID string) []string {
	t.Helper()
	msgs, err := db.ToDeviceMessages(t.Context(), userID, deviceID, 0, 1<<62, 1<<20)
	if err != nil {
		t.Fatalf("ToDeviceMessages(%s, %s): %v", userID, deviceID, err)
	}
	out := []string{}
	for _, m := range msgs {
		out = append(out, string(m.Content))
	}
	return out
}

// sendTD stores one request, failing the test on errors.
func sendTD(t *testing.T, db *storage.DB, s storage.ToDeviceSend) storage.ToDeviceResult {
	t.Helper()
	res, err := db.SendToDevice(t.Context(), s)
	if err != nil {
		t.Fatalf("SendToDevice(%+v): %v", s, err)
	}
	return res
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestToDeviceSendAndRead(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		carol := createUser(t, db, "carol")
		login(t, db, alice, "A1", "a1", "")
		for _, d := range []string{"B1", "B2", "B3"} {
			login(t, db, bob, d, "tok-"+d, "")
		}
		login(t, db, carol, "C1", "c1", "")
		var mu sync.Mutex
		var feed []storage.Change
		db.OnChange(func(_ int64, cs []storage.Change) {
			mu.Lock()
			feed = append(feed, cs...)
			mu.Unlock()
		})

		res := sendTD(t, db, storage.ToDeviceSend{
			Sender: alice, SenderDevice: "A1", TxnID: "t1", Type: "m.test", InboxLimit: 100,
			Messages: map[string]map[string]json.RawMessage{
				bob:                   {"*": raw(`{"to":"all"}`), "B2": raw(`{"to":"B2"}`), "NOPE": raw(`{"to":"nobody"}`)},
				carol:                 {"C1": raw(`{"to":"C1"}`)},
				"@nobody:example.org": {"*": raw(`{}`)},
				"@bob:elsewhere.org":  {"B1": raw(`{}`)},
			},
		})
		if res.Duplicate || res.Stored != 4 || len(res.Overflows) != 0 {
			t.Fatalf("result %+v, want 4 stored (3 of bob's devices, carol's C1)", res)
		}
		for _, c := range []struct{ user, device, want string }{
			{bob, "B1", `{"to":"all"}`}, {bob, "B2", `{"to":"B2"}`}, {bob, "B3", `{"to":"all"}`}, {carol, "C1", `{"to":"C1"}`},
		} {
			if got := inbox(t, db, c.user, c.device); !slices.Equal(got, []string{c.want}) {
				t.Errorf("inbox of %s/%s = %v, want [%s]", c.user, c.device, got, c.want)
			}
		}
		if got := inbox(t, db, bob, "NOPE"); len(got) != 0 {
			t.Errorf("message to an unknown device stored: %v", got)
		}
		msgs, err := db.ToDeviceMessages(ctx, bob, "B2", 0, 1<<62, 10)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("ToDeviceMessages = %v, %v", msgs, err)
		}
		if m := msgs[0]; m.Sender != alice || m.Type != "m.test" || m.StreamPos <= 0 {
			t.Errorf("stored message %+v, want sender %s type m.test", m, alice)
		}
		pos, _ := db.StreamPosition(ctx)
		mu.Lock()
		var changed []string
		for _, c := range feed {
			if c.Kind == storage.ChangeToDevice {
				changed = append(changed, c.UserID+"/"+c.DeviceID)
				if c.Pos <= 0 || c.Pos > pos {
					t.Errorf("change %+v outside the stream (position %d)", c, pos)
				}
			}
		}
		mu.Unlock()
		if want := []string{bob + "/B1", bob + "/B2", bob + "/B3", carol + "/C1"}; !slices.Equal(changed, want) {
			t.Errorf("to-device changes %v, want %v", changed, want)
		}

		// A range (after, upto] and a limit, in stream order.
		var positions []int64
		for i := range 5 {
			sendTD(t, db, storage.ToDeviceSend{Sender: alice, SenderDevice: "A1", TxnID: fmt.Sprint("r", i), Type: "m.n",
				Messages: map[string]map[string]json.RawMessage{carol: {"C1": raw(fmt.Sprintf(`{"n":%d}`, i))}}})
			p, _ := db.StreamPosition(ctx)
			positions = append(positions, p)
		}
		msgs, err = db.ToDeviceMessages(ctx, carol, "C1", positions[0], positions[3], 2)
		if err != nil || len(msgs) != 2 || string(msgs[0].Content) != `{"n":1}` || string(msgs[1].Content) != `{"n":2}` {
			t.Errorf("ToDeviceMessages(after n=0, upto n=3, limit 2) = %v, %v; want n=1, n=2", msgs, err)
		}
		msgs, _ = db.ToDeviceMessages(ctx, carol, "C1", positions[2], positions[3], 10)
		if len(msgs) != 1 || msgs[0].StreamPos != positions[3] {
			t.Errorf("ToDeviceMessages(after n=2, upto n=3) = %v, want only n=3 at %d", msgs, positions[3])
		}

		// Deleting is per device and inclusive.
		if err := db.DeleteToDevice(ctx, carol, "C1", positions[1]); err != nil {
			t.Fatal(err)
		}
		if got, want := inbox(t, db, carol, "C1"), []string{`{"n":2}`, `{"n":3}`, `{"n":4}`}; !slices.Equal(got, want) {
			t.Errorf("after deleting up to n=1: %v, want %v", got, want)
		}
		if err := db.DeleteToDevice(ctx, carol, "C1", positions[1]); err != nil { // nothing left to delete
			t.Fatal(err)
		}
		if got := inbox(t, db, bob, "B1"); len(got) != 1 {
			t.Errorf("deleting carol's messages touched bob's: %v", got)
		}
	})
}

func TestToDeviceTransactions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		login(t, db, alice, "A1", "a1", "")
		login(t, db, alice, "A2", "a2", "")
		login(t, db, bob, "B1", "b1", "")
		msg := func(device, txn, content string) storage.ToDeviceSend {
			return storage.ToDeviceSend{Sender: alice, SenderDevice: device, TxnID: txn, Type: "m.t",
				Messages: map[string]map[string]json.RawMessage{bob: {"B1": raw(content)}}}
		}
		if res := sendTD(t, db, msg("A1", "x", `{"n":1}`)); res.Duplicate || res.Stored != 1 {
			t.Fatalf("first send: %+v", res)
		}
		pos, _ := db.StreamPosition(t.Context())
		if res := sendTD(t, db, msg("A1", "x", `{"n":2}`)); !res.Duplicate || res.Stored != 0 {
			t.Errorf("repeated transaction: %+v, want a duplicate storing nothing", res)
		}
		if p, _ := db.StreamPosition(t.Context()); p != pos {
			t.Errorf("repeated transaction moved the stream from %d to %d", pos, p)
		}
		// The same ID from another device of the sender is a new request.
		if res := sendTD(t, db, msg("A2", "x", `{"n":3}`)); res.Duplicate || res.Stored != 1 {
			t.Errorf("same ID from another device: %+v, want stored", res)
		}
		if got, want := inbox(t, db, bob, "B1"), []string{`{"n":1}`, `{"n":3}`}; !slices.Equal(got, want) {
			t.Errorf("inbox %v, want %v", got, want)
		}
		// A request that stores nothing still records its ID.
		empty := storage.ToDeviceSend{Sender: alice, SenderDevice: "A1", TxnID: "e", Type: "m.t"}
		if res := sendTD(t, db, empty); res.Duplicate {
			t.Errorf("first empty request: %+v", res)
		}
		if res := sendTD(t, db, empty); !res.Duplicate {
			t.Errorf("repeated empty request: %+v, want a duplicate", res)
		}

		// Deleting the sending device forgets its transaction IDs (a new
		// login with the same device ID is a new device).
		if err := db.DeleteDevices(t.Context(), alice, []string{"A1"}); err != nil {
			t.Fatal(err)
		}
		login(t, db, alice, "A1", "a1-again", "")
		if res := sendTD(t, db, msg("A1", "x", `{"n":4}`)); res.Duplicate || res.Stored != 1 {
			t.Errorf("old ID after the device was deleted: %+v, want stored", res)
		}
	})
}

func TestToDeviceInboxLimit(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		login(t, db, bob, "B1", "b1", "")
		login(t, db, bob, "B2", "b2", "")
		var overflows []storage.InboxOverflow
		for i := range 5 {
			to := map[string]json.RawMessage{"B1": raw(fmt.Sprintf(`{"n":%d}`, i))}
			if i == 0 {
				to["B2"] = raw(`{"b2":true}`)
			}
			res := sendTD(t, db, storage.ToDeviceSend{Sender: alice, SenderDevice: "A", TxnID: fmt.Sprint(i), Type: "m.t",
				InboxLimit: 3, Messages: map[string]map[string]json.RawMessage{bob: to}})
			overflows = append(overflows, res.Overflows...)
		}
		want := []storage.InboxOverflow{{UserID: bob, DeviceID: "B1", Dropped: 1}, {UserID: bob, DeviceID: "B1", Dropped: 1}}
		if !slices.Equal(overflows, want) {
			t.Errorf("overflows %+v, want %+v", overflows, want)
		}
		if got, want := inbox(t, db, bob, "B1"), []string{`{"n":2}`, `{"n":3}`, `{"n":4}`}; !slices.Equal(got, want) {
			t.Errorf("full inbox %v, want the newest three %v", got, want)
		}
		if got := inbox(t, db, bob, "B2"); len(got) != 1 {
			t.Errorf("another device's inbox %v, want its one message", got)
		}
	})
}

func TestToDeviceDeletedDevices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		for _, d := range []string{"B1", "B2", "B3"} {
			login(t, db, bob, d, "tok-"+d, "")
		}
		star := func(txn string) {
			sendTD(t, db, storage.ToDeviceSend{Sender: alice, SenderDevice: "A", TxnID: txn, Type: "m.t",
				Messages: map[string]map[string]json.RawMessage{bob: {"*": raw(`{"txn":"` + txn + `"}`)}}})
		}
		star("1")
		if err := db.DeleteDevices(ctx, bob, []string{"B2"}); err != nil {
			t.Fatal(err)
		}
		login(t, db, bob, "B2", "tok-B2-again", "")
		if got := inbox(t, db, bob, "B2"); len(got) != 0 {
			t.Errorf("a re-created device got the old device's messages: %v", got)
		}
		if got := inbox(t, db, bob, "B1"); len(got) != 1 {
			t.Errorf("deleting B2 touched B1's inbox: %v", got)
		}
		// Logging out every other device.
		star("2")
		if err := db.DeleteAllDevices(ctx, bob, "B1"); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"B2", "B3"} {
			if got := inbox(t, db, bob, d); len(got) != 0 {
				t.Errorf("inbox of deleted device %s: %v", d, got)
			}
		}
		if got := inbox(t, db, bob, "B1"); len(got) != 2 {
			t.Errorf("the kept device's inbox: %v, want 2 messages", got)
		}
	})
}

// Deleting the messages that hold the highest stream position must not
// let a restarted server hand that position out again.
func TestToDeviceDeletePositionSurvivesRestart(t *testing.T) {
	for _, how := range []string{"acknowledged", "device deleted"} {
		t.Run(how, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
				db := storagetest.OpenDB(t, dsn)
				ctx := t.Context()
				alice := createUser(t, db, "alice")
				bob := createUser(t, db, "bob")
				login(t, db, bob, "B1", "b1", "")
				login(t, db, bob, "B2", "b2", "")
				sendTD(t, db, storage.ToDeviceSend{Sender: alice, SenderDevice: "A", Type: "m.t",
					Messages: map[string]map[string]json.RawMessage{bob: {"B1": raw(`{}`)}}})
				sendTD(t, db, storage.ToDeviceSend{Sender: alice, SenderDevice: "A", Type: "m.t",
					Messages: map[string]map[string]json.RawMessage{bob: {"B2": raw(`{}`)}}})
				high, _ := db.StreamPosition(ctx)
				var err error
				if how == "acknowledged" {
					err = db.DeleteToDevice(ctx, bob, "B2", high)
				} else {
					err = db.DeleteDevices(ctx, bob, []string{"B2"})
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := inbox(t, db, bob, "B2"); len(got) != 0 {
					t.Fatalf("inbox after delete: %v", got)
				}
				db.Close()
				db = storagetest.OpenDB(t, dsn)
				if pos, _ := db.StreamPosition(ctx); pos != high {
					t.Errorf("position after restart = %d, want %d (the deleted message's)", pos, high)
				}
			})
		})
	}
}
