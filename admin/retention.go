package admin

import (
	"context"
	"fmt"
	"time"
)

// retentionReason is the reason the synthetic redactions of purged
// events carry.
const retentionReason = "Removed by the server's retention policy"

// retentionPage is how many events of one room one purge step rewrites.
const retentionPage = 500

// PurgeExpired runs one pass of retention.max_lifetime over every room as
// of now: each non-state event older than the limit loses its content,
// as RedactInPlace describes (the rows stay, so /messages, /context and
// /sync tokens at purged positions keep answering). State events — the
// room's current state and its history — stay whole. It returns how many
// events were purged; with retention off it does nothing.
func (o *Ops) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	limit := o.cfg.Retention.MaxLifetime.D()
	if limit <= 0 {
		return 0, nil
	}
	before := now.Add(-limit).UnixMilli()
	rooms, err := o.db.RoomIDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, roomID := range rooms {
		for {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			evs, upto, err := o.db.RetentionBatch(ctx, roomID, before, retentionPage)
			if err != nil {
				return n, err
			}
			if len(evs) == 0 {
				if upto > 0 { // only state events were in the way: remember
					if err := o.db.RewriteEvents(ctx, roomID, nil, upto); err != nil {
						return n, err
					}
				}
				break
			}
			if err := o.rooms.RedactInPlace(ctx, roomID, evs, retentionReason, upto); err != nil {
				return n, fmt.Errorf("admin: purge %s: %w", roomID, err)
			}
			n += len(evs)
			if len(evs) < retentionPage {
				break
			}
		}
	}
	return n, nil
}

// RunRetention purges expired events at start and then every
// retention.purge_interval until ctx ends. Failures are logged and tried
// again at the next interval.
func (o *Ops) RunRetention(ctx context.Context) {
	if o.cfg.Retention.MaxLifetime.D() <= 0 {
		return
	}
	interval := o.cfg.Retention.PurgeInterval.D()
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := o.PurgeExpired(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			o.log.Error("retention purge failed", "err", err)
		case n > 0:
			o.log.Info("retention purged events", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
