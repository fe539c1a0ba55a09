package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Group commit of messages on PostgreSQL.
//
// A message (an event without state key, redaction or relation) is stored
// by one statement. Messages to different rooms arrive concurrently, and
// each statement of its own costs a round trip, the statement's fixed work
// and a commit in both processes. So one or a few goroutines, the message
// writers, each store every message that is waiting with one statement (the rows as
// arrays, pgInsertEvents) and one commit. None waits for a batch to fill:
// at low load a batch is the one message that came; when the writers are
// busy the queue grows, and the next free writer takes all of it, so a
// burst after a stall drains at a fraction of the cost per message. The
// room server still holds each room's lock, so a batch has at most one
// message per room.
//
// How many writers depends on whether a commit waits for the disk
// (messageWriters): with durable commits every batch waits for a WAL
// flush, and a single writer, whose next batch grows while it waits, makes
// the fewest flushes; when commits do not wait (synchronous_commit=off),
// a statement meets the disk only by chance (a page it must read, a WAL
// buffer it must write out), and three more writers go on meanwhile.

// messageWriters is the number of writers for a synchronous_commit setting.
func messageWriters(synchronousCommit string) int {
	if synchronousCommit == "off" {
		return 4
	}
	return 1
}

// maxBatch bounds the messages stored by one statement.
const maxBatch = 128

// batchTimeout bounds one batch statement. It runs on its own context, not
// a request's: a client that goes away must not abort the others' rows, and
// its own row's fate must be known before the stream position is settled.
const batchTimeout = 30 * time.Second

// errClosed is the answer to a message that reaches a closed database.
var errClosed = errors.New("storage: database closed")

// pgInsertEvents stores events, their search text and their transaction
// IDs; the parameters are eventRows.args.
const pgInsertEvents = `WITH indexed AS (
	INSERT INTO event_search (rowid, value) SELECT * FROM unnest($10::bigint[], $11::text[])
), txn AS (
	INSERT INTO event_txns (user_id, device_id, txn_id, event_id, created_ts)
	SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[])
)
INSERT INTO events (stream_pos, event_id, room_id, depth, type, state_key, sender, origin_server_ts, json)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])`

// eventRows are the rows of pgInsertEvents, column by column.
type eventRows struct {
	pos, depth, ts                   pq.Int64Array
	id, room, typ, sender, json      textArray
	stateKey                         []sql.NullString
	searchPos                        pq.Int64Array
	searchText                       textArray
	txnUser, txnDevice, txnID, txnEv textArray
	txnTS                            pq.Int64Array
}

// textArray is a text[] parameter without NULLs. Its literal is written in
// one pass: pq.StringArray searches each element anew after every quote or
// backslash, and event JSON is full of quotes.
type textArray []string

// Value returns the array literal, or NULL for a nil array.
func (a textArray) Value() (driver.Value, error) {
	if a == nil {
		return nil, nil
	}
	n := 2
	for _, s := range a {
		n += len(s) + 3
	}
	b := make([]byte, 0, n+n/8)
	b = append(b, '{')
	for i, s := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return string(append(b, '}')), nil
}

// add appends ev at stream position pos, with its search text (none when
// empty) and the client transaction that sent it (none when nil).
func (r *eventRows) add(pos int64, ev *NewEvent, text string, txn *Txn, now int64) {
	r.pos = append(r.pos, pos)
	r.id = append(r.id, ev.EventID)
	r.room = append(r.room, ev.RoomID)
	r.depth = append(r.depth, ev.Depth)
	r.typ = append(r.typ, ev.Type)
	r.stateKey = append(r.stateKey, nullStringPtr(ev.StateKey))
	r.sender = append(r.sender, ev.Sender)
	r.ts = append(r.ts, ev.OriginTS)
	r.json = append(r.json, string(ev.JSON))
	if text != "" {
		r.searchPos = append(r.searchPos, pos)
		r.searchText = append(r.searchText, text)
	}
	if txn != nil {
		r.txnUser = append(r.txnUser, txn.UserID)
		r.txnDevice = append(r.txnDevice, txn.DeviceID)
		r.txnID = append(r.txnID, txn.TxnID)
		r.txnEv = append(r.txnEv, ev.EventID)
		r.txnTS = append(r.txnTS, now)
	}
}

