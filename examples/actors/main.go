// Actors: a counter whose state lives in a worker process; a named actor
// found with GetActor; an actor handle passed to tasks that call it;
// concurrent calls with MaxConcurrency; and Kill.
//
//	go run ./examples/actors
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/raygo/raygo"
)

// Counter is the actor's state. By default its calls run one at a time;
// with MaxConcurrency(n) up to n run at once, so it takes a lock.
type Counter struct {
	mu          sync.Mutex
	n           int
	inFlight    int
	maxInFlight int
}

var (
	counter = raygo.Actor1("actors.Counter", func(ctx context.Context, start int) (*Counter, error) {
		return &Counter{n: start}, nil
	})
	incr = raygo.Method1(counter, "Incr", func(ctx context.Context, c *Counter, by int) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n += by
		return c.n, nil
	})
	value = raygo.Method0(counter, "Value", func(ctx context.Context, c *Counter) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.n, nil
	})
	// slowIncr takes 100 ms and records how many calls overlapped.
	slowIncr = raygo.Method0(counter, "SlowIncr", func(ctx context.Context, c *Counter) (int, error) {
		c.mu.Lock()
		c.inFlight++
		c.maxInFlight = max(c.maxInFlight, c.inFlight)
		c.mu.Unlock()
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.inFlight--
		c.n++
		return c.maxInFlight, nil
	})
)

// bump is a task that takes an actor handle and calls the actor itself.
var bump = raygo.Func2("actors.bump", func(ctx context.Context, c raygo.Actor[*Counter], times int) (int, error) {
	var last raygo.Ref[int]
	for i := 0; i < times; i++ {
		last = incr.Remote(c, raygo.Val(1))
	}
	return last.Get(ctx)
})

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		fmt.Fprintln(os.Stderr, "actors:", err)
		os.Exit(1)
	}
	err := run(ctx)
	if serr := raygo.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "actors:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	// A counter: one caller's calls run in the order they were made.
	c := counter.Remote(raygo.Val(0))
	if err := c.Ready(ctx); err != nil {
		return err
	}
	refs := make([]raygo.Ref[int], 10)
	for i := range refs {
		refs[i] = incr.Remote(c, raygo.Val(1))
	}
	got, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return err
	}
	for i, v := range got {
		if v != i+1 {
			return fmt.Errorf("call %d saw %d, want %d: %v", i, v, i+1, got)
		}
	}
	fmt.Printf("counter %s: 10 calls returned %v\n", c.ID(), got)

	// A named actor, found again by name (here in the driver; any task or
	// actor can do the same).
	named := counter.With(raygo.ActorName("shared-counter")).Remote(raygo.Val(100))
	if err := named.Ready(ctx); err != nil {
		return err
	}
	found, err := raygo.GetActor(ctx, counter, "shared-counter", "")
	if err != nil {
		return err
	}
	if found.ID() != named.ID() {
		return fmt.Errorf("GetActor found %s, want %s", found.ID(), named.ID())
	}
	n, err := incr.Remote(found, raygo.Val(1)).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("named actor: GetActor(\"shared-counter\") = %s, Incr -> %d\n", found.ID(), n)
	dup := counter.With(raygo.ActorName("shared-counter")).Remote(raygo.Val(0))
	err = dup.Ready(ctx)
	if err == nil {
		return errors.New("a second actor named shared-counter was created")
	}
	fmt.Printf("name taken: %v\n", err)
	_, err = raygo.GetActor(ctx, counter, "no-such-counter", "")
	if err == nil {
		return errors.New(`GetActor("no-such-counter") found an actor`)
	}
	fmt.Printf("unknown name: %v\n", err)

	// The handle travels to tasks, which call the actor themselves.
	tasks := make([]raygo.Ref[int], 3)
	for i := range tasks {
		tasks[i] = bump.Remote(raygo.Val(found), raygo.Val(5))
	}
	if _, err := raygo.GetAll(ctx, tasks); err != nil {
		return err
	}
	n, err = value.Remote(named).Get(ctx)
	if err != nil {
		return err
	}
	if n != 116 {
		return fmt.Errorf("after 3 tasks of 5 calls each the counter is %d, want 116", n)
	}
	fmt.Printf("3 tasks called the actor 5 times each: counter = %d\n", n)

	// MaxConcurrency: up to 4 calls at once in one actor.
	for _, conc := range []int{1, 4} {
		a := counter.With(raygo.MaxConcurrency(conc)).Remote(raygo.Val(0))
		if err := a.Ready(ctx); err != nil {
			return err
		}
		start := time.Now()
		calls := make([]raygo.Ref[int], 8)
		for i := range calls {
			calls[i] = slowIncr.Remote(a)
		}
		peaks, err := raygo.GetAll(ctx, calls)
		if err != nil {
			return err
		}
		peak := 0
		for _, p := range peaks {
			peak = max(peak, p)
		}
		fmt.Printf("MaxConcurrency(%d): 8 calls of 100ms took %v, at most %d at once\n", conc, time.Since(start).Round(10*time.Millisecond), peak)
		if peak != conc {
			return fmt.Errorf("MaxConcurrency(%d): %d calls overlapped", conc, peak)
		}
		if err := a.Kill(ctx); err != nil {
			return err
		}
	}

	// Kill: later calls fail with ErrActorDied.
	if err := c.Kill(ctx); err != nil {
		return err
	}
	_, err = incr.Remote(c, raygo.Val(1)).Get(ctx)
	if !errors.Is(err, raygo.ErrActorDied) {
		return fmt.Errorf("call after Kill: got %v, want ErrActorDied", err)
	}
	fmt.Printf("after Kill: errors.Is(err, raygo.ErrActorDied) = true (%v)\n", err)
	return nil
}
