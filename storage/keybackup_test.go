package storage_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

const testBackupAlg = "m.megolm_backup.v1.curve25519-aes-sha2"

// createBackup creates a backup version, failing the test on errors.
func createBackup(t *testing.T, db *storage.DB, userID, authData string) int64 {
	t.Helper()
	v, err := db.CreateBackupVersion(t.Context(), userID, testBackupAlg, []byte(authData))
	if err != nil {
		t.Fatalf("CreateBackupVersion(%s): %v", userID, err)
	}
	return v
}

// wantVersion fails unless the user's current backup version is want (0:
// none).
func wantCurrentBackup(t *testing.T, db *storage.DB, userID string, want int64) {
	t.Helper()
	v, err := db.CurrentBackupVersion(t.Context(), userID)
	if want == 0 {
		wantErr(t, "CurrentBackupVersion", err, storage.ErrNotFound)
		return
	}
	if err != nil || v.Version != want {
		t.Fatalf("CurrentBackupVersion(%s) = %d, %v; want %d", userID, v.Version, err, want)
	}
}

// staleCurrent returns the current version a *StaleBackupError names, or
// fails the test.
func staleCurrent(t *testing.T, what string, err error) int64 {
	t.Helper()
	var stale *storage.StaleBackupError
	if !errors.As(err, &stale) {
		t.Fatalf("%s: error %v, want a StaleBackupError", what, err)
	}
	return stale.Current
}

// specRule is the spec's rule for when an uploaded key replaces the
// stored one (the service owns it; repeated here to drive the storage).
func specRule(stored, uploaded storage.BackupSession) bool {
	if stored.IsVerified != uploaded.IsVerified {
		return uploaded.IsVerified
	}
	if stored.FirstMessageIndex != uploaded.FirstMessageIndex {
		return uploaded.FirstMessageIndex < stored.FirstMessageIndex
	}
	return uploaded.ForwardedCount < stored.ForwardedCount
}

func bsess(room, session string, fmi, fc int64, verified bool, data string) storage.BackupSession {
	return storage.BackupSession{RoomID: room, SessionID: session, FirstMessageIndex: fmi, ForwardedCount: fc,
		IsVerified: verified, SessionData: []byte(data)}
}

// upload stores keys, failing the test on errors.
func upload(t *testing.T, db *storage.DB, userID string, version int64, sessions ...storage.BackupSession) storage.BackupKeysState {
	t.Helper()
	st, err := db.UploadBackupKeys(t.Context(), userID, version, sessions, specRule)
	if err != nil {
		t.Fatalf("UploadBackupKeys(%s, %d): %v", userID, version, err)
	}
	return st
}

// backupKeys returns a version's keys as "room/session:fmi/fc/verified/data".
func backupKeys(t *testing.T, db *storage.DB, userID string, version int64, roomID, sessionID string) []string {
	t.Helper()
	ks, err := db.BackupKeys(t.Context(), userID, version, roomID, sessionID)
	if err != nil {
		t.Fatalf("BackupKeys(%s, %d, %q, %q): %v", userID, version, roomID, sessionID, err)
	}
	out := []string{}
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%s/%s:%d/%d/%t/%s", k.RoomID, k.SessionID, k.FirstMessageIndex, k.ForwardedCount, k.IsVerified, k.SessionData))
	}
	return out
}

func wantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// rowCount counts the stored sessions of a version behind the storage
// package's back, to check the count it keeps.
func rowCount(t *testing.T, dsn, userID string, version int64) int64 {
	t.Helper()
	var n int64
	if err := storagetest.RawDB(t, dsn).QueryRow(`SELECT COUNT(*) FROM key_backup_sessions WHERE user_id = $1 AND version = $2`,
		userID, version).Scan(&n); err != nil {
		t.Fatalf("count sessions: %v", err)
	}
	return n
}

