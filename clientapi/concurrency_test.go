package clientapi_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/aula-chat/aula/internal/apitest"
)

// Sends into many rooms at once commit concurrently; a repeated
// transaction ID among them must still answer with its first event and must
// not make the others fail.
func TestConcurrentSendsAcrossRooms(t *testing.T) {
	apitest.ForEachServer(t, nil, func(t *testing.T, s *apitest.Server) {
		alice := s.Register("alice", "pw")
		const rooms, perRoom = 12, 8
		ids := make([]string, rooms)
		for i := range ids {
			ids[i] = s.CreateRoom(alice, nil)
		}
		orig := s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(ids[0])+"/send/m.room.message/dup", alice.Token,
			map[string]string{"msgtype": "m.text", "body": "first try"}).Expect(t, 200, "").String("event_id")

		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		for r := range rooms {
			for k := range perRoom {
				wg.Add(1)
				go func() {
					defer wg.Done()
					txn := fmt.Sprintf("b-%d-%d", r, k)
					if r == 0 && k%2 == 0 {
						txn = "dup" // retries of an earlier request
					}
					resp := s.Do("PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(ids[r])+"/send/m.room.message/"+txn, alice.Token,
						map[string]string{"msgtype": "m.text", "body": txn})
					if resp.Status != 200 {
						t.Errorf("send %s: %d %s", txn, resp.Status, resp.Body)
						return
					}
					mu.Lock()
					got[resp.String("event_id")]++
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		if got[orig] != perRoom/2 {
			t.Errorf("retries of txn dup answered %d times with the first event, want %d", got[orig], perRoom/2)
		}
		if len(got) != rooms*perRoom-perRoom/2+1 {
			t.Errorf("%d distinct event IDs, want %d", len(got), rooms*perRoom-perRoom/2+1)
		}
		// Every room holds exactly its messages, in one chain.
		for r, room := range ids {
			resp := s.Do("GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=f&limit=100&filter="+url.QueryEscape(`{"types":["m.room.message"]}`), alice.Token, nil).Expect(t, 200, "")
			chunk, _ := resp.JSON["chunk"].([]any)
			want := perRoom
			if r == 0 {
				want = perRoom/2 + 1 // the first "dup" and the odd ones
			}
			if len(chunk) != want {
				t.Errorf("room %d holds %d messages, want %d", r, len(chunk), want)
			}
		}
	})
}
