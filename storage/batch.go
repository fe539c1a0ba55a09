package storage

import (
	"context"
	"sync"
)

// maxBatch bounds how many PersistEvents calls share one transaction.
const maxBatch = 64

// batcher writes the events of concurrent PersistEvents calls (from
// different rooms: a room has one writer at a time) in one transaction, so
// that they share its begin, commit and flush. This is group commit: under
// load it saves a large part of the database's work per event, and alone a
// call is written at once, with no waiting for company. If a shared
// transaction fails, each call is written again on its own, so one call's
// error (a repeated transaction ID, say) never fails another.
type batcher struct {
	db   *DB
	reqs chan *persistReq
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type persistReq struct {
	ctx    context.Context
	room   *NewRoom
	events []NewEvent
	done   chan persistResult
}

type persistResult struct {
	positions []int64
	err       error
}

func (b *batcher) start(db *DB) {
	b.db, b.reqs, b.stop = db, make(chan *persistReq), make(chan struct{})
	b.wg.Add(1)
	go b.run()
}

// close stops the writer after the calls already handed to it.
func (b *batcher) close() {
	if b.stop == nil {
		return
	}
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

// persist hands a call to the writer and waits for its result. It waits
// even if ctx ends meanwhile: once handed over, the events may be stored,
// and the caller must know.
func (b *batcher) persist(ctx context.Context, room *NewRoom, events []NewEvent) ([]int64, error) {
	req := &persistReq{ctx: ctx, room: room, events: events, done: make(chan persistResult, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stop:
		return nil, errClosed
	}
	r := <-req.done
	return r.positions, r.err
}

func (b *batcher) run() {
	defer b.wg.Done()
	for {
		var first *persistReq
		select {
		case first = <-b.reqs:
		case <-b.stop:
			return
		}
		batch := []*persistReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		b.write(batch)
	}
}

// write stores a batch in one transaction, or each call alone if that
// fails.
func (b *batcher) write(batch []*persistReq) {
	if len(batch) > 1 {
		results := make([][]int64, len(batch))
		// The shared transaction belongs to no single caller.
		ctx := context.WithoutCancel(batch[0].ctx)
		err := b.db.inTx(ctx, func(tx *Tx) error {
			for i, r := range batch {
				positions, err := persistEventsTx(ctx, tx, r.room, r.events)
				if err != nil {
					return err
				}
				results[i] = positions
			}
			return nil
		})
		if err == nil {
			for i, r := range batch {
				r.done <- persistResult{positions: results[i]}
			}
			return
		}
	}
	for _, r := range batch {
		var positions []int64
		err := b.db.inTx(r.ctx, func(tx *Tx) error {
			var err error
			positions, err = persistEventsTx(r.ctx, tx, r.room, r.events)
			return err
		})
		r.done <- persistResult{positions: positions, err: err}
	}
}
