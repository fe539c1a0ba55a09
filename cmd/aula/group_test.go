package main_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/storage/storagetest"
)

// TestGroupAndExportCommands: `aula group create` makes a group with its
// members joined (refusing unknown members by name), and `aula
// export-user` writes a zip with the user's events.
func TestGroupAndExportCommands(t *testing.T) {
	t.Parallel()
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		args := []string{"generate-config", "--server-name", "uni.example", "--data-dir", filepath.Join(dir, "data")}
		if !strings.HasPrefix(dsn, "sqlite:") {
			args = append(args, "--database", dsn)
		}
		cfg := writeFile(t, dir, "aula.yaml", run{args: args}.ok(t).stdout)
		for _, u := range []string{"alice", "bob"} {
			run{args: []string{"create-account", "--config", cfg, "--user", u}, stdin: "password-of-" + u + "\n"}.ok(t)
		}

		run{args: []string{"group", "create", "--config", cfg, "--name", "Seminar X", "--members", "@bob:uni.example,@ghost:uni.example"}}.
			fails(t, "@ghost:uni.example")
		run{args: []string{"group", "create", "--config", cfg, "--members", "@bob:uni.example"}}.fails(t, "--name")
		out := run{args: []string{"group", "create", "--config", cfg, "--name", "Seminar X", "--topic", "Thursdays",
			"--members", "@alice:uni.example, @bob:uni.example", "--creator", "@alice:uni.example"}}.ok(t)
		roomID := strings.TrimSpace(strings.TrimPrefix(out.stdout, "created "))
		if !strings.HasPrefix(roomID, "!") {
			t.Fatalf("group create printed %q", out.stdout)
		}
		// Without --creator, the server notices account creates it.
		run{args: []string{"group", "create", "--config", cfg, "--name", "Faculty", "--space", "--members", "@bob:uni.example"}}.ok(t)

		zipPath := filepath.Join(dir, "alice.zip")
		run{args: []string{"export-user", "--config", cfg, "--user", "@nobody:uni.example", "--out", zipPath}}.fails(t, "not found")
		run{args: []string{"export-user", "--config", cfg, "--user", "@alice:uni.example", "--out", zipPath}}.ok(t)
		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			t.Fatalf("export is not a zip: %v", err)
		}
		defer zr.Close()
		var events string
		for _, f := range zr.File {
			if f.Name != "events.jsonl" {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			events = string(b)
		}
		if !strings.Contains(events, roomID) || !strings.Contains(events, `"Seminar X"`) {
			t.Errorf("alice's events.jsonl lacks the group she created:\n%s", events)
		}
	})
}

