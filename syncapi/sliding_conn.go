package syncapi

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Connection state of simplified sliding sync. A connection is a (user,
// device, conn_id); it remembers, for each position it handed out, what
// the client then had: which rooms it was sent, with which required_state
// and up to which stream position, and the lists' counts. A request names
// the position it continues from, so a client that repeats a request
// (because the answer was lost) gets a correct answer again. The state
// lives in memory only: after a restart, or once a connection has been
// idle for connIdle, its positions are unknown and the client starts
// afresh (400 M_UNKNOWN_POS).
const (
	// connIdle is how long an unused connection is kept.
	connIdle = 30 * time.Minute
	// maxConnsPerDevice bounds the connections of one device; the least
	// recently used goes first.
	maxConnsPerDevice = 10
	// maxConnStates bounds the positions a connection keeps.
	maxConnStates = 4
	// sweepEvery is how often idle connections are looked for.
	sweepEvery = time.Minute
)

// Sliding serves simplified sliding sync on top of the sync service.
type Sliding struct {
	s     *Service
	conns *connStore
	bumps *bumpCache // sliding_rooms.go
}

// NewSliding returns the sliding sync service of a sync service.
func NewSliding(s *Service) *Sliding {
	return &Sliding{s: s, conns: &connStore{conns: map[string]*slidingConn{}}, bumps: &bumpCache{m: map[string]bumpEntry{}}}
}

// connStore holds the connections.
type connStore struct {
	mu        sync.Mutex
	conns     map[string]*slidingConn // user "\x00" device "\x00" conn_id
	lastSweep time.Time
}

// slidingConn is one connection.
type slidingConn struct {
	key    string
	device string // user "\x00" device
	used   time.Time
	seq    int64                // the last position's number
	states map[int64]*connState // by position number
}

// connState is what the client had at one position.
type connState struct {
	seq   int64               // the position's number
	tok   Token               // the stream position (and typing serial) reached
	rooms map[string]sentRoom // rooms sent on this connection
	lists map[string]int      // list counts last sent
}

// sentRoom is what a connection has of one room.
type sentRoom struct {
	pos        int64  // stream position the client has the room up to
	config     string // the required_state it was sent with (configKey)
	membership string
	notif      int // notification and highlight counts sent
	highlight  int
}

// lookup returns the connection and the state at pos. An empty pos
// starts the connection afresh (prev nil); an unknown pos is
// M_UNKNOWN_POS.
func (cs *connStore) lookup(userID, deviceID, connID, pos string) (*slidingConn, *connState, error) {
	key := userID + "\x00" + deviceID + "\x00" + connID
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sweep(now)
	c := cs.conns[key]
	if pos == "" {
		c = &slidingConn{key: key, device: userID + "\x00" + deviceID, states: map[int64]*connState{}}
		cs.conns[key] = c
		c.used = now
		cs.limitDevice(c)
		return c, nil, nil
	}
	seq, streamPos, ok := parsePos(pos)
	if c == nil || !ok {
		return nil, nil, errUnknownPos()
	}
	st := c.states[seq]
	if st == nil || st.tok.Pos != streamPos {
		return nil, nil, errUnknownPos()
	}
	c.used = now
	return c, st, nil
}

// store records the state a response handed out and returns its
// position. States older than the one the request continued from are
// dropped: the client has moved past them.
func (cs *connStore) store(c *slidingConn, prev, next *connState) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c.seq++
	next.seq = c.seq
	for seq := range c.states {
		if prev != nil && seq < prev.seq {
			delete(c.states, seq)
		}
	}
	for len(c.states) >= maxConnStates {
		oldest := c.seq
		for seq := range c.states {
			oldest = min(oldest, seq)
		}
		delete(c.states, oldest)
	}
	c.states[c.seq] = next
	c.used = time.Now()
	if cs.conns[c.key] != c { // replaced or swept meanwhile: keep this one
		cs.conns[c.key] = c
		cs.limitDevice(c)
	}
	return formatPos(c.seq, next.tok)
}

// sweep drops idle connections, at most once per sweepEvery.
func (cs *connStore) sweep(now time.Time) {
	if now.Sub(cs.lastSweep) < sweepEvery {
		return
	}
	cs.lastSweep = now
	for k, c := range cs.conns {
		if now.Sub(c.used) > connIdle {
			delete(cs.conns, k)
		}
	}
}

// limitDevice drops the least recently used connections of c's device
// beyond maxConnsPerDevice.
func (cs *connStore) limitDevice(keep *slidingConn) {
	var mine []*slidingConn
	for _, c := range cs.conns {
		if c.device == keep.device {
			mine = append(mine, c)
		}
	}
	for len(mine) > maxConnsPerDevice {
		oldest := -1
		for i, c := range mine {
			if c != keep && (oldest < 0 || c.used.Before(mine[oldest].used)) {
				oldest = i
			}
		}
		delete(cs.conns, mine[oldest].key)
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
}

// DropDevice forgets the connections of a device (call on logout).
func (sl *Sliding) DropDevice(userID, deviceID string) {
	cs := sl.conns
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for k, c := range cs.conns {
		if c.device == userID+"\x00"+deviceID {
			delete(cs.conns, k)
		}
	}
}

// A position's text form is a /sync token followed by the position's
// number, "s<stream>_<typing>_p<n>": /messages and /relations accept it as
// a from token (they read the stream position only).
func formatPos(seq int64, tok Token) string {
	return "s" + strconv.FormatInt(tok.Pos, 10) + "_" + strconv.FormatInt(tok.Typing, 10) + "_p" + strconv.FormatInt(seq, 10)
}

func parsePos(pos string) (seq, streamPos int64, ok bool) {
	rest, found := strings.CutPrefix(pos, "s")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "p") {
		return 0, 0, false
	}
	sp, err1 := strconv.ParseInt(parts[0], 10, 64)
	n, err2 := strconv.ParseInt(parts[2][1:], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return n, sp, true
}
