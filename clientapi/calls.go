package clientapi

import (
	"time"

	"github.com/aula-chat/aula/delayed"
	"github.com/aula-chat/aula/openid"
)

// CallServices are the services behind the call endpoints: OpenID tokens
// (openid.go) and MSC4140 delayed events (delayed.go). Either may be nil,
// which turns its endpoints off.
type CallServices struct {
	OpenID  *openid.Service
	Delayed *delayed.Service
}

// calls is the state of the call endpoints.
type calls struct {
	CallServices
	turnLimit    *callLimiter // GET /voip/turnServer, per user
	delayedLimit *callLimiter // delayed event actions, per user or address
}

func newCalls(s CallServices) *calls {
	return &calls{
		CallServices: s,
		// Clients ask for TURN credentials at start and again before they
		// expire: a few a minute is plenty.
		turnLimit: newCallLimiter(10, 6*time.Second),
		// Element Call restarts its delayed leave event every few seconds
		// per call; a reverse proxy without trusted_proxies makes every
		// unauthenticated request come from one address.
		delayedLimit: newCallLimiter(100, 20*time.Millisecond),
	}
}
