package clientapi_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestContext(t *testing.T) {
	apitest.ForEachServer(t, allowPublicRooms, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		room := s.CreateRoom(alice, map[string]any{"preset": "public_chat"})
		rp := "/_matrix/client/v3/rooms/" + url.PathEscape(room)
		var ids []string
		for i := 0; i < 9; i++ {
			id := s.Do("PUT", rp+fmt.Sprintf("/send/m.room.message/c%d", i), alice.Token,
				map[string]string{"msgtype": "m.text", "body": fmt.Sprint(i)}).Expect(t, 200, "").String("event_id")
			ids = append(ids, id)
		}
		r := s.Do("GET", rp+"/context/"+url.PathEscape(ids[4])+"?limit=4", alice.Token, nil).Expect(t, 200, "")
		ev, _ := r.JSON["event"].(map[string]any)
		before, _ := r.JSON["events_before"].([]any)
		after, _ := r.JSON["events_after"].([]any)
		if ev["event_id"] != ids[4] || len(before) != 2 || len(after) != 2 {
			t.Fatalf("context = %s", r.Body)
		}
		// events_before newest first, events_after oldest first.
		if before[0].(map[string]any)["event_id"] != ids[3] || before[1].(map[string]any)["event_id"] != ids[2] ||
			after[0].(map[string]any)["event_id"] != ids[5] || after[1].(map[string]any)["event_id"] != ids[6] {
			t.Errorf("window order wrong: %s", r.Body)
		}
		if state, _ := r.JSON["state"].([]any); len(state) == 0 {
			t.Errorf("no state in context")
		}
		// The tokens continue the window with /messages.
		more := s.Do("GET", rp+"/messages?dir=b&limit=1&from="+url.QueryEscape(r.String("start")), alice.Token, nil).Expect(t, 200, "")
		if chunk, _ := more.JSON["chunk"].([]any); len(chunk) != 1 || chunk[0].(map[string]any)["event_id"] != ids[1] {
			t.Errorf("paginating back from start: %s", more.Body)
		}
		more = s.Do("GET", rp+"/messages?dir=f&limit=1&from="+url.QueryEscape(r.String("end")), alice.Token, nil).Expect(t, 200, "")
		if chunk, _ := more.JSON["chunk"].([]any); len(chunk) != 1 || chunk[0].(map[string]any)["event_id"] != ids[7] {
			t.Errorf("paginating forward from end: %s", more.Body)
		}
		// A filter applies to the window.
		f := url.QueryEscape(`{"types":["m.room.member"]}`)
		r = s.Do("GET", rp+"/context/"+url.PathEscape(ids[4])+"?limit=2&filter="+f, alice.Token, nil).Expect(t, 200, "")
		if after, _ := r.JSON["events_after"].([]any); len(after) != 0 {
			t.Errorf("filtered events_after = %v", after)
		}
		// Strangers and unknown events: 404.
		s.Do("GET", rp+"/context/"+url.PathEscape(ids[4]), bob.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", rp+"/context/$nope", alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", rp+"/context/"+url.PathEscape(ids[4])+"?limit=x", alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
	})
}

func TestTimestampToEvent(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		room := s.CreateRoom(alice, map[string]any{})
		rp := "/_matrix/client/v3/rooms/" + url.PathEscape(room)
		first := s.Do("PUT", rp+"/send/m.room.message/t1", alice.Token, map[string]string{"msgtype": "m.text", "body": "1"}).Expect(t, 200, "").String("event_id")
		time.Sleep(20 * time.Millisecond)
		mid := time.Now().UnixMilli()
		time.Sleep(20 * time.Millisecond)
		second := s.Do("PUT", rp+"/send/m.room.message/t2", alice.Token, map[string]string{"msgtype": "m.text", "body": "2"}).Expect(t, 200, "").String("event_id")

		tte := "/_matrix/client/v1/rooms/" + url.PathEscape(room) + "/timestamp_to_event"
		r := s.Do("GET", fmt.Sprintf("%s?ts=%d&dir=f", tte, mid), alice.Token, nil).Expect(t, 200, "")
		if r.String("event_id") != second || r.JSON["origin_server_ts"] == nil {
			t.Errorf("dir=f: %s, want %s", r.Body, second)
		}
		r = s.Do("GET", fmt.Sprintf("%s?ts=%d&dir=b", tte, mid), alice.Token, nil).Expect(t, 200, "")
		if r.String("event_id") != first {
			t.Errorf("dir=b: %s, want %s", r.Body, first)
		}
		s.Do("GET", fmt.Sprintf("%s?ts=%d&dir=f", tte, time.Now().Add(time.Hour).UnixMilli()), alice.Token, nil).Expect(t, 404, "M_NOT_FOUND")
		s.Do("GET", tte+"?ts=1&dir=x", alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", tte+"?dir=f", alice.Token, nil).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("GET", fmt.Sprintf("%s?ts=%d&dir=b", tte, mid), bob.Token, nil).Expect(t, 403, "M_FORBIDDEN")
	})
}
