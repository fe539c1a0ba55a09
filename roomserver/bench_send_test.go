package roomserver_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// BenchmarkSendHTTP measures PUT /send over loopback HTTP into one room on
// SQLite, from request to stored event (sequential: latency and CPU per
// event, not throughput).
func BenchmarkSendHTTP(b *testing.B) {
	c := apitest.Config(b, "sqlite:"+filepath.Join(b.TempDir(), "aula.db"))
	s := apitest.Start(b, c)
	u := s.Register("alice", "pw")
	room := s.Do("POST", "/_matrix/client/v3/createRoom", u.Token, map[string]any{}).Expect(b, 200, "").String("room_id")
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Do("PUT", path+fmt.Sprint(i), u.Token, map[string]string{"msgtype": "m.text", "body": "hello"}).Expect(b, 200, "")
	}
}