// args are the parameters of pgInsertEvents. An empty column is NULL, whose
// unnest gives no rows.
func (r *eventRows) args() []any {
	return []any{r.pos, r.id, r.room, r.depth, r.typ, pq.Array(r.stateKey), r.sender, r.ts, r.json,
		r.searchPos, r.searchText, r.txnUser, r.txnDevice, r.txnID, r.txnEv, r.txnTS}
}

// pgInsertError turns pgInsertEvents' error into ErrDuplicateTxn when a
// transaction ID was used before.
func pgInsertError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "event_txns_pkey" {
		return ErrDuplicateTxn
	}
	return err
}

// pendingMessage is a message waiting for the messageWriter.
type pendingMessage struct {
	pos    int64
	ev     *NewEvent
	text   string
	txn    *Txn
	now    int64
	result chan error // buffered: the writer never blocks on it
}

// messageWriter stores messages in batches (see the top of this file).
type messageWriter struct {
	p     *pool
	n     int                  // writers
	queue chan *pendingMessage // unbuffered: a message sent has been taken
	stop  chan struct{}
	done  chan struct{} // closed when every writer has stopped
	once  sync.Once
}

// newMessageWriter starts n writers.
func newMessageWriter(p *pool, n int) *messageWriter {
	w := &messageWriter{p: p, n: n, queue: make(chan *pendingMessage), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range n {
		wg.Go(w.run)
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	return w
}

// write stores one message and returns once it is stored or has failed;
// the outcome is always known, whatever happens to the caller's context.
func (w *messageWriter) write(m *pendingMessage) error {
	select {
	case w.queue <- m:
		return <-m.result
	case <-w.done:
		return errClosed
	}
}

// close stops the writers after the batches they are storing. Closing
// twice is harmless, as for the database.
func (w *messageWriter) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// run is one writer.
func (w *messageWriter) run() {
	batch := make([]*pendingMessage, 0, maxBatch)
	for {
		select {
		case m := <-w.queue:
			batch = append(batch[:0], m)
		case <-w.stop:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case m := <-w.queue:
				batch = append(batch, m)
			default:
				break more
			}
		}
		w.store(batch)
	}
}

// store stores a batch. The statement is atomic, so when it fails (one
// message's transaction ID was used before, say) nothing of the batch is
// stored, and each message is tried again on its own to learn whose it was.
func (w *messageWriter) store(batch []*pendingMessage) {
	err := w.exec(batch)
	if err != nil && len(batch) > 1 {
		for _, m := range batch {
			m.result <- w.exec([]*pendingMessage{m})
		}
		return
	}
	for _, m := range batch {
		m.result <- err
	}
}

func (w *messageWriter) exec(batch []*pendingMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var rows eventRows
	for _, m := range batch {
		rows.add(m.pos, m.ev, m.text, m.txn, m.now)
	}
	_, err := w.p.ExecContext(ctx, pgInsertEvents, rows.args()...)
	return pgInsertError(err)
}

// persistMessage stores a message through the messageWriter, with the
// stream position and change handling of inTx.
func (db *DB) persistMessage(ev *NewEvent) (int64, error) {
	db.write.queries.Add(1)
	tx := &Tx{p: db.write, stream: &db.stream}
	m := newPendingMessage(tx, ev)
	err := db.messages.write(m)
	db.stream.finish(tx.positions, err == nil, tx.changes)
	if err != nil {
		return 0, insertEventError(ev, err)
	}
	return m.pos, nil
}

// newPendingMessage takes ev's stream position in tx and makes the
// message a writer stores.
func newPendingMessage(tx *Tx, ev *NewEvent) *pendingMessage {
	pos, _ := nextStreamPos(context.Background(), tx, eventChange(*ev))
	return &pendingMessage{pos: pos, ev: ev, text: searchText(ev.Type, ev.JSON), txn: ev.txn(), now: nowMS(), result: make(chan error, 1)}
}
