package syncapi

import (
	"errors"
	"testing"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
)

func isUnknownPos(err error) bool {
	var e *mxerr.Error
	return errors.As(err, &e) && e.Code == "M_UNKNOWN_POS" && e.Status == 400
}

func TestSlidingConnPositions(t *testing.T) {
	cs := &connStore{conns: map[string]*slidingConn{}}
	c, prev, err := cs.lookup("@a:x", "D", "room-list", "")
	if err != nil || prev != nil {
		t.Fatalf("new connection: %v %v", prev, err)
	}
	p1 := cs.store(c, nil, &connState{tok: Token{Pos: 10}})
	c2, st, err := cs.lookup("@a:x", "D", "room-list", p1)
	if err != nil || c2 != c || st.tok.Pos != 10 {
		t.Fatalf("lookup of %s: %v %v", p1, st, err)
	}
	p2 := cs.store(c, st, &connState{tok: Token{Pos: 12}})
	// The position continued from stays valid (a lost answer), the new one too.
	for _, p := range []string{p1, p2} {
		if _, _, err := cs.lookup("@a:x", "D", "room-list", p); err != nil {
			t.Fatalf("lookup of %s: %v", p, err)
		}
	}
	// Moving on from p2 drops p1.
	_, st2, _ := cs.lookup("@a:x", "D", "room-list", p2)
	cs.store(c, st2, &connState{tok: Token{Pos: 13}})
	if _, _, err := cs.lookup("@a:x", "D", "room-list", p1); !isUnknownPos(err) {
		t.Fatalf("old position: %v, want M_UNKNOWN_POS", err)
	}
	// Other users, devices and conn_ids, and a tampered stream position.
	for _, k := range [][3]string{{"@b:x", "D", "room-list"}, {"@a:x", "E", "room-list"}, {"@a:x", "D", "other"}} {
		if _, _, err := cs.lookup(k[0], k[1], k[2], p2); !isUnknownPos(err) {
			t.Fatalf("%v: %v, want M_UNKNOWN_POS", k, err)
		}
	}
	if _, _, err := cs.lookup("@a:x", "D", "room-list", "s11_0_p2"); !isUnknownPos(err) {
		t.Fatalf("tampered: %v", err)
	}
	// Idle connections expire.
	c.used = time.Now().Add(-connIdle - time.Minute)
	cs.lastSweep = time.Time{}
	if _, _, err := cs.lookup("@a:x", "D", "room-list", p2); !isUnknownPos(err) {
		t.Fatalf("expired: %v", err)
	}
}

func TestSlidingConnLimitPerDevice(t *testing.T) {
	cs := &connStore{conns: map[string]*slidingConn{}}
	for i := range maxConnsPerDevice + 5 {
		c, _, _ := cs.lookup("@a:x", "D", string(rune('a'+i)), "")
		c.used = time.Now().Add(time.Duration(i) * time.Second)
	}
	cs.lookup("@a:x", "E", "x", "")
	n := 0
	for _, c := range cs.conns {
		if c.device == "@a:x\x00D" {
			n++
		}
	}
	if n != maxConnsPerDevice || len(cs.conns) != maxConnsPerDevice+1 {
		t.Fatalf("%d connections of the device, %d in all", n, len(cs.conns))
	}
}

func TestSlidingRequiredStateMatch(t *testing.T) {
	rc := &roomConfig{}
	rc.merge(SlidingRoomConfig{RequiredState: [][]string{{"m.room.name", ""}, {"m.room.member", "$ME"}, {"m.space.child", "*"}}})
	rc.merge(SlidingRoomConfig{TimelineLimit: 5, RequiredState: [][]string{{"m.room.name", ""}, {"m.room.member", "@c:x"}}})
	rc.finish()
	if rc.timeline != 5 || len(rc.pairs) != 4 || rc.allMembers() {
		t.Fatalf("merged %+v", rc)
	}
	if got := rc.explicitMembers(); len(got) != 1 || got[0] != "@c:x" {
		t.Fatalf("explicit members %v", got)
	}
	key := func(s string) *string { return &s }
	cases := []struct {
		typ, sk string
		want    bool
	}{
		{"m.room.name", "", true}, {"m.room.topic", "", false}, {"m.room.member", "@a:x", true},
		{"m.room.member", "@b:x", false}, {"m.room.member", "@c:x", true}, {"m.space.child", "!r:x", true},
	}
	for _, c := range cases {
		ev := roomserverEvent(c.typ, key(c.sk))
		if got := rc.wants(ev, "@a:x"); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.typ, c.sk, got, c.want)
		}
	}
}

func roomserverEvent(typ string, stateKey *string) roomserver.ClientEvent {
	return roomserver.ClientEvent{Type: typ, StateKey: stateKey}
}
