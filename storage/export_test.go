package storage

import "context"

// StoreMessagesTogether stores events as one batch of PostgreSQL's message
// writer (eventbatch.go), as if they had all been waiting at once, and
// returns each one's outcome as PersistEvents would. It lets tests reach the
// path where one message of a batch fails, which concurrent sends only hit
// by chance.
func (db *DB) StoreMessagesTogether(evs []NewEvent) []error {
	tx := &Tx{p: db.write, stream: &db.stream}
	batch := make([]*pendingMessage, len(evs))
	for i := range evs {
		ev := &evs[i]
		pos, _ := nextStreamPos(context.Background(), tx, eventChange(*ev))
		var txn *Txn
		if ev.Txn.UserID != "" {
			txn = &ev.Txn
		}
		batch[i] = &pendingMessage{pos: pos, ev: ev, text: searchText(ev.Type, ev.JSON), txn: txn, now: nowMS(), result: make(chan error, 1)}
	}
	db.messages.store(batch)
	errs := make([]error, len(evs))
	for i, m := range batch {
		if err := <-m.result; err != nil {
			errs[i] = insertEventError(m.ev, err)
		}
		db.stream.finish([]int64{m.pos}, errs[i] == nil, []Change{tx.changes[i]})
	}
	return errs
}

// MessageWriters is the number of PostgreSQL's message writers (0 on
// SQLite).
func (db *DB) MessageWriters() int {
	if db.messages == nil {
		return 0
	}
	return db.messages.n
}
