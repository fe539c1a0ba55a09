package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/mxerr"
	"github.com/aula-chat/aula/storage"
)

// maxEventBytes is the spec's limit on a whole event.
const maxEventBytes = 65536

// Server creates and reads room events.
type Server struct {
	db         *storage.DB
	cfg        *config.Config
	key        SigningKey
	serverName spec.ServerName
	log        *slog.Logger

	mu    sync.Mutex
	rooms map[string]*room
}

// New returns the room server.
func New(db *storage.DB, cfg *config.Config, key SigningKey, log *slog.Logger) *Server {
	return &Server{db: db, cfg: cfg, key: key, serverName: spec.ServerName(cfg.ServerName), log: log, rooms: make(map[string]*room)}
}

// room is the in-memory head of one room: its latest event and its current
// state, which is what building and authorising the next event needs. mu
// serialises writers; the fields are valid only while loaded is true.
type room struct {
	mu      sync.Mutex
	loaded  bool
	id      string
	version gomatrixserverlib.IRoomVersion
	latest  string
	depth   int64
	state   map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU
}

// lockRoom returns the room with its lock held, loading it from storage
// on first use. Unknown rooms are 404 M_NOT_FOUND.
func (s *Server) lockRoom(ctx context.Context, roomID string) (*room, error) {
	s.mu.Lock()
	r, ok := s.rooms[roomID]
	if !ok {
		r = &room{id: roomID}
		s.rooms[roomID] = r
	}
	s.mu.Unlock()
	r.mu.Lock()
	if r.loaded {
		return r, nil
	}
	if err := s.loadRoom(ctx, r); err != nil {
		r.mu.Unlock()
		if _, unknown := mxerr.As(err); unknown {
			// Do not keep an entry for every room ID a client asks about.
			s.mu.Lock()
			if s.rooms[roomID] == r {
				delete(s.rooms, roomID)
			}
			s.mu.Unlock()
		}
		return nil, err
	}
	return r, nil
}

func (s *Server) loadRoom(ctx context.Context, r *room) error {
	info, err := s.db.Room(ctx, r.id)
	if errors.Is(err, storage.ErrNotFound) {
		return mxerr.NotFound("Unknown room %s", r.id)
	}
	if err != nil {
		return err
	}
	ver, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersion(info.Version))
	if err != nil {
		return fmt.Errorf("roomserver: room %s has unknown version %q: %w", r.id, info.Version, err)
	}
	evs, err := s.db.CurrentState(ctx, r.id)
	if err != nil {
		return err
	}
	state := make(map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU, len(evs))
	for _, e := range evs {
		pdu, err := ver.NewEventFromTrustedJSON(e.JSON, e.RedactedBy != "")
		if err != nil {
			return fmt.Errorf("roomserver: stored event %s: %w", e.EventID, err)
		}
		state[gomatrixserverlib.StateKeyTuple{EventType: e.Type, StateKey: *e.StateKey}] = pdu
	}
	r.version, r.latest, r.depth, r.state, r.loaded = ver, info.LatestEventID, info.LatestDepth, state, true
	return nil
}

// userIDForSender maps sender IDs to user IDs: without pseudonymous IDs
// they are the same string.
func userIDForSender(_ spec.RoomID, senderID spec.SenderID) (*spec.UserID, error) {
	return spec.NewUserID(string(senderID), true)
}

// proto is an event to append, before it is built.
type proto struct {
	sender   string
	typ      string
	stateKey *string
	content  []byte
	redacts  string
}

