package storage_test

import (
	"slices"
	"testing"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hashT = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func TestMediaRows(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		up := func(id, hash string, ts int64) {
			t.Helper()
			wantErr(t, "InsertMedia "+id, db.InsertMedia(ctx, storage.Media{MediaID: id, UserID: alice, ContentType: "image/png",
				UploadName: id + ".png", Size: 10, SHA256: hash, CreatedTS: ts, UploadedTS: ts, LastAccessTS: ts}), nil)
		}
		up("one", hashA, 1000)
		up("two", hashA, 2000) // the same content
		up("three", hashB, 3000)
		wantErr(t, "InsertMedia duplicate", db.InsertMedia(ctx, storage.Media{MediaID: "one", UserID: alice, SHA256: hashA}), storage.ErrConflict)

		m, err := db.Media(ctx, "one")
		wantErr(t, "Media", err, nil)
		if m.ContentType != "image/png" || m.UploadName != "one.png" || m.SHA256 != hashA || m.Pending() || m.QuarantinedBy != "" {
			t.Errorf("Media(one) = %+v", m)
		}
		_, err = db.Media(ctx, "none")
		wantErr(t, "Media(none)", err, storage.ErrNotFound)

		// Pending uploads: limited per user, completed once.
		for i, id := range []string{"p1", "p2"} {
			wantErr(t, "CreatePendingMedia", db.CreatePendingMedia(ctx, storage.Media{MediaID: id, UserID: alice,
				CreatedTS: 5000 + int64(i), UnusedExpiresTS: 9000}, 2), nil)
		}
		wantErr(t, "CreatePendingMedia over limit", db.CreatePendingMedia(ctx, storage.Media{MediaID: "p3", UserID: alice,
			CreatedTS: 5005, UnusedExpiresTS: 9000}, 2), storage.ErrTooManyPending)
		p, err := db.Media(ctx, "p1")
		wantErr(t, "Media(p1)", err, nil)
		if !p.Pending() || p.UnusedExpiresTS != 9000 {
			t.Errorf("pending item = %+v", p)
		}
		done := storage.Media{MediaID: "p1", ContentType: "text/plain", Size: 3, SHA256: hashB, UploadedTS: 6000}
		wantErr(t, "CompleteMedia", db.CompleteMedia(ctx, done), nil)
		wantErr(t, "CompleteMedia again", db.CompleteMedia(ctx, done), storage.ErrConflict)
		done.MediaID = "nope"
		wantErr(t, "CompleteMedia unknown", db.CompleteMedia(ctx, done), storage.ErrNotFound)

		items, total, err := db.UserMediaPage(ctx, alice, 1, 2)
		wantErr(t, "UserMediaPage", err, nil)
		if total != 5 || len(items) != 2 || items[0].MediaID != "two" || items[1].MediaID != "three" {
			t.Errorf("UserMediaPage = %d %+v", total, items)
		}
		all, err := db.UserMedia(ctx, alice)
		wantErr(t, "UserMedia", err, nil)
		if len(all) != 5 {
			t.Errorf("UserMedia = %d items", len(all))
		}
		n, err := db.UserMediaBytes(ctx, alice)
		wantErr(t, "UserMediaBytes", err, nil)
		if n != 33 {
			t.Errorf("UserMediaBytes = %d, want 33", n)
		}

		wantErr(t, "QuarantineMedia", db.QuarantineMedia(ctx, "three", "@root:example.org"), nil)
		wantErr(t, "QuarantineMedia unknown", db.QuarantineMedia(ctx, "none", "@root:example.org"), storage.ErrNotFound)
		q, _ := db.Media(ctx, "three")
		if q.QuarantinedBy != "@root:example.org" {
			t.Errorf("quarantined_by = %q", q.QuarantinedBy)
		}

		// Thumbnails: one per size and method, dropped with their media.
		th := storage.MediaThumbnail{MediaID: "one", Width: 32, Height: 32, Method: "crop", ContentType: "image/png", Size: 5, SHA256: hashT}
		wantErr(t, "AddThumbnail", db.AddThumbnail(ctx, th), nil)
		wantErr(t, "AddThumbnail again", db.AddThumbnail(ctx, th), nil)
		th.MediaID = "none"
		wantErr(t, "AddThumbnail of unknown media", db.AddThumbnail(ctx, th), storage.ErrNotFound)
		got, err := db.Thumbnail(ctx, "one", 32, 32, "crop")
		wantErr(t, "Thumbnail", err, nil)
		if got.SHA256 != hashT || got.ContentType != "image/png" {
			t.Errorf("Thumbnail = %+v", got)
		}
		_, err = db.Thumbnail(ctx, "one", 96, 96, "crop")
		wantErr(t, "Thumbnail other size", err, storage.ErrNotFound)

		// Deleting "one" frees its thumbnail's file but not hashA, which
		// "two" still uses.
		deleted, orphans, err := db.DeleteMedia(ctx, []string{"one", "none"})
		wantErr(t, "DeleteMedia", err, nil)
		if !slices.Equal(deleted, []string{"one"}) || !slices.Equal(orphans, []string{hashT}) {
			t.Errorf("DeleteMedia = %v, orphans %v", deleted, orphans)
		}
		used, err := db.MediaHashUsed(ctx, hashA)
		wantErr(t, "MediaHashUsed", err, nil)
		if !used {
			t.Error("hashA unused while two still has it")
		}
		_, err = db.Thumbnail(ctx, "one", 32, 32, "crop")
		wantErr(t, "Thumbnail of deleted media", err, storage.ErrNotFound)

		// Purge candidates: not read since 2500 (two), expired pending (p2 at
		// 9000 < now 10000); "three" is alice's avatar and kept.
		wantErr(t, "SetAvatarURL", db.SetAvatarURL(ctx, alice, "mxc://example.org/three"), nil)
		wantErr(t, "TouchMedia", db.TouchMedia(ctx, "three", 1500), nil) // never moves backwards
		ids, err := db.MediaUnusedSince(ctx, "example.org", 3500, 10000, 100)
		wantErr(t, "MediaUnusedSince", err, nil)
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"p2", "two"}) {
			t.Errorf("MediaUnusedSince = %v, want [p2 two]", ids)
		}
		wantErr(t, "TouchMedia", db.TouchMedia(ctx, "two", 4000), nil)
		ids, _ = db.MediaUnusedSince(ctx, "example.org", 3500, 10000, 100)
		if !slices.Equal(ids, []string{"p2"}) {
			t.Errorf("MediaUnusedSince after a read = %v, want [p2]", ids)
		}
	})
}
