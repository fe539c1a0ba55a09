package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aula-chat/aula/storage/storagetest"
)

// TestNoticeAndConsentCommands runs `aula notice send` and `aula consent
// status` against a configured server's database on every engine.
func TestNoticeAndConsentCommands(t *testing.T) {
	t.Parallel()
	storagetest.ForEachDB(t, func(t *testing.T, dsn string) {
		dir := t.TempDir()
		cfg := writeFile(t, dir, "aula.yaml", fmt.Sprintf(`server_name: "chat.uni.example"
listen: "localhost:0"
data_dir: %q
database: %q
password_login:
  bcrypt_cost: 4
consent:
  enabled: true
  form_secret: "cli-test-secret-0123456789"
`, filepath.Join(dir, "data"), dsn))
		for _, u := range []string{"alice", "bob"} {
			run{args: []string{"create-account", "--config", cfg, "--user", u}, stdin: "pw\n"}.ok(t)
		}

		out := run{args: []string{"notice", "send", "--config", cfg, "--user", "@alice:chat.uni.example", "--text", "Wartung heute Nacht"}}.ok(t)
		if !strings.Contains(out.stdout, "to @alice:chat.uni.example") {
			t.Errorf("notice send: %s", out)
		}
		out = run{args: []string{"notice", "send", "--config", cfg, "--all-users", "--text", "Hello all"}}.ok(t)
		if !strings.Contains(out.stdout, "sent 2 notices") || strings.Contains(out.stdout, "@administrator") {
			t.Errorf("notice send --all-users: %s", out)
		}
		run{args: []string{"notice", "send", "--config", cfg, "--user", "@nobody:chat.uni.example", "--text", "x"}}.fails(t, "User not found")
		run{args: []string{"notice", "send", "--config", cfg, "--text", "x"}}.fails(t, "--user")
		run{args: []string{"notice", "send", "--config", cfg, "--user", "alice"}}.fails(t, "--text")
		run{args: []string{"notice"}}.fails(t, "notice send")

		out = run{args: []string{"consent", "status", "--config", cfg, "--user", "alice"}}.ok(t)
		for _, want := range []string{"@alice:chat.uni.example", "current version 1.0", "agreed current:  no", "last agreed:     never"} {
			if !strings.Contains(out.stdout, want) {
				t.Errorf("consent status lacks %q:\n%s", want, out.stdout)
			}
		}
		run{args: []string{"consent", "status", "--config", cfg, "--user", "nobody"}}.fails(t, "User not found")
		run{args: []string{"consent", "status", "--config", cfg}}.fails(t, "--user")
	})
}
