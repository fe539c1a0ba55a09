package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// member is a bench user with a device of its own.
type member struct {
	localpart string
	userID    string
	token     string
	filterID  string
}

// logf prints a progress line.
type logf func(format string, args ...any)

// parallel runs fn(0..n-1) on conc goroutines, printing progress every
// few seconds, and returns the first error (the others are dropped: one
// is enough to stop a setup).
func parallel(ctx context.Context, n, conc int, what string, log logf, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	start := time.Now()
	stop := make(chan struct{})
	var tick sync.WaitGroup
	tick.Add(1)
	go func() {
		defer tick.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				log("%s: %d/%d (%.0f/s)", what, d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	tick.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	if n > 0 {
		log("%s: %d done in %.1f s", what, done.Load(), time.Since(start).Seconds())
	}
	return nil
}

// setupMembers registers (or logs in) PREFIX-0 … PREFIX-(n-1), each with
// the sync filter uploaded, and returns them with how many were created.
func setupMembers(ctx context.Context, c *client, o options, prefix string, n int, log logf) ([]member, int, error) {
	ms := make([]member, n)
	var created atomic.Int64
	err := parallel(ctx, n, o.concurrency, "register "+prefix, log, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("%s-%d", prefix, i)
		var t tokens
		var isNew bool
		var err error
		if o.secret != "" {
			t, isNew, err = c.registerKeep(ctx, o.secret, name, o.password)
		} else {
			t, err = c.login(ctx, name, o.password)
		}
		if err != nil {
			return fmt.Errorf("register/login %s: %w", name, err)
		}
		if isNew {
			created.Add(1)
		}
		f, err := c.uploadFilter(ctx, t.AccessToken, t.UserID)
		if err != nil {
			return fmt.Errorf("upload filter of %s: %w", name, err)
		}
		ms[i] = member{localpart: name, userID: t.UserID, token: t.AccessToken, filterID: f}
		return nil
	})
	if err != nil {
		logoutAll(context.WithoutCancel(ctx), c, o, ms)
		return nil, 0, err
	}
	return ms, int(created.Load()), nil
}

// logoutAll logs every member's device out, so devices do not pile up
// across runs; errors are ignored (the server is usually thrown away).
func logoutAll(ctx context.Context, c *client, o options, ms []member) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	parallel(ctx, len(ms), o.concurrency, "logout", func(string, ...any) {}, func(ctx context.Context, i int) error {
		if ms[i].token != "" {
			c.logout(ctx, ms[i].token)
		}
		return nil
	})
}

// createRooms has the owner create n rooms named PREFIX room K.
func createRooms(ctx context.Context, c *client, o options, owner member, n int, prefix string, log logf) ([]string, error) {
	rooms := make([]string, n)
	err := parallel(ctx, n, o.concurrency, "create rooms", log, func(ctx context.Context, i int) error {
		id, err := c.createRoomPreset(ctx, owner.token, "private_chat", fmt.Sprintf("%s room %d", prefix, i))
		if err != nil {
			return fmt.Errorf("create room %d: %w", i, err)
		}
		rooms[i] = id
		return nil
	})
	return rooms, err
}

// joinRooms makes member i join rooms[roomOf(i)]: the owner invites them
// first (rooms are closed on aula).
func joinRooms(ctx context.Context, c *client, o options, owner member, ms []member, rooms []string, roomOf func(int) int, log logf) error {
	return parallel(ctx, len(ms), o.concurrency, "invite+join", log, func(ctx context.Context, i int) error {
		room := rooms[roomOf(i)]
		if err := c.invite(ctx, owner.token, room, ms[i].userID); err != nil {
			return fmt.Errorf("invite %s into %s: %w", ms[i].userID, room, err)
		}
		if err := c.join(ctx, ms[i].token, room); err != nil {
			return fmt.Errorf("%s joins %s: %w", ms[i].userID, room, err)
		}
		return nil
	})
}
