package clientapi_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// readZip returns the files of a zip archive by name.
func readZip(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("not a zip archive: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	return files
}

// TestAdminExportUser: the export archive holds the user's profile,
// account data, devices, rooms and every event they sent, as JSON.
func TestAdminExportUser(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		admin := s.RegisterAdmin("admin", "pw-admin-123")
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-12345")
		s.Do("PUT", "/_matrix/client/v3/profile/"+url.PathEscape(alice.ID)+"/displayname", alice.Token,
			map[string]string{"displayname": "Alice A."}).Expect(t, 200, "")
		s.Do("PUT", "/_matrix/client/v3/user/"+url.PathEscape(alice.ID)+"/account_data/org.example.pref", alice.Token,
			map[string]string{"theme": "dark"}).Expect(t, 200, "")
		roomID := s.CreateRoom(alice, map[string]any{"name": "Exported"})
		s.Invite(alice, roomID, bob)
		s.Join(bob, roomID)
		sent := s.SendText(alice, roomID, "my exported message")
		s.SendText(bob, roomID, "bob's message is not alice's data")

		path := "/_aula/admin/v1/users/" + url.PathEscape(alice.ID) + "/export"
		s.Do("GET", path, alice.Token, nil).Expect(t, 403, "M_FORBIDDEN")
		s.Do("GET", path, "", nil).Expect(t, 401, "M_MISSING_TOKEN")
		s.Do("GET", "/_aula/admin/v1/users/"+url.PathEscape("@nobody:aula.test")+"/export", admin.Token, nil).Expect(t, 404, "M_NOT_FOUND")

		r := s.Do("GET", path, admin.Token, nil)
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("export: %d %s: %.200s", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		files := readZip(t, r.Body)
		for _, name := range []string{"profile.json", "account_data.json", "devices.json", "consent.json", "rooms.json", "events.jsonl", "media.json"} {
			if _, ok := files[name]; !ok {
				t.Errorf("archive lacks %s", name)
			}
		}
		var profile map[string]any
		if err := json.Unmarshal(files["profile.json"], &profile); err != nil {
			t.Fatalf("profile.json: %v", err)
		}
		if profile["user_id"] != alice.ID || profile["displayname"] != "Alice A." {
			t.Errorf("profile.json = %s", files["profile.json"])
		}
		var ad struct {
			Global map[string]map[string]any `json:"global"`
		}
		if err := json.Unmarshal(files["account_data.json"], &ad); err != nil || ad.Global["org.example.pref"]["theme"] != "dark" {
			t.Errorf("account_data.json = %s (%v)", files["account_data.json"], err)
		}
		var devs []map[string]any
		if err := json.Unmarshal(files["devices.json"], &devs); err != nil || len(devs) != 1 || devs[0]["device_id"] != alice.DeviceID {
			t.Errorf("devices.json = %s (%v)", files["devices.json"], err)
		}
		if _, ok := devs[0]["last_seen_ip"]; ok {
			t.Errorf("devices.json holds an IP address: %s", files["devices.json"])
		}
		var rooms []map[string]any
		if err := json.Unmarshal(files["rooms.json"], &rooms); err != nil || len(rooms) != 1 || rooms[0]["room_id"] != roomID || rooms[0]["membership"] != "join" {
			t.Errorf("rooms.json = %s (%v)", files["rooms.json"], err)
		}
		found := false
		sc := bufio.NewScanner(bytes.NewReader(files["events.jsonl"]))
		sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			n++
			var ev struct {
				EventID string         `json:"event_id"`
				Sender  string         `json:"sender"`
				RoomID  string         `json:"room_id"`
				Content map[string]any `json:"content"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("events.jsonl line %d: %v", n, err)
			}
			if ev.Sender != alice.ID {
				t.Errorf("events.jsonl holds an event of %s", ev.Sender)
			}
			if ev.EventID == sent && ev.RoomID == roomID && ev.Content["body"] == "my exported message" {
				found = true
			}
		}
		if !found {
			t.Errorf("events.jsonl lacks the sent message:\n%s", files["events.jsonl"])
		}
		if n < 3 { // create, member, ..., the message
			t.Errorf("events.jsonl has %d events", n)
		}
	})
}
