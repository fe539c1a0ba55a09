package admin

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// exportPage is how many events one step of an export reads.
const exportPage = 1000

// CheckExport returns 404 M_NOT_FOUND unless userID is a local account
// (deactivated accounts included: their data can still be asked for), so
// that callers can answer before they start writing an archive.
func (o *Ops) CheckExport(ctx context.Context, userID string) error {
	if !o.isLocal(userID) {
		return mxerr.InvalidParam("Only local users can be exported")
	}
	_, err := o.db.User(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("User not found")
	}
	return err
}

// Export writes a zip archive of everything the server holds about userID
// (the rights of access and data portability), as JSON files:
//
//	profile.json       the account: user ID, display name, avatar, creation time, admin, deactivated, erased
//	account_data.json  global and per-room account data, by type
//	devices.json       devices (sessions) with creation and last-seen times
//	consent.json       every privacy-policy version agreed to, with the time
//	rooms.json         current membership in every room
//	events.jsonl       every event the user sent, one per line, in the client format, oldest first
//	media.json         every file uploaded, with type, name, size and time (not the files themselves)
func (o *Ops) Export(ctx context.Context, userID string, w io.Writer) error {
	if err := o.CheckExport(ctx, userID); err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	steps := []struct {
		name string
		fn   func(context.Context, string, io.Writer) error
	}{
		{"profile.json", o.exportProfile},
		{"account_data.json", o.exportAccountData},
		{"devices.json", o.exportDevices},
		{"consent.json", o.exportConsent},
		{"rooms.json", o.exportRooms},
		{"events.jsonl", o.exportEvents},
		{"media.json", o.exportMedia},
	}
	now := time.Now()
	for _, s := range steps {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: s.name, Method: zip.Deflate, Modified: now})
		if err != nil {
			return fmt.Errorf("admin: export %s: %w", s.name, err)
		}
		if err := s.fn(ctx, userID, f); err != nil {
			return fmt.Errorf("admin: export %s: %w", s.name, err)
		}
	}
	return zw.Close()
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *Ops) exportProfile(ctx context.Context, userID string, w io.Writer) error {
	u, err := o.db.User(ctx, userID)
	if err != nil {
		return err
	}
	erased, err := o.db.IsErased(ctx, userID)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{
		"user_id":     u.UserID,
		"displayname": optional(u.DisplayName),
		"avatar_url":  optional(u.AvatarURL),
		"user_type":   optional(u.UserType),
		"created_ts":  u.CreatedTS,
		"admin":       u.IsAdmin,
		"deactivated": u.Deactivated,
		"erased":      erased,
	})
}

func (o *Ops) exportAccountData(ctx context.Context, userID string, w io.Writer) error {
	all, err := o.db.AccountDataSince(ctx, userID, 0)
	if err != nil {
		return err
	}
	global := map[string]json.RawMessage{}
	rooms := map[string]map[string]json.RawMessage{}
	for _, a := range all {
		if a.RoomID == "" {
			global[a.Type] = a.Content
			continue
		}
		if rooms[a.RoomID] == nil {
			rooms[a.RoomID] = map[string]json.RawMessage{}
		}
		rooms[a.RoomID][a.Type] = a.Content
	}
	return writeJSON(w, map[string]any{"global": global, "rooms": rooms})
}

func (o *Ops) exportDevices(ctx context.Context, userID string, w io.Writer) error {
	devs, err := o.db.Devices(ctx, userID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(devs))
	for _, d := range devs {
		m := map[string]any{
			"device_id":    d.DeviceID,
			"display_name": optional(d.DisplayName),
			"created_ts":   d.CreatedTS,
			"last_seen_ts": nil,
		}
		if d.LastSeenTS != 0 {
			m["last_seen_ts"] = d.LastSeenTS
		}
		if d.LastSeenIP != "" { // only with privacy.store_ip_addresses
			m["last_seen_ip"] = d.LastSeenIP
		}
		out = append(out, m)
	}
	return writeJSON(w, out)
}

func (o *Ops) exportConsent(ctx context.Context, userID string, w io.Writer) error {
	hist, err := o.db.ConsentHistory(ctx, userID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(hist))
	for _, c := range hist {
		out = append(out, map[string]any{"version": c.Version, "ts": c.TS})
	}
	return writeJSON(w, out)
}

func (o *Ops) exportRooms(ctx context.Context, userID string, w io.Writer) error {
	ms, err := o.db.MembershipsOf(ctx, userID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, map[string]any{"room_id": m.RoomID, "membership": m.Membership, "event_id": m.EventID})
	}
	return writeJSON(w, out)
}

// exportEvents writes one client-format event per line, page by page, so
// that a long history never sits in memory at once.
func (o *Ops) exportEvents(ctx context.Context, userID string, w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var after int64
	for {
		evs, err := o.db.EventsSentBy(ctx, userID, after, exportPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			ce := roomserver.ToClientEvent(ev, nil)
			delete(ce.Unsigned, "age") // relative to the export, meaningless in a file
			if err := enc.Encode(ce); err != nil {
				return err
			}
		}
		if len(evs) < exportPage {
			return nil
		}
		after = evs[len(evs)-1].StreamPos
	}
}

func (o *Ops) exportMedia(ctx context.Context, userID string, w io.Writer) error {
	media, err := o.db.UserMedia(ctx, userID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(media))
	for _, m := range media {
		out = append(out, map[string]any{
			"content_uri":  "mxc://" + o.cfg.ServerName + "/" + m.MediaID,
			"content_type": m.ContentType,
			"upload_name":  m.UploadName,
			"size":         m.Size,
			"created_ts":   m.CreatedTS,
			"uploaded_ts":  m.UploadedTS,
		})
	}
	return writeJSON(w, out)
}
