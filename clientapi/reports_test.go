package clientapi_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestReports(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		mallory := s.Register("mallory", "pw")
		room := s.CreateRoom(alice, map[string]any{"invite": []string{bob.ID}})
		rp := "/_matrix/client/v3/rooms/" + url.PathEscape(room)
		s.Do("POST", rp+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
		ev := s.Do("PUT", rp+"/send/m.room.message/1", alice.Token, map[string]string{"msgtype": "m.text", "body": "spam"}).Expect(t, 200, "").String("event_id")

		s.Do("POST", rp+"/report/"+url.PathEscape(ev), bob.Token, map[string]any{"reason": "spam", "score": -100}).Expect(t, 200, "")
		s.Do("POST", rp+"/report", bob.Token, map[string]any{"reason": "whole room"}).Expect(t, 200, "")
		// Strangers cannot learn that the room or event exists.
		s.Do("POST", rp+"/report/"+url.PathEscape(ev), mallory.Token, map[string]any{"reason": "x"}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("POST", rp+"/report", mallory.Token, map[string]any{"reason": "x"}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("POST", rp+"/report/$nope", bob.Token, map[string]any{}).Expect(t, 404, "M_NOT_FOUND")
		s.Do("POST", rp+"/report/"+url.PathEscape(ev), bob.Token, map[string]any{"score": 5}).Expect(t, 400, "M_INVALID_PARAM")
		s.Do("POST", "/_matrix/client/v3/rooms/!unknown:aula.test/report", bob.Token, map[string]any{}).Expect(t, 404, "M_NOT_FOUND")

		reports, err := s.App.DB.Reports(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(reports) != 2 || reports[0].EventID != "" || reports[0].Reason != "whole room" ||
			reports[1].EventID != ev || reports[1].Reporter != bob.ID || reports[1].Score == nil || *reports[1].Score != -100 {
			t.Errorf("stored reports = %+v", reports)
		}
	})
}