func TestBackupVersions(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		wantCurrentBackup(t, db, alice, 0)

		if v := createBackup(t, db, alice, `{"public_key":"k1"}`); v != 1 {
			t.Fatalf("first version %d, want 1", v)
		}
		if v := createBackup(t, db, alice, `{"public_key":"k2"}`); v != 2 {
			t.Fatalf("second version %d, want 2", v)
		}
		wantCurrentBackup(t, db, alice, 2)
		wantCurrentBackup(t, db, bob, 0)
		if v := createBackup(t, db, bob, `{"public_key":"b"}`); v != 1 {
			t.Fatalf("bob's first version %d, want 1: versions are per user", v)
		}
		v1, err := db.BackupVersion(ctx, alice, 1)
		if err != nil || string(v1.AuthData) != `{"public_key":"k1"}` || v1.Algorithm != testBackupAlg || v1.Etag != 0 || v1.Count != 0 {
			t.Fatalf("BackupVersion(1) = %+v, %v", v1, err)
		}
		_, err = db.BackupVersion(ctx, alice, 3)
		wantErr(t, "BackupVersion(3)", err, storage.ErrNotFound)

		// Deleting the current version makes the one before current again;
		// the next version still counts up past the deleted one.
		wantErr(t, "DeleteBackupVersion(2)", db.DeleteBackupVersion(ctx, alice, 2), nil)
		wantCurrentBackup(t, db, alice, 1)
		_, err = db.BackupVersion(ctx, alice, 2)
		wantErr(t, "BackupVersion(deleted)", err, storage.ErrNotFound)
		wantErr(t, "DeleteBackupVersion(2) again", db.DeleteBackupVersion(ctx, alice, 2), nil)
		wantErr(t, "DeleteBackupVersion(9)", db.DeleteBackupVersion(ctx, alice, 9), storage.ErrNotFound)
		if v := createBackup(t, db, alice, `{}`); v != 3 {
			t.Fatalf("version after a deleted one %d, want 3", v)
		}
		wantErr(t, "DeleteBackupVersion(1)", db.DeleteBackupVersion(ctx, alice, 1), nil)
		wantErr(t, "DeleteBackupVersion(3)", db.DeleteBackupVersion(ctx, alice, 3), nil)
		wantCurrentBackup(t, db, alice, 0)
		wantCurrentBackup(t, db, bob, 1)
	})
}

func TestBackupUpdateVersion(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		set := func(authData string) func(storage.BackupVersion) ([]byte, error) {
			return func(storage.BackupVersion) ([]byte, error) { return []byte(authData), nil }
		}
		wantErr(t, "update without backup", db.UpdateBackupVersion(ctx, alice, 1, set(`{}`)), storage.ErrNotFound)
		createBackup(t, db, alice, `{"public_key":"a"}`)
		createBackup(t, db, alice, `{"public_key":"b"}`)

		var seen storage.BackupVersion
		err := db.UpdateBackupVersion(ctx, alice, 2, func(v storage.BackupVersion) ([]byte, error) {
			seen = v
			return []byte(`{"public_key":"c"}`), nil
		})
		if err != nil || seen.Version != 2 || string(seen.AuthData) != `{"public_key":"b"}` {
			t.Fatalf("UpdateBackupVersion(2): %v; update saw %+v", err, seen)
		}
		if v, _ := db.BackupVersion(ctx, alice, 2); string(v.AuthData) != `{"public_key":"c"}` {
			t.Errorf("auth data after update %s", v.AuthData)
		}

		// An older version that is not deleted can be updated (as Synapse).
		if err := db.UpdateBackupVersion(ctx, alice, 1, set(`{"public_key":"a2"}`)); err != nil {
			t.Fatalf("update of version 1: %v", err)
		}
		if v, _ := db.BackupVersion(ctx, alice, 1); string(v.AuthData) != `{"public_key":"a2"}` {
			t.Errorf("version 1 after update: %s", v.AuthData)
		}
		wantErr(t, "update of version 7", db.UpdateBackupVersion(ctx, alice, 7, set(`{}`)), storage.ErrNotFound)

		boom := errors.New("boom")
		err = db.UpdateBackupVersion(ctx, alice, 2, func(storage.BackupVersion) ([]byte, error) { return nil, boom })
		wantErr(t, "failing update", err, boom)
		if v, _ := db.BackupVersion(ctx, alice, 2); string(v.AuthData) != `{"public_key":"c"}` {
			t.Errorf("a failed update changed the auth data: %s", v.AuthData)
		}

		wantErr(t, "delete 2", db.DeleteBackupVersion(ctx, alice, 2), nil)
		wantErr(t, "update of deleted version", db.UpdateBackupVersion(ctx, alice, 2, set(`{}`)), storage.ErrNotFound)
		// Version 1 is current again.
		wantErr(t, "update of version 1", db.UpdateBackupVersion(ctx, alice, 1, set(`{"public_key":"d"}`)), nil)
	})
}