// build builds and signs the next event of r and checks it against the
// auth rules of the room's current state. The caller holds r.mu. Nothing is
// stored.
func (s *Server) build(r *room, p proto, now time.Time) (gomatrixserverlib.PDU, error) {
	pe := &gomatrixserverlib.ProtoEvent{
		SenderID:   p.sender,
		RoomID:     r.id,
		Type:       p.typ,
		StateKey:   p.stateKey,
		Content:    p.content,
		Redacts:    p.redacts,
		PrevEvents: []string{r.latest},
		Depth:      r.depth + 1,
	}
	if r.latest == "" { // the create event starts the chain
		pe.PrevEvents = []string{}
	}
	b := r.version.NewEventBuilderFromProtoEvent(pe)
	auth, err := authEventsFor(pe, r.state)
	if err != nil {
		return nil, mxerr.BadJSON("%v", err)
	}
	if err := b.AddAuthEvents(auth); err != nil {
		return nil, mxerr.BadJSON("%v", err)
	}
	ev, ok := buildFast(b, r.version, now, s.serverName, s.key.ID, s.key.Private)
	if !ok {
		ev, err = b.Build(now, s.serverName, s.key.ID, s.key.Private)
	}
	var invalid gomatrixserverlib.EventValidationError
	if errors.As(err, &invalid) && invalid.Code == gomatrixserverlib.EventValidationTooLarge {
		return nil, mxerr.TooLarge("%s", invalid.Message) // the whole event, its type or state key
	}
	if err != nil {
		return nil, mxerr.BadJSON("Invalid event: %v", err)
	}
	if len(ev.JSON()) > maxEventBytes {
		return nil, mxerr.TooLarge("Event is larger than %d bytes", maxEventBytes)
	}
	if err := gomatrixserverlib.Allowed(ev, auth, userIDForSender); err != nil {
		var na *gomatrixserverlib.NotAllowed
		if errors.As(err, &na) {
			return nil, mxerr.Forbidden("%s", na.Message)
		}
		return nil, mxerr.Forbidden("%v", err)
	}
	if p.stateKey != nil {
		// Clients render state changes ("Alice changed her name") from the
		// replaced content, so it travels with the event.
		if prev, ok := r.state[gomatrixserverlib.StateKeyTuple{EventType: p.typ, StateKey: *p.stateKey}]; ok {
			ev, err = ev.SetUnsigned(map[string]any{
				"replaces_state": prev.EventID(),
				"prev_content":   json.RawMessage(prev.Content()),
				"prev_sender":    prev.SenderID(),
			})
			if err != nil {
				return nil, fmt.Errorf("roomserver: set unsigned: %w", err)
			}
		}
	}
	return ev, nil
}

// authEventsFor collects the current state events the auth rules need for
// the event.
func authEventsFor(pe *gomatrixserverlib.ProtoEvent, state map[gomatrixserverlib.StateKeyTuple]gomatrixserverlib.PDU) (*gomatrixserverlib.AuthEvents, error) {
	needed, err := gomatrixserverlib.StateNeededForProtoEvent(pe)
	if err != nil {
		return nil, err
	}
	var evs []gomatrixserverlib.PDU
	for _, t := range needed.Tuples() {
		if ev, ok := state[t]; ok {
			evs = append(evs, ev)
		}
	}
	return gomatrixserverlib.NewAuthEvents(evs)
}

// apply moves r's head past an event that has been stored.
func (r *room) apply(ev gomatrixserverlib.PDU) {
	r.latest, r.depth = ev.EventID(), ev.Depth()
	if sk := ev.StateKey(); sk != nil {
		r.state[gomatrixserverlib.StateKeyTuple{EventType: ev.Type(), StateKey: *sk}] = ev
	}
}

// newEvent turns a built event into a storage row.
func newEvent(ev gomatrixserverlib.PDU) storage.NewEvent {
	ne := storage.NewEvent{
		EventID:  ev.EventID(),
		RoomID:   ev.RoomID().String(),
		Type:     ev.Type(),
		StateKey: ev.StateKey(),
		Sender:   string(ev.SenderID()),
		OriginTS: int64(ev.OriginServerTS()),
		Depth:    ev.Depth(),
		JSON:     ev.JSON(),
	}
	if ev.Type() == spec.MRoomMember {
		ne.Membership, _ = ev.Membership()
	}
	return ne
}
