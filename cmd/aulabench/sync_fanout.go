package main

import (
	"context"
	"fmt"
	"time"
)

// runSyncFanout: M clients in one room, all parked; the sender sends one
// message at a time and waits until every member has seen it (or -wait
// passed) and has parked again before the next.
func runSyncFanout(ctx context.Context, c *client, o options, log logf) (*syncReport, error) {
	t0 := time.Now()
	setup := c.withTimeout(setupTimeout)
	rep := &syncReport{Scenario: o.scenario, Target: o.target, Clients: o.users, Rooms: 1, Op: "wake-up", SetPresence: o.sync.presence}
	roomOf := func(int) int { return 0 }
	sender, ms, rooms, created, err := setupRooms(ctx, setup, o, o.users, 1, roomOf, log)
	if err != nil {
		return nil, err
	}
	defer logoutAll(context.WithoutCancel(ctx), setup, o, append(ms, sender))
	rep.UsersCreated = created
	f, err := startFleet(ctx, c, o, ms, roomOf, log, rep)
	if err != nil {
		return nil, err
	}
	rep.SetupSeconds = time.Since(t0).Seconds()

	sendC := c.dedicated(o.timeout)
	defer sendC.closeIdle()
	m, cpu0 := startMeasure(o), selfCPU()
	start := time.Now()
	var sent []sentMsg
	var want int64
	for seq := range o.sync.messages {
		if seq > 0 {
			// Every member must have a long-poll out again, or the next
			// message would be picked up by a fresh request instead of
			// waking a parked one.
			if err := f.waitParked(ctx, o.sync.wait); err != nil {
				f.samples.add(fmt.Sprintf("before message %d", seq), err)
				log("before message %d: %v", seq, err)
			}
		}
		s := sendMessage(ctx, sendC, sender, f.marker, seq, 0, rooms[0])
		sent = append(sent, s)
		if s.err != nil {
			log("message %d: %v", seq, s.err)
			continue
		}
		want += int64(len(ms))
		t := time.Now()
		if !f.waitReceived(ctx, want, o.sync.wait) {
			log("message %d: after %v, %d of %d wake-ups arrived in all", seq, o.sync.wait, f.received.Load(), want)
		} else {
			log("message %d: all %d members woke within %d ms of PUT /send returning", seq, len(ms), time.Since(t).Milliseconds())
		}
	}
	finishWakes(rep, o, m, f, ms, sent, start, cpu0)
	rep.Summary = rep.wakeSummary(fmt.Sprintf("sync-fanout M=%d", o.users))
	return rep, nil
}