func TestBackupUploadKeys(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		const r1, r2 = "!r1:example.org", "!r2:example.org"

		_, err := db.UploadBackupKeys(ctx, alice, 1, []storage.BackupSession{bsess(r1, "s", 0, 0, false, `{}`)}, specRule)
		wantErr(t, "upload without backup", err, storage.ErrNotFound)
		v := createBackup(t, db, alice, `{}`)

		st := upload(t, db, alice, v, bsess(r1, "a", 5, 1, false, `{"d":"a1"}`), bsess(r1, "b", 0, 0, true, `{"d":"b1"}`),
			bsess(r2, "c", 3, 0, false, `{"d":"c1"}`))
		if st != (storage.BackupKeysState{Etag: 1, Count: 3}) {
			t.Errorf("after the first upload: %+v, want etag 1, count 3", st)
		}
		wantStrings(t, "keys", backupKeys(t, db, alice, v, "", ""),
			`!r1:example.org/a:5/1/false/{"d":"a1"}`, `!r1:example.org/b:0/0/true/{"d":"b1"}`, `!r2:example.org/c:3/0/false/{"d":"c1"}`)

		// Keys the rule keeps: nothing changes, not even the etag.
		st = upload(t, db, alice, v, bsess(r1, "a", 6, 0, false, `{"d":"a2"}`), bsess(r1, "b", 0, 0, false, `{"d":"b2"}`),
			bsess(r2, "c", 3, 0, false, `{"d":"c2"}`))
		if st != (storage.BackupKeysState{Etag: 1, Count: 3}) {
			t.Errorf("after an upload that changed nothing: %+v, want etag 1, count 3", st)
		}
		// One replaced, one added: one etag step.
		st = upload(t, db, alice, v, bsess(r1, "a", 4, 9, false, `{"d":"a3"}`), bsess(r2, "d", 0, 0, false, `{"d":"d1"}`))
		if st != (storage.BackupKeysState{Etag: 2, Count: 4}) {
			t.Errorf("after replacing one and adding one: %+v, want etag 2, count 4", st)
		}
		wantStrings(t, "keys of r1", backupKeys(t, db, alice, v, r1, ""),
			`!r1:example.org/a:4/9/false/{"d":"a3"}`, `!r1:example.org/b:0/0/true/{"d":"b1"}`)
		// The same session twice in one upload: the second is judged
		// against the first.
		st = upload(t, db, alice, v, bsess(r2, "e", 7, 0, false, `{"d":"e1"}`), bsess(r2, "e", 8, 0, false, `{"d":"e2"}`),
			bsess(r2, "e", 6, 0, false, `{"d":"e3"}`))
		if st != (storage.BackupKeysState{Etag: 3, Count: 5}) {
			t.Errorf("after a repeated session: %+v, want etag 3, count 5", st)
		}
		wantStrings(t, "session e", backupKeys(t, db, alice, v, r2, "e"), `!r2:example.org/e:6/0/false/{"d":"e3"}`)
		if n := rowCount(t, dsn, alice, v); n != 5 {
			t.Errorf("%d rows stored, want 5", n)
		}
		// An empty upload answers the state as it is.
		if st := upload(t, db, alice, v); st != (storage.BackupKeysState{Etag: 3, Count: 5}) {
			t.Errorf("empty upload: %+v", st)
		}

		// A new version is empty, and the old one takes no more keys.
		v2 := createBackup(t, db, alice, `{}`)
		_, err = db.UploadBackupKeys(ctx, alice, v, []storage.BackupSession{bsess(r1, "z", 0, 0, false, `{}`)}, specRule)
		if cur := staleCurrent(t, "upload to the old version", err); cur != v2 {
			t.Errorf("StaleBackupError names %d, want %d", cur, v2)
		}
		_, err = db.UploadBackupKeys(ctx, alice, 0, []storage.BackupSession{bsess(r1, "z", 0, 0, false, `{}`)}, specRule)
		staleCurrent(t, "upload to version 0", err)
		wantStrings(t, "keys of the new version", backupKeys(t, db, alice, v2, "", ""))
		if n := rowCount(t, dsn, alice, v); n != 5 {
			t.Errorf("refused uploads stored keys: %d rows, want 5", n)
		}
		// Another user's backup is apart.
		_, err = db.BackupKeys(ctx, bob, v, "", "")
		wantErr(t, "bob reading version 1", err, storage.ErrNotFound)
	})
}

