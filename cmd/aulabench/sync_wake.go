package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// setupRooms registers a sender and n members, has the sender create r
// rooms and puts member i into room roomOf(i).
func setupRooms(ctx context.Context, c *client, o options, n, r int, roomOf func(int) int, log logf) (member, []member, []string, int, error) {
	senders, created, err := setupMembers(ctx, c, o, o.prefix+"-sender", 1, log)
	if err != nil {
		return member{}, nil, nil, 0, err
	}
	sender := senders[0]
	ms, more, err := setupMembers(ctx, c, o, o.prefix, n, log)
	if err != nil {
		logoutAll(ctx, c, o, senders)
		return member{}, nil, nil, 0, err
	}
	created += more
	fail := func(err error) (member, []member, []string, int, error) {
		logoutAll(ctx, c, o, append(ms, sender))
		return member{}, nil, nil, 0, err
	}
	rooms, err := createRooms(ctx, c, o, sender, r, o.prefix, log)
	if err != nil {
		return fail(err)
	}
	if err := joinRooms(ctx, c, o, sender, ms, rooms, roomOf, log); err != nil {
		return fail(err)
	}
	return sender, ms, rooms, created, nil
}

// startFleet starts long-polling clients for ms, waits until they are
// parked and records what that took in rep.Park.
func startFleet(ctx context.Context, c *client, o options, ms []member, roomOf func(int) int, log logf, rep *syncReport) (*fleet, error) {
	f := newFleet(c, ms, roomOf, newMarker(), o.sync.presence, o.sync.pollTimeout)
	t0 := time.Now()
	var cpu0 float64
	if o.pid > 0 {
		cpu0, _ = procCPU(o.pid)
	}
	f.start(ctx, o.concurrency)
	if err := f.waitParked(ctx, o.sync.parkTimeout); err != nil {
		if o.pid > 0 { // what the server looked like meanwhile
			cpu1, _ := procCPU(o.pid)
			mem, _ := procMem(o.pid)
			err = fmt.Errorf("%w; server CPU %.1f s since the first initial sync, VmRSS %s, VmHWM %s",
				err, cpu1-cpu0, fmtKiB(mem.RSSKiB), fmtKiB(mem.HWMKiB))
		}
		f.stop()
		return nil, err
	}
	p := &parkStats{Seconds: time.Since(t0).Seconds(), Answers: f.answers.Load(), PresenceEvents: f.presEvs.Load()}
	if o.pid > 0 {
		if cpu1, err := procCPU(o.pid); err == nil {
			p.ServerCPU = cpu1 - cpu0
		}
		if mem, err := procMem(o.pid); err == nil {
			p.ServerRSSKiB = mem.RSSKiB
		}
	}
	rep.Park = p
	log("%d clients did their initial sync and parked in %.1f s; meanwhile %d long-polls were answered, carrying %d presence events",
		len(ms), p.Seconds, p.Answers, p.PresenceEvents)
	return f, nil
}

// collect stops the fleet and returns each client's records, its room and
// the duplicates seen.
func (f *fleet) collect() (wakes [][]wakeRec, rooms []int, dups int) {
	f.stop()
	for _, p := range f.clients {
		wakes = append(wakes, p.wakes)
		rooms = append(rooms, p.room)
		dups += p.dups
	}
	return wakes, rooms, dups
}

// finishWakes fills the report from a finished run.
func finishWakes(rep *syncReport, o options, m *measure, f *fleet, ms []member, sent []sentMsg, start time.Time, cpu0 float64) {
	rep.Seconds = time.Since(start).Seconds()
	rep.ClientCPU = selfCPU() - cpu0
	res := m.finish(o, rep.Op, f.received.Load())
	rep.LoadAvg, rep.LoadAvgAfter = res.LoadAvg, loadAvg()
	rep.Server, rep.Postgres = res.Server, res.Postgres
	wakes, rooms, dups := f.collect()
	st := analyseWakes(sent, rooms, wakes, dups)
	for _, s := range sent {
		if s.err == nil {
			rep.Messages++
		}
	}
	rep.addRequests(sendSummary(sent))
	rep.addWakes(st, ms)
	rep.addRequests(f.initial.summary(), f.longpoll.summary())
	rep.Limited = f.limited.Load()
	rep.PresenceEvents = f.presEvs.Load()
	rep.PerMessage = st.PerMessage
	rep.ErrorSamples = append(sendErrors(sent), f.samples.get()...)
}

// runSyncWake: N clients in R rooms long-poll while a sender sends a
// message every interval, round-robin over the rooms.
func runSyncWake(ctx context.Context, c *client, o options, log logf) (*syncReport, error) {
	t0 := time.Now()
	setup := c.withTimeout(setupTimeout)
	rep := &syncReport{Scenario: o.scenario, Target: o.target, Clients: o.users, Rooms: o.rooms, Op: "wake-up", SetPresence: o.sync.presence}
	roomOf := func(i int) int { return i % o.rooms }
	sender, ms, rooms, created, err := setupRooms(ctx, setup, o, o.users, o.rooms, roomOf, log)
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

	log("sending a message every %v for %v", o.sync.interval, o.duration)
	sendC := c.dedicated(o.timeout)
	defer sendC.closeIdle()
	m, cpu0 := startMeasure(o), selfCPU()
	start := time.Now()
	var sent []sentMsg
	var want int64
	perRoom := make([]int64, o.rooms)
	for i := range ms {
		perRoom[roomOf(i)]++
	}
	for seq := 0; seq < o.ops; seq++ {
		due := start.Add(time.Duration(seq) * o.sync.interval)
		if due.After(start.Add(o.duration)) || !sleepCtx(ctx, time.Until(due)) {
			break
		}
		room := seq % o.rooms
		s := sendMessage(ctx, sendC, sender, f.marker, seq, room, rooms[room])
		sent = append(sent, s)
		if s.err == nil {
			want += perRoom[room]
		}
	}
	if !f.waitReceived(ctx, want, o.sync.wait) {
		log("after waiting %v, %d of %d wake-ups arrived", o.sync.wait, f.received.Load(), want)
	}
	finishWakes(rep, o, m, f, ms, sent, start, cpu0)
	rep.PerMessage = nil // too many to print; the JSON has the aggregate
	rep.Summary = rep.wakeSummary(fmt.Sprintf("sync-wake N=%d R=%d", o.users, o.rooms))
	return rep, nil
}

// selfCPU returns the CPU seconds this process has used (0 if unknown).
func selfCPU() float64 {
	s, _ := procCPU(os.Getpid())
	return s
}
