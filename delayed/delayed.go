// Package delayed implements MSC4140 delayed events: events a client
// schedules to be sent after a delay unless it restarts the timer or
// cancels them first. Element Call schedules its call membership's "left"
// state this way, so that a client that disappears leaves the call.
//
// Delayed events are stored in the database, so they survive a restart;
// ones that came due while the server was down are sent at start-up. When
// one fires it is sent through roomserver as its owner, so the room's auth
// rules apply at that moment.
package delayed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/roomserver"
	"github.com/aula-chat/aula/storage"
)

// MaxPerUser is how many delayed events one user may have waiting.
const MaxPerUser = 100

// retryAfter is how long the scheduler waits after a database error.
const retryAfter = 5 * time.Second

// Service schedules, lists, updates and fires delayed events. Build it
// with New, then Start it.
type Service struct {
	db       *storage.DB
	rooms    *roomserver.Server
	log      *slog.Logger
	maxDelay time.Duration

	// mu serialises firing an event with the client's actions on it, so a
	// cancelled event is never sent and a sent one is never reported
	// cancelled.
	mu   sync.Mutex
	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// New builds the service; maxDelay 0 turns delayed events off.
func New(db *storage.DB, rooms *roomserver.Server, log *slog.Logger, maxDelay time.Duration) *Service {
	return &Service{db: db, rooms: rooms, log: log, maxDelay: maxDelay, wake: make(chan struct{}, 1)}
}

// Enabled reports whether clients may schedule delayed events.
func (s *Service) Enabled() bool { return s.maxDelay > 0 }

// Start runs the scheduler until Close. Events that came due while the
// server was down are sent at once.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.run(ctx)
}

// Close stops the scheduler and waits for it.
func (s *Service) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// Info is one waiting delayed event as GET /delayed_events lists it.
type Info struct {
	DelayID      string          `json:"delay_id"`
	RoomID       string          `json:"room_id"`
	Type         string          `json:"type"`
	StateKey     *string         `json:"state_key,omitempty"`
	Delay        int64           `json:"delay"`
	RunningSince int64           `json:"running_since"`
	Content      json.RawMessage `json:"content"`
}

// Schedule stores req to be sent after delay and returns its delay ID.
// The sender must be joined to the room now; the room's auth rules are
// checked when the event is sent.
func (s *Service) Schedule(ctx context.Context, req roomserver.SendRequest, delay time.Duration) (string, error) {
	if !s.Enabled() {
		return "", mxerr.Forbidden("Delayed events are turned off on this server")
	}
	if delay < 0 {
		return "", mxerr.InvalidParam("org.matrix.msc4140.delay must not be negative")
	}
	if delay > s.maxDelay {
		return "", mxerr.New(http.StatusBadRequest, "M_UNKNOWN", "The requested delay exceeds the allowed maximum of %d ms", s.maxDelay.Milliseconds()).
			With("org.matrix.msc4140.errcode", "M_MAX_DELAY_EXCEEDED").
			With("org.matrix.msc4140.max_delay", s.maxDelay.Milliseconds())
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(req.Content, &obj); err != nil || obj == nil {
		return "", mxerr.BadJSON("The event content must be a JSON object")
	}
	joined, err := s.rooms.JoinedRooms(ctx, req.Sender)
	if err != nil {
		return "", fmt.Errorf("delayed: joined rooms: %w", err)
	}
	if !slices.Contains(joined, req.RoomID) {
		return "", mxerr.Forbidden("You are not joined to room %s", req.RoomID)
	}
	now := time.Now().UnixMilli()
	e := storage.DelayedEvent{
		DelayID: newDelayID(), UserID: req.Sender, DeviceID: req.DeviceID, RoomID: req.RoomID,
		Type: req.Type, StateKey: req.StateKey, Content: req.Content, TxnID: req.TxnID,
		DelayMS: delay.Milliseconds(), SendTS: now + delay.Milliseconds(), CreatedTS: now,
	}
	id, err := s.db.AddDelayedEvent(ctx, e, MaxPerUser)
	if errors.Is(err, storage.ErrDelayedLimit) {
		return "", mxerr.New(http.StatusBadRequest, "M_LIMIT_EXCEEDED", "You have %d delayed events waiting already", MaxPerUser)
	}
	if err != nil {
		return "", err
	}
	s.poke()
	return id, nil
}

// List returns a user's waiting delayed events, soonest first.
func (s *Service) List(ctx context.Context, userID string) ([]Info, error) {
	list, err := s.db.DelayedEventsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(list))
	for _, e := range list {
		out = append(out, Info{
			DelayID: e.DelayID, RoomID: e.RoomID, Type: e.Type, StateKey: e.StateKey,
			Delay: e.DelayMS, RunningSince: e.SendTS - e.DelayMS, Content: e.Content,
		})
	}
	return out, nil
}

