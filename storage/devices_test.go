package storage_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aula-chat/aula/storage"
	"github.com/aula-chat/aula/storage/storagetest"
)

func TestLoginDevice(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		before := time.Now().UnixMilli()

		tok := storage.NewTokens{AccessHash: hash("a1"), AccessExpiresTS: 1_900_000_000_000,
			RefreshHash: hash("r1"), RefreshExpiresTS: 2_000_000_000_000}
		if err := db.LoginDevice(ctx, alice, "PHONE", "Alice's phone", tok); err != nil {
			t.Fatalf("LoginDevice: %v", err)
		}
		o, err := db.TokenOwner(ctx, hash("a1"))
		if err != nil {
			t.Fatalf("TokenOwner: %v", err)
		}
		want := storage.TokenOwner{UserID: alice, DeviceID: "PHONE", ExpiresTS: 1_900_000_000_000, RefreshHash: hash("r1")}
		if o.UserID != want.UserID || o.DeviceID != want.DeviceID || o.ExpiresTS != want.ExpiresTS ||
			!bytes.Equal(o.RefreshHash, want.RefreshHash) || o.RefreshPending {
			t.Errorf("TokenOwner = %+v, want %+v", o, want)
		}
		d, err := db.Device(ctx, alice, "PHONE")
		if err != nil {
			t.Fatalf("Device: %v", err)
		}
		if d.DisplayName != "Alice's phone" || d.CreatedTS < before || d.LastSeenTS != d.CreatedTS || d.LastSeenIP != "" {
			t.Errorf("Device = %+v", d)
		}

		// A token without expiry or refresh token.
		login(t, db, alice, "LAPTOP", "l1", "")
		o, err = db.TokenOwner(ctx, hash("l1"))
		if err != nil || o.ExpiresTS != 0 || o.RefreshHash != nil || o.RefreshPending {
			t.Errorf("TokenOwner(no expiry) = %+v, %v", o, err)
		}
		_, err = db.TokenOwner(ctx, hash("unknown"))
		wantErr(t, "TokenOwner(unknown)", err, storage.ErrNotFound)

		// Logging in again with the same device ID replaces its tokens but
		// keeps its display name.
		if err := db.LoginDevice(ctx, alice, "PHONE", "new name", storage.NewTokens{AccessHash: hash("a2")}); err != nil {
			t.Fatalf("LoginDevice again: %v", err)
		}
		if liveToken(t, db, "a1") || !liveToken(t, db, "a2") || !liveToken(t, db, "l1") {
			t.Error("re-login: want a1 revoked, a2 and l1 live")
		}
		_, _, err = db.Refresh(ctx, hash("r1"), storage.NewTokens{AccessHash: hash("x")}, 0)
		wantErr(t, "Refresh of a re-logged-in device's old token", err, storage.ErrNotFound)
		if d, _ := db.Device(ctx, alice, "PHONE"); d.DisplayName != "Alice's phone" {
			t.Errorf("display name after re-login = %q, want the original", d.DisplayName)
		}

		ds, err := db.Devices(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if ids := deviceIDs(ds); !slices.Equal(ids, []string{"LAPTOP", "PHONE"}) {
			t.Errorf("Devices = %v, want [LAPTOP PHONE]", ids)
		}
		_, err = db.Device(ctx, alice, "NOPE")
		wantErr(t, "Device(unknown)", err, storage.ErrNotFound)
	})
}

