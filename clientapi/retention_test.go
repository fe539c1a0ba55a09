package clientapi_test

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/apitest"
)

// TestRetentionPurge: with retention.max_lifetime, messages older than
// the limit lose their content while the room's state stays, and
// /messages, /context and /sync keep working, also with tokens from
// before the purge. Off by default.
func TestRetentionPurge(t *testing.T) {
	apitest.ForEachServer(t, func(c *config.Config) { c.Retention.MaxLifetime = config.Duration(time.Hour) }, func(t *testing.T, s *apitest.Server) {
		ctx := context.Background()
		alice := s.Register("alice", "pw-alice-123")
		bob := s.Register("bob", "pw-bob-12345")
		roomID := s.CreateRoom(alice, map[string]any{"name": "Kept name", "topic": "Kept topic"})
		s.Invite(alice, roomID, bob)
		s.Join(bob, roomID)
		since := s.Do("GET", "/_matrix/client/v3/sync", bob.Token, nil).Expect(t, 200, "").String("next_batch")
		old := s.SendText(alice, roomID, "an old message")
		page := s.Do("GET", privacyPath(roomID, "messages")+"?dir=b&limit=1", bob.Token, nil).Expect(t, 200, "")
		token := page.String("end")

		// Nothing is old yet.
		if n, err := s.App.AdminOps.PurgeExpired(ctx, time.Now()); err != nil || n != 0 {
			t.Fatalf("purge now = %d, %v; want 0", n, err)
		}
		// Two hours later, every message is.
		n, err := s.App.AdminOps.PurgeExpired(ctx, time.Now().Add(2*time.Hour))
		if err != nil || n == 0 {
			t.Fatalf("purge in 2h = %d, %v", n, err)
		}
		if n2, err := s.App.AdminOps.PurgeExpired(ctx, time.Now().Add(2*time.Hour)); err != nil || n2 != 0 {
			t.Errorf("second purge = %d, %v; want 0 (nothing new)", n2, err)
		}
		expectGone(t, s, bob, roomID, old, "an old message", since)
		// Paginating from a token taken before the purge still answers.
		r := s.Do("GET", privacyPath(roomID, "messages")+"?dir=b&limit=10&from="+url.QueryEscape(token), bob.Token, nil).Expect(t, 200, "")
		if bytes.Contains(r.Body, []byte("an old message")) {
			t.Errorf("/messages from an old token shows purged content: %s", r.Body)
		}
		// State stays.
		name := s.Do("GET", privacyPath(roomID, "state", "m.room.name", ""), bob.Token, nil).Expect(t, 200, "")
		if name.String("name") != "Kept name" {
			t.Errorf("room name after purge = %s", name.Body)
		}
		topic := s.Do("GET", privacyPath(roomID, "state", "m.room.topic", ""), bob.Token, nil).Expect(t, 200, "")
		if topic.String("topic") != "Kept topic" {
			t.Errorf("room topic after purge = %s", topic.Body)
		}
		// The room goes on.
		fresh := s.SendText(bob, roomID, "a new message")
		ev := s.Do("GET", privacyPath(roomID, "event", fresh), alice.Token, nil).Expect(t, 200, "")
		if c, _ := ev.JSON["content"].(map[string]any); c["body"] != "a new message" {
			t.Errorf("new message = %s", ev.Body)
		}
		s.Do("GET", "/_matrix/client/v3/sync?since="+url.QueryEscape(since), bob.Token, nil).Expect(t, 200, "")
	})
}

// TestRetentionOffByDefault: without max_lifetime nothing is purged.
func TestRetentionOffByDefault(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw-alice-123")
		roomID := s.CreateRoom(alice, nil)
		id := s.SendText(alice, roomID, "kept forever")
		if n, err := s.App.AdminOps.PurgeExpired(context.Background(), time.Now().Add(100*365*24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("purge = %d, %v", n, err)
		}
		ev := s.Do("GET", privacyPath(roomID, "event", id), alice.Token, nil).Expect(t, 200, "")
		if c, _ := ev.JSON["content"].(map[string]any); c["body"] != "kept forever" {
			t.Errorf("message = %s", ev.Body)
		}
	})
}