// TestGroupAndNoticeWhileServing: with the server running, `aula group
// create` and `aula notice send` go through its admin socket, so the
// server numbers their events: members see the group in /joined_rooms,
// /sync reports it and the notices, and later events still arrive. After
// the server stops, the commands work on the database again.
func TestGroupAndNoticeWhileServing(t *testing.T) {
	t.Parallel()
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		cfgPath := writeFile(t, dir, "aula.yaml", fmt.Sprintf("server_name: \"uni.example\"\nlisten: \"localhost:0\"\ndata_dir: %q\ndatabase: %q\npassword_login:\n  bcrypt_cost: 4\n", filepath.Join(dir, "data"), dsn))
		for _, u := range []string{"alice", "bob"} {
			run{args: []string{"create-account", "--config", cfgPath, "--user", u}, stdin: "password-of-" + u + "\n"}.ok(t)
		}
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		addrc := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() { done <- a.Serve(ctx, func(addr net.Addr) { addrc <- addr }) }()
		var base string
		select {
		case addr := <-addrc:
			base = "http://" + addr.String()
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		}
		call := func(method, path, token string, body any) map[string]any {
			t.Helper()
			var rd io.Reader
			if body != nil {
				raw, _ := json.Marshal(body)
				rd = bytes.NewReader(raw)
			}
			req, _ := http.NewRequest(method, base+path, rd)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
			}
			return out
		}
		login := func(user string) string {
			return call("POST", "/_matrix/client/v3/login", "", map[string]any{
				"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": user}, "password": "password-of-" + user,
			})["access_token"].(string)
		}
		alice, bob := login("alice"), login("bob")
		// syncUntil syncs alice from since until check accepts the rooms.
		syncUntil := func(since string, what string, check func(rooms map[string]any) bool) string {
			t.Helper()
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				out := call("GET", "/_matrix/client/v3/sync?timeout=3000&since="+since, alice, nil)
				since = out["next_batch"].(string)
				if rooms, _ := out["rooms"].(map[string]any); rooms != nil && check(rooms) {
					return since
				}
			}
			t.Fatalf("/sync never reported %s", what)
			return ""
		}
		since := call("GET", "/_matrix/client/v3/sync", alice, nil)["next_batch"].(string)

		out := run{args: []string{"group", "create", "--config", cfgPath, "--name", "Seminar X",
			"--members", "@bob:uni.example", "--creator", "@alice:uni.example"}}.ok(t)
		roomID := strings.TrimSpace(strings.TrimPrefix(out.stdout, "created "))
		if !strings.HasPrefix(roomID, "!") {
			t.Fatalf("group create printed %q", out.stdout)
		}
		for who, token := range map[string]string{"alice": alice, "bob": bob} {
			joined, _ := call("GET", "/_matrix/client/v3/joined_rooms", token, nil)["joined_rooms"].([]any)
			if !slices.Contains(joined, any(roomID)) {
				t.Errorf("%s's joined_rooms %v lack the group %s", who, joined, roomID)
			}
		}
		inJoin := func(room string) func(map[string]any) bool {
			return func(rooms map[string]any) bool {
				join, _ := rooms["join"].(map[string]any)
				_, ok := join[room]
				return ok
			}
		}
		since = syncUntil(since, "the new group", inJoin(roomID))
		// Events after the command's get later stream positions.
		eventID := call("PUT", "/_matrix/client/v3/rooms/"+roomID+"/send/m.room.message/t1", bob,
			map[string]string{"msgtype": "m.text", "body": "after the command"})["event_id"].(string)
		since = syncUntil(since, "bob's message", func(rooms map[string]any) bool {
			join, _ := rooms["join"].(map[string]any)
			room, _ := join[roomID].(map[string]any)
			timeline, _ := room["timeline"].(map[string]any)
			events, _ := timeline["events"].([]any)
			return slices.ContainsFunc(events, func(e any) bool { m, _ := e.(map[string]any); return m["event_id"] == eventID })
		})

		out = run{args: []string{"notice", "send", "--config", cfgPath, "--user", "alice", "--text", "Maintenance tonight"}}.ok(t)
		if !strings.Contains(out.stdout, "to @alice:uni.example") {
			t.Errorf("notice send: %s", out.stdout)
		}
		syncUntil(since, "the notices room invite", func(rooms map[string]any) bool {
			invite, _ := rooms["invite"].(map[string]any)
			return len(invite) > 0
		})
		out = run{args: []string{"notice", "send", "--config", cfgPath, "--all-users", "--text", "Hello all"}}.ok(t)
		if !strings.Contains(out.stdout, "sent 2 notices") {
			t.Errorf("notice send --all-users: %s", out.stdout)
		}
		run{args: []string{"notice", "send", "--config", cfgPath, "--user", "@nobody:uni.example", "--text", "x"}}.fails(t, "User not found")
		run{args: []string{"group", "create", "--config", cfgPath, "--name", "Y", "--members", "@ghost:uni.example"}}.fails(t, "@ghost:uni.example")

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "data", "admin.sock")); !os.IsNotExist(err) {
			t.Errorf("admin socket still there after shutdown: %v", err)
		}
		a.Close()
		// No server: the command opens the database itself.
		run{args: []string{"group", "create", "--config", cfgPath, "--name", "Offline", "--members", "@bob:uni.example"}}.ok(t)
	})
}
