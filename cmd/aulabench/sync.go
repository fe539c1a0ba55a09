package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// The /sync scenarios (sync_wake.go, sync_fanout.go, sync_idle.go):
//
//	sync-wake    -users N clients in -rooms R private rooms (N/R each, plus a
//	             sender who created them), each holding a long-polling
//	             /sync; the sender sends a message every -interval,
//	             round-robin over the rooms, for -d. Reports the wake-up
//	             latency from PUT /send returning to each member's /sync
//	             returning with the event.
//	sync-fanout  -users M clients in one room, all parked on /sync; the
//	             sender sends -messages messages, one at a time, each once
//	             every member has re-parked. Same latency, per message and
//	             overall, and whether every member got every message. -d is
//	             not used: -messages and -wait bound the run.
//	sync-idle    one user in -rooms K rooms (with one other member each):
//	             -runs initial syncs with lazy_load_members, then up to -n
//	             incremental syncs with timeout=0 and nothing new.
//
// Every client uses the filter Element uses (uploaded once per user) and
// its own keep-alive connection.

// syncFilter is what Element asks for: a short timeline and lazy-loaded
// members.
const syncFilter = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}`

// Bounds of the sync scenarios.
const (
	maxSyncUsers   = 20000
	syncSetupLimit = 20 * time.Minute // registration, rooms and joins
)

// syncOptions are the flags only the sync scenarios use.
type syncOptions struct {
	interval    time.Duration // sync-wake: time between two messages
	messages    int           // sync-fanout: messages sent
	runs        int           // sync-idle: initial syncs
	pollTimeout time.Duration // the timeout parameter of a long-poll
	wait        time.Duration // how long to wait for the wake-ups of a message
	presence    string        // set_presence of every /sync ("": left out, the server's default)
	parkTimeout time.Duration // how long the clients may take to do their initial syncs and park
}

func addSyncFlags(fs *flag.FlagSet, o *syncOptions) {
	fs.DurationVar(&o.interval, "interval", 100*time.Millisecond, "sync-wake: time between two messages")
	fs.IntVar(&o.messages, "messages", 5, "sync-fanout: messages sent, one at a time")
	fs.IntVar(&o.runs, "runs", 5, "sync-idle: initial syncs measured")
	fs.DurationVar(&o.pollTimeout, "poll-timeout", 30*time.Second, "sync-wake, sync-fanout: the timeout of each long-polling /sync")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "sync-wake, sync-fanout: how long to wait for the wake-ups of a message before counting them missing")
	fs.StringVar(&o.presence, "set-presence", "", "sync scenarios: set_presence of every /sync: online, offline or unavailable (empty: left out, which the spec defines as online)")
	fs.DurationVar(&o.parkTimeout, "park-timeout", 10*time.Minute, "sync-wake, sync-fanout: how long the clients may take to do their initial syncs and park")
}

// isSyncScenario reports whether name is one of the sync scenarios.
func isSyncScenario(name string) bool {
	switch name {
	case "sync-wake", "sync-fanout", "sync-idle":
		return true
	}
	return false
}

// validateSync checks the flags of a sync scenario.
func validateSync(o options) error {
	s := o.sync
	switch {
	case o.users > maxSyncUsers:
		return fmt.Errorf("-users must be at most %d", maxSyncUsers)
	case o.scenario == "sync-wake" && o.rooms > o.users:
		return errors.New("sync-wake: -rooms must not exceed -users (every room needs a member)")
	case s.interval < time.Millisecond || s.interval > time.Minute:
		return errors.New("-interval must be in [1ms, 1m]")
	case s.messages < 1 || s.messages > 1000:
		return errors.New("-messages must be in [1, 1000]")
	case s.runs < 1 || s.runs > 1000:
		return errors.New("-runs must be in [1, 1000]")
	case s.pollTimeout < time.Second || s.pollTimeout > 5*time.Minute:
		return errors.New("-poll-timeout must be in [1s, 5m]")
	case s.wait < time.Second || s.wait > 5*time.Minute:
		return errors.New("-wait must be in [1s, 5m]")
	case s.parkTimeout < time.Second || s.parkTimeout > 30*time.Minute:
		return errors.New("-park-timeout must be in [1s, 30m]")
	case s.presence != "" && s.presence != "online" && s.presence != "offline" && s.presence != "unavailable":
		return errors.New("-set-presence must be online, offline, unavailable or empty")
	}
	return nil
}

// runSync runs a sync scenario and prints its report.
func runSync(o options, c *client, stdout, stderr io.Writer) error {
	// Setup (thousands of users and joins) gets its own bound on top of
	// the measured phase and the wait for the last wake-ups.
	limit := syncSetupLimit + o.sync.parkTimeout + o.duration + time.Duration(o.sync.messages+1)*o.sync.wait + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	log := func(format string, args ...any) {
		fmt.Fprintf(stderr, "aulabench: "+format+"\n", args...)
	}
	var rep *syncReport
	var err error
	switch o.scenario {
	case "sync-wake":
		rep, err = runSyncWake(ctx, c, o, log)
	case "sync-fanout":
		rep, err = runSyncFanout(ctx, c, o, log)
	case "sync-idle":
		rep, err = runSyncIdle(ctx, c, o, log)
	default:
		err = fmt.Errorf("unknown sync scenario %q", o.scenario)
	}
	if err != nil {
		return err
	}
	return rep.write(stdout, o.json)
}
