package clientapi_test

import (
	"net/url"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

func TestKnock(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		bob := s.Register("bob", "pw")
		carol := s.Register("carol", "pw")
		knockRoom := s.CreateRoom(alice, map[string]any{
			"room_alias_name": "knockers",
			"initial_state":   []map[string]any{{"type": "m.room.join_rules", "content": map[string]string{"join_rule": "knock"}}},
		})
		inviteOnly := s.CreateRoom(alice, map[string]any{})
		kp := "/_matrix/client/v3/rooms/" + url.PathEscape(knockRoom)

		// Knocking on a knock room by alias works; the knock shows in the
		// member list with its reason.
		r := s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape("#knockers:aula.test"), bob.Token, map[string]string{"reason": "let me in"}).Expect(t, 200, "")
		if r.String("room_id") != knockRoom {
			t.Fatalf("knock answered %s", r.Body)
		}
		st := s.Do("GET", kp+"/state/m.room.member/"+url.PathEscape(bob.ID), alice.Token, nil).Expect(t, 200, "")
		if st.String("membership") != "knock" || st.String("reason") != "let me in" {
			t.Errorf("bob's member state = %s", st.Body)
		}
		// An invite-only room refuses knocks; a joined user cannot knock.
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(inviteOnly), carol.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(knockRoom), alice.Token, map[string]any{}).Expect(t, 403, "M_FORBIDDEN")
		s.Do("POST", "/_matrix/client/v3/knock/nonsense", carol.Token, map[string]any{}).Expect(t, 400, "M_INVALID_PARAM")

		// The knock is answered with an invite, then bob joins.
		s.Do("POST", kp+"/invite", alice.Token, map[string]string{"user_id": bob.ID}).Expect(t, 200, "")
		s.Do("POST", kp+"/join", bob.Token, map[string]any{}).Expect(t, 200, "")
		// Or refused with a kick, after which the knocker may knock again.
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(knockRoom), carol.Token, map[string]any{}).Expect(t, 200, "")
		s.Do("POST", kp+"/kick", alice.Token, map[string]string{"user_id": carol.ID, "reason": "no"}).Expect(t, 200, "")
		s.Do("POST", "/_matrix/client/v3/knock/"+url.PathEscape(knockRoom), carol.Token, map[string]any{}).Expect(t, 200, "")
	})
}