func TestBackupDeleteKeys(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		const r1, r2 = "!r1:example.org", "!r2:example.org"
		_, err := db.DeleteBackupKeys(ctx, alice, 1, "", "")
		wantErr(t, "delete without backup", err, storage.ErrNotFound)
		v := createBackup(t, db, alice, `{}`)
		upload(t, db, alice, v, bsess(r1, "a", 0, 0, false, `{}`), bsess(r1, "b", 0, 0, false, `{}`),
			bsess(r2, "c", 0, 0, false, `{}`), bsess(r2, "d", 0, 0, false, `{}`), bsess(r2, "e", 0, 0, false, `{}`))

		del := func(room, session string, want storage.BackupKeysState) {
			t.Helper()
			st, err := db.DeleteBackupKeys(ctx, alice, v, room, session)
			if err != nil || st != want {
				t.Fatalf("DeleteBackupKeys(%q, %q) = %+v, %v; want %+v", room, session, st, err, want)
			}
			if n := rowCount(t, dsn, alice, v); n != want.Count {
				t.Fatalf("after DeleteBackupKeys(%q, %q): %d rows, count says %d", room, session, n, want.Count)
			}
		}
		del(r2, "c", storage.BackupKeysState{Etag: 2, Count: 4})
		del(r2, "c", storage.BackupKeysState{Etag: 2, Count: 4}) // nothing deleted: etag unchanged
		del(r2, "", storage.BackupKeysState{Etag: 3, Count: 2})
		del("!other:example.org", "", storage.BackupKeysState{Etag: 3, Count: 2})
		wantStrings(t, "keys left", backupKeys(t, db, alice, v, "", ""), `!r1:example.org/a:0/0/false/{}`, `!r1:example.org/b:0/0/false/{}`)
		del("", "", storage.BackupKeysState{Etag: 4, Count: 0})

		// Deleting a version deletes its keys; reading or deleting them
		// afterwards is ErrNotFound.
		upload(t, db, alice, v, bsess(r1, "a", 0, 0, false, `{}`))
		wantErr(t, "delete version", db.DeleteBackupVersion(ctx, alice, v), nil)
		if n := rowCount(t, dsn, alice, v); n != 0 {
			t.Errorf("%d keys left of a deleted version", n)
		}
		_, err = db.BackupKeys(ctx, alice, v, "", "")
		wantErr(t, "keys of a deleted version", err, storage.ErrNotFound)
		_, err = db.DeleteBackupKeys(ctx, alice, v, "", "")
		wantErr(t, "delete keys of a deleted version", err, storage.ErrNotFound)
	})
}

// TestBackupBulkUpload checks that hundreds of keys go in one transaction
// and that concurrent uploads of one user lose nothing.
func TestBackupBulkUpload(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		v := createBackup(t, db, alice, `{}`)

		var bulk []storage.BackupSession
		for i := range 500 {
			bulk = append(bulk, bsess(fmt.Sprintf("!room%d:example.org", i%7), fmt.Sprintf("s%03d", i), 10, 0, false, `{"n":1}`))
		}
		before := db.Queries()
		st := upload(t, db, alice, v, bulk...)
		if n := db.Queries() - before; n != 1 {
			t.Errorf("a bulk upload ran %d transactions and statements outside one, want 1", n)
		}
		if st != (storage.BackupKeysState{Etag: 1, Count: 500}) {
			t.Errorf("after the bulk upload: %+v", st)
		}
		// Again, with all of them better: prepared statements are now cached.
		for i := range bulk {
			bulk[i].FirstMessageIndex = 1
		}
		if st := upload(t, db, alice, v, bulk...); st != (storage.BackupKeysState{Etag: 2, Count: 500}) {
			t.Errorf("after the second bulk upload: %+v", st)
		}

		// Concurrent uploads: new sessions of their own, and a shared
		// session each offers with a different first message index.
		const writers = 8
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.UploadBackupKeys(ctx, alice, v, []storage.BackupSession{
					bsess("!c:example.org", fmt.Sprintf("own%d", w), 0, 0, false, `{}`),
					bsess("!c:example.org", "shared", int64(100-w), 0, false, fmt.Sprintf(`{"w":%d}`, w)),
				}, specRule)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent upload: %v", err)
			}
		}
		cur, err := db.CurrentBackupVersion(ctx, alice)
		if err != nil || cur.Count != 500+writers+1 || cur.Count != rowCount(t, dsn, alice, v) || cur.Etag != 2+writers {
			t.Fatalf("after concurrent uploads: %+v, %v; want count %d, etag %d", cur, err, 500+writers+1, 2+writers)
		}
		wantStrings(t, "shared session", backupKeys(t, db, alice, v, "!c:example.org", "shared"),
			fmt.Sprintf(`!c:example.org/shared:%d/0/false/{"w":%d}`, 100-writers+1, writers-1))
	})
}

// Deactivating an account deletes its backups.
func TestBackupDeletedWithAccount(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		if _, err := db.CreateBackupVersion(ctx, alice, "m.megolm_backup.v1", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := db.DeactivateUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CurrentBackupVersion(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("current backup after deactivation: %v, want ErrNotFound", err)
		}
	})
}