// Actions a client may take on a delayed event.
const (
	ActionCancel  = "cancel"
	ActionRestart = "restart"
	ActionSend    = "send"
)

// Update applies a client's action to the delayed event delayID: cancel
// drops it, restart starts its delay again from now, send sends it now.
// An unknown delay ID is 404 M_NOT_FOUND. The delay ID itself authorises
// the action (MSC4140), so a client can act without its access token.
func (s *Service) Update(ctx context.Context, delayID, action string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	notFound := mxerr.NotFound("No delayed event %s", delayID)
	switch action {
	case ActionCancel:
		ok, err := s.db.DeleteDelayedEvent(ctx, delayID)
		if err == nil && !ok {
			return notFound
		}
		return err
	case ActionRestart:
		ok, err := s.db.RestartDelayedEvent(ctx, delayID, time.Now().UnixMilli())
		if err == nil && !ok {
			return notFound
		}
		s.poke()
		return err
	case ActionSend:
		e, err := s.db.DelayedEventByID(ctx, delayID)
		if err != nil {
			return err
		}
		if e == nil {
			return notFound
		}
		return s.fire(ctx, *e)
	}
	return mxerr.InvalidParam("action must be cancel, restart or send")
}

// StateReplaced cancels other users' delayed state events for the state
// sender has just set (MSC4140): they were meant to replace a state that
// is gone. Errors are logged, not returned: the state was set.
func (s *Service) StateReplaced(ctx context.Context, roomID, eventType, stateKey, sender string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.db.CancelDelayedState(ctx, roomID, eventType, stateKey, sender); err != nil {
		s.log.ErrorContext(ctx, "delayed events: cancelling replaced state", "room", roomID, "err", err)
	}
}

// fire sends e as its owner and drops it. An event the room refuses (the
// owner left, lost the power to send it...) is dropped too: it would be
// refused again. The caller holds s.mu.
func (s *Service) fire(ctx context.Context, e storage.DelayedEvent) error {
	req := roomserver.SendRequest{
		RoomID: e.RoomID, Sender: e.UserID, DeviceID: e.DeviceID, Type: e.Type, StateKey: e.StateKey, Content: e.Content,
	}
	if e.Type == "m.room.redaction" && e.StateKey == nil {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(e.Content, &c)
		req.Redacts = c.Redacts
	}
	if e.StateKey == nil {
		// The delay ID as transaction ID: if the server stops between
		// sending and deleting, the event is not sent twice.
		req.TxnID = "msc4140:" + e.DelayID
	}
	_, sendErr := s.rooms.Send(ctx, req)
	if _, refused := mxerr.As(sendErr); sendErr != nil && !refused {
		return fmt.Errorf("delayed: send %s: %w", e.DelayID, sendErr)
	}
	if _, err := s.db.DeleteDelayedEvent(ctx, e.DelayID); err != nil {
		return err
	}
	return sendErr
}

// poke wakes the scheduler to look at the next due time again.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run sends due events, then sleeps until the next is due or it is poked.
func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	for {
		wait := s.fireDue(ctx)
		if wait == 0 {
			next, ok, err := s.db.NextDelayedSendTS(ctx)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				s.log.Error("delayed events: next due time", "err", err)
				wait = retryAfter
			case !ok:
				wait = time.Hour
			default:
				wait = max(time.Until(time.UnixMilli(next)), time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// fireDue sends every event due now. It returns 0, or how long to wait
// after a database error.
func (s *Service) fireDue(ctx context.Context) time.Duration {
	for {
		now := time.Now().UnixMilli()
		due, err := s.db.DueDelayedEvents(ctx, now, 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("delayed events: due events", "err", err)
			}
			return retryAfter
		}
		for _, e := range due {
			if err := s.fireIfDue(ctx, e.DelayID, now); err != nil {
				if _, refused := mxerr.As(err); refused {
					s.log.Info("delayed events: event refused by the room, dropped", "delay_id", e.DelayID, "room", e.RoomID, "err", err)
					continue
				}
				if ctx.Err() == nil {
					s.log.Error("delayed events: sending failed", "delay_id", e.DelayID, "err", err)
				}
				return retryAfter
			}
		}
		if len(due) < 100 {
			return 0
		}
	}
}

// fireIfDue sends the event delayID if it still exists and is still due
// at now (the client may have cancelled or restarted it meanwhile).
func (s *Service) fireIfDue(ctx context.Context, delayID string, now int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.db.DelayedEventByID(ctx, delayID)
	if err != nil || e == nil || e.SendTS > now {
		return err
	}
	return s.fire(ctx, *e)
}

// newDelayID returns a fresh random delay ID. It is a bearer secret (it
// alone authorises cancel, restart and send), so it has 128 random bits.
func newDelayID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return "dly_" + hex.EncodeToString(b)
}
