package main

import (
	"context"
	"fmt"
	"time"
)

// idleSyncTimeout bounds one sync of the idle user: an initial sync of
// hundreds of rooms on a busy machine can take seconds.
const idleSyncTimeout = 2 * time.Minute

// runSyncIdle: one user in K rooms (each shared with a second user).
// Measures -runs initial syncs with lazy_load_members, then incremental
// syncs with timeout=0 and nothing new, closed loop, up to -n or -d.
func runSyncIdle(ctx context.Context, c *client, o options, log logf) (*syncReport, error) {
	t0 := time.Now()
	setup := c.withTimeout(setupTimeout)
	rep := &syncReport{Scenario: o.scenario, Target: o.target, Clients: 1, Rooms: o.rooms, Op: "incremental sync", SetPresence: o.sync.presence}
	users, created, err := setupMembers(ctx, setup, o, o.prefix, 2, log)
	if err != nil {
		return nil, err
	}
	defer logoutAll(context.WithoutCancel(ctx), setup, o, users)
	rep.UsersCreated = created
	u, partner := users[0], users[1]
	rooms, err := createRooms(ctx, setup, o, u, o.rooms, o.prefix, log)
	if err != nil {
		return nil, err
	}
	partners := make([]member, len(rooms))
	for i := range partners {
		partners[i] = partner
	}
	if err := joinRooms(ctx, setup, o, u, partners, rooms, func(i int) int { return i }, log); err != nil {
		return nil, err
	}
	rep.SetupSeconds = time.Since(t0).Seconds()

	sc := c.dedicated(idleSyncTimeout)
	defer sc.closeIdle()
	samples := &errSamples{}

	// Initial syncs.
	log("%d initial syncs of %s (%d rooms)", o.sync.runs, u.userID, len(rooms))
	initial := newRecorder("initial")
	m := startMeasure(o)
	var ok int64
	var page *syncPage
	for range o.sync.runs {
		t := time.Now()
		p, err := sc.sync(ctx, u.token, "", u.filterID, o.sync.presence, 0)
		initial.add(time.Since(t), err)
		if err != nil {
			samples.add("initial sync", err)
			continue
		}
		ok++
		page = p
		if p.JoinedRooms != len(rooms) {
			samples.add("initial sync", fmt.Errorf("%d joined rooms in the answer, want %d", p.JoinedRooms, len(rooms)))
		}
	}
	res := m.finish(o, "initial sync", ok)
	rep.LoadAvg = res.LoadAvg
	if res.Server != nil {
		srv := *res.Server
		rep.InitialServer = &srv
	}
	if res.Postgres != nil {
		pg := *res.Postgres
		rep.InitialPostgres = &pg
	}
	rep.addRequests(initial.summary())
	if page == nil {
		rep.ErrorSamples = samples.get()
		return nil, fmt.Errorf("every initial sync failed: %s", samples.String())
	}
	rep.InitialBytes, rep.InitialRooms = page.Bytes, page.JoinedRooms

	// Incremental syncs with nothing new.
	log("incremental syncs with timeout=0 for up to %v or %d requests", o.duration, o.ops)
	inc := newRecorder("incremental")
	since := page.NextBatch
	m, cpu0 := startMeasure(o), selfCPU()
	start := time.Now()
	ok = 0
	for i := 0; i < o.ops && time.Since(start) < o.duration && ctx.Err() == nil; i++ {
		t := time.Now()
		p, err := sc.sync(ctx, u.token, since, u.filterID, o.sync.presence, 0)
		inc.add(time.Since(t), err)
		if err != nil {
			samples.add("incremental sync", err)
			continue
		}
		ok++
		if p.JoinedRooms > 0 {
			rep.NonEmptyIdle++
		}
		rep.IncrementalBytes = p.Bytes
		since = p.NextBatch
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.ClientCPU = selfCPU() - cpu0
	res = m.finish(o, rep.Op, ok)
	rep.LoadAvgAfter = loadAvg()
	rep.Server, rep.Postgres = res.Server, res.Postgres
	rep.addRequests(inc.summary())
	rep.ErrorSamples = samples.get()

	in, ic := rep.request("initial"), rep.request("incremental")
	rep.Summary = fmt.Sprintf("sync-idle K=%d: initial (lazy_load_members) p50 %s max %s over %d runs, %.0f KiB; incremental (timeout=0, nothing new) p50 %s p99 %s max %s over %d, %d not empty; %d errors",
		o.rooms, fmtSignedMS(in.P50MS), fmtSignedMS(in.MaxMS), in.Count, float64(rep.InitialBytes)/1024,
		fmtSignedMS(ic.P50MS), fmtSignedMS(ic.P99MS), fmtSignedMS(ic.MaxMS), ic.Count, rep.NonEmptyIdle, rep.Errors)
	if rep.Server != nil && rep.Server.Error == "" {
		rep.Summary += fmt.Sprintf("; server CPU %.0f µs per incremental sync", rep.Server.CPUMicrosPerOp)
	}
	if rep.Postgres != nil && rep.Postgres.Error == "" {
		rep.Summary += fmt.Sprintf(", PostgreSQL CPU %.0f µs per incremental sync", rep.Postgres.CPUMicrosPerOp)
	}
	return rep, nil
}
