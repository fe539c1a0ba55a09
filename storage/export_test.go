package storage

// StoreMessagesTogether stores events as one batch of PostgreSQL's message
// writer (eventbatch.go), as if they had all been waiting at once, and
// returns each one's outcome as PersistEvents would. It lets tests reach the
// path where one message of a batch fails, which concurrent sends only hit
// by chance.
func (db *DB) StoreMessagesTogether(evs []NewEvent) []error {
	tx := &Tx{p: db.write, stream: &db.stream}
	batch := make([]*pendingMessage, len(evs))
	for i := range evs {
		batch[i] = newPendingMessage(tx, &evs[i])
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