func TestDeviceUpdates(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		db := storagetest.OpenDB(t, dsn)
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		login(t, db, alice, "D", "a", "")

		tests := []struct {
			name   string
			update func() error
			want   storage.Device // CreatedTS ignored
		}{
			{"rename", func() error { return db.SetDeviceDisplayName(ctx, alice, "D", "Desktop") },
				storage.Device{DisplayName: "Desktop", LastSeenTS: -1}},
			{"touch with IP", func() error { return db.TouchDevice(ctx, alice, "D", 1000, "192.0.2.1") },
				storage.Device{DisplayName: "Desktop", LastSeenTS: 1000, LastSeenIP: "192.0.2.1"}},
			{"touch without IP keeps the IP", func() error { return db.TouchDevice(ctx, alice, "D", 2000, "") },
				storage.Device{DisplayName: "Desktop", LastSeenTS: 2000, LastSeenIP: "192.0.2.1"}},
			{"clear name", func() error { return db.SetDeviceDisplayName(ctx, alice, "D", "") },
				storage.Device{LastSeenTS: 2000, LastSeenIP: "192.0.2.1"}},
			{"touch unknown device is ignored", func() error { return db.TouchDevice(ctx, alice, "NOPE", 3000, "") },
				storage.Device{LastSeenTS: 2000, LastSeenIP: "192.0.2.1"}},
		}
		for _, tt := range tests {
			if err := tt.update(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			d, err := db.Device(ctx, alice, "D")
			if err != nil {
				t.Fatal(err)
			}
			tt.want.UserID, tt.want.DeviceID, tt.want.CreatedTS = alice, "D", d.CreatedTS
			if tt.want.LastSeenTS == -1 {
				tt.want.LastSeenTS = d.CreatedTS
			}
			if d != tt.want {
				t.Errorf("%s: Device = %+v, want %+v", tt.name, d, tt.want)
			}
		}
		wantErr(t, "rename unknown device", db.SetDeviceDisplayName(ctx, alice, "NOPE", "x"), storage.ErrNotFound)
	})
}

func TestDeleteDevices(t *testing.T) {
	tests := []struct {
		name       string
		del        func(ctx context.Context, db *storage.DB, alice string) error
		wantLeft   []string // alice's devices left
		wantTokens []string // of those, the ones whose tokens work; nil: all of them
	}{
		{"DeleteDevices some", func(ctx context.Context, db *storage.DB, alice string) error {
			return db.DeleteDevices(ctx, alice, []string{"D1", "D3", "UNKNOWN"})
		}, []string{"D2"}, nil},
		{"DeleteDevices none", func(ctx context.Context, db *storage.DB, alice string) error {
			return db.DeleteDevices(ctx, alice, nil)
		}, []string{"D1", "D2", "D3"}, nil},
		{"DeleteAllDevices keep", func(ctx context.Context, db *storage.DB, alice string) error {
			return db.DeleteAllDevices(ctx, alice, "D2")
		}, []string{"D2"}, nil},
		{"DeleteAllDevices all", func(ctx context.Context, db *storage.DB, alice string) error {
			return db.DeleteAllDevices(ctx, alice, "")
		}, nil, nil},
		{"DeleteAccessToken", func(ctx context.Context, db *storage.DB, alice string) error {
			return db.DeleteAccessToken(ctx, hash(alice+"D1"))
		}, []string{"D1", "D2", "D3"}, []string{"D2", "D3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
				db := storagetest.OpenDB(t, dsn)
				ctx := t.Context()
				alice, bob := createUser(t, db, "alice"), createUser(t, db, "bob")
				all := []string{"D1", "D2", "D3"}
				for _, u := range []string{alice, bob} {
					for _, d := range all {
						login(t, db, u, d, u+d, "r"+u+d)
					}
				}
				if err := tt.del(ctx, db, alice); err != nil {
					t.Fatal(err)
				}
				ds, err := db.Devices(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				if ids := deviceIDs(ds); !slices.Equal(ids, tt.wantLeft) {
					t.Errorf("devices left = %v, want %v", ids, tt.wantLeft)
				}
				if tt.wantTokens == nil {
					tt.wantTokens = tt.wantLeft
				}
				for _, d := range all {
					want := slices.Contains(tt.wantTokens, d)
					if got := liveToken(t, db, alice+d); got != want {
						t.Errorf("access token of %s live = %v, want %v", d, got, want)
					}
					_, _, err := db.Refresh(ctx, hash("r"+alice+d), storage.NewTokens{AccessHash: hash("new" + d)}, 0)
					if got := err == nil; got != want {
						t.Errorf("refresh token of %s usable = %v (%v), want %v", d, got, err, want)
					}
					if !liveToken(t, db, bob+d) {
						t.Errorf("bob's token of %s was revoked", d)
					}
				}
				if ds, _ := db.Devices(ctx, bob); len(ds) != len(all) {
					t.Errorf("bob has %d devices left, want %d", len(ds), len(all))
				}
			})
		})
	}
}

func deviceIDs(ds []storage.Device) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.DeviceID)
	}
	return ids
}
