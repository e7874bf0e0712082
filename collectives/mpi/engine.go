//go:build mpi

package mpi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The MPI thread. MPI is initialised with MPI_THREAD_FUNNELED: only the
// thread that called MPI_Init_thread may call MPI. That thread belongs to
// one goroutine, started by the first Init and locked to it with
// runtime.LockOSThread for the life of the process. Every MPI call of the
// package runs there: the goroutine takes calls from a channel, starts
// each as a nonblocking MPI operation, and tests the operations in flight
// with MPI_Test until they complete. Callers wait on a channel or on
// their ctx; when ctx ends first they return, and the operation stays in
// flight on the MPI thread (MPI cannot cancel a collective), its buffers
// pinned, until it completes or the process ends.

// call is one operation for the MPI thread.
type call struct {
	// start begins the operation, on the MPI thread, and returns its
	// requests (none when it is already done).
	start func() ([]request, error)
	// received, when set, checks the bytes request i received.
	received func(i, n int) error
	// finalize marks the call that finalises MPI.
	finalize bool
	// owner is the backend whose communicator the call uses; nil for
	// calls on none.
	owner *comm

	pin   runtime.Pinner // the Go buffers MPI holds while in flight
	reqs  []request
	err   error       // the first failure
	done  chan error  // gets the result once (buffered)
	gone  atomic.Bool // the caller stopped waiting
	ended bool        // the result was sent
}

func (c *call) end(err error) {
	if !c.ended {
		c.ended = true
		c.done <- err
	}
}

type engine struct {
	work     chan *call
	once     sync.Once
	ready    chan struct{} // closed once MPI_Init_thread returned
	world    Info
	initErr  error
	up       bool         // MPI_Init_thread succeeded (even if Init failed later)
	inFlight atomic.Int64 // calls the MPI thread holds, abandoned ones too
}

var eng = &engine{work: make(chan *call, 64), ready: make(chan struct{})}

// Init initialises MPI (once per process, on the MPI thread) and returns
// this process's place in MPI_COMM_WORLD. It waits for MPI_Init_thread or
// for ctx; MPI_Init_thread itself cannot be interrupted.
func Init(ctx context.Context) (Info, error) {
	eng.once.Do(func() { go eng.loop() })
	select {
	case <-eng.ready:
		return eng.world, eng.initErr
	case <-ctx.Done():
		return Info{}, fmt.Errorf("mpi: waiting for MPI_Init_thread: %w", ctx.Err())
	}
}

// Finalize finalises MPI in this process. It first waits, until ctx
// ends, for operations still in flight (those whose callers stopped
// waiting) to complete; if some never do, it returns an error and leaves
// MPI initialised. MPI_Finalize itself cannot be interrupted: it may wait
// for the other ranks. Close every group's backend first. A process that
// initialised MPI must finalise it before it exits, or the launcher
// reports it as failed.
func Finalize(ctx context.Context) error {
	select {
	case <-eng.ready:
	default:
		return nil // never initialised
	}
	if !eng.up {
		return nil
	}
	c := &call{finalize: true}
	return eng.do(ctx, c, func(err error) error {
		n := eng.inFlight.Load() - 1
		return fmt.Errorf("mpi: finalize: %d operation(s) abandoned by their callers are still in flight: %w", n, err)
	})
}

// do hands c to the MPI thread and waits for its result or for ctx;
// onCtx makes the error when ctx ends first.
func (e *engine) do(ctx context.Context, c *call, onCtx func(error) error) error {
	c.done = make(chan error, 1)
	select {
	case e.work <- c:
	case <-ctx.Done():
		c.pin.Unpin()
		return onCtx(ctx.Err())
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		c.gone.Store(true)
		select {
		case err := <-c.done: // it finished meanwhile
			return err
		default:
		}
		return onCtx(ctx.Err())
	}
}

func (e *engine) loop() {
	runtime.LockOSThread() // for good: this thread is MPI's main thread
	// Open MPI replaces the handlers of SIGSEGV, SIGBUS, SIGFPE and SIGILL
	// unless told not to; Go needs its own to turn faults into panics.
	if _, set := os.LookupEnv("OMPI_MCA_opal_signal"); !set {
		os.Setenv("OMPI_MCA_opal_signal", "")
	}
	e.world, e.initErr = cInit()
	e.up = cInitialized()
	if e.initErr != nil {
		e.initErr = fmt.Errorf("mpi: %w", e.initErr)
	}
	if l, err := parseLaunch(os.Getenv); err == nil && e.initErr == nil {
		e.world.Launcher = l.Vars
		if l.Rank != e.world.Rank || l.Size != e.world.Size {
			e.initErr = fmt.Errorf("mpi: MPI says this process is rank %d of %d, but %s says rank %d of %d: the launcher did not start one MPI world (srun needs --mpi=pmix for Open MPI or --mpi=pmi2 for MPICH; mpirun and mpiexec must be the MPI's own)", e.world.Rank, e.world.Size, l.Vars, l.Rank, l.Size)
		}
	}
	close(e.ready)

	var active []*call // in flight
	var fin *call      // a Finalize waiting for active to drain
	finalized := false
	idleSince := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	wait := time.Duration(0)
	begin := func(c *call) {
		idleSince, wait = time.Now(), 0
		e.inFlight.Add(1)
		switch {
		case c.gone.Load():
			c.end(errors.New("abandoned"))
		case finalized:
			c.end(ErrFinalized)
		case c.finalize:
			fin = c
			return
		case e.initErr != nil:
			c.end(e.initErr)
		default:
			c.reqs, c.err = c.start()
			if c.err != nil {
				c.end(c.err)
			}
			if len(c.reqs) > 0 {
				active = append(active, c)
				if c.owner != nil {
					c.owner.inFlight++
				}
				return
			}
			c.end(nil)
		}
		c.pin.Unpin()
		e.inFlight.Add(-1)
	}
	for {
		if len(active) == 0 && fin == nil {
			begin(<-e.work)
			continue
		}
		for more := true; more; {
			select {
			case c := <-e.work:
				begin(c)
			default:
				more = false
			}
		}
		progress := false
		kept := active[:0]
		for _, c := range active {
			all, some := e.poll(c)
			progress = progress || some
			if all {
				c.end(c.err)
				c.pin.Unpin()
				e.inFlight.Add(-1)
				if o := c.owner; o != nil {
					if o.inFlight--; o.inFlight == 0 && o.freeWhenIdle {
						o.freeWhenIdle = false
						cCommFree(o.c) // nobody is left to tell of a failure
					}
				}
				continue
			}
			kept = append(kept, c)
		}
		clear(active[len(kept):])
		active = kept
		if fin != nil {
			switch {
			case fin.gone.Load():
				fin.end(errors.New("abandoned"))
				fin, progress = nil, true
				e.inFlight.Add(-1)
			case len(active) == 0:
				finalized = true
				fin.end(cFinalize())
				fin, progress = nil, true
				e.inFlight.Add(-1)
			}
		}
		if progress {
			idleSince, wait = time.Now(), 0
			continue
		}
		// While a caller waits, test without pause (MPI progresses only
		// inside MPI_Test, and a collective can take many rounds before
		// its request completes), yielding the core to other threads
		// after spinFor without a completion. When every operation left
		// was abandoned, sleep between tests, longer and longer; new work
		// wakes the loop.
		waited := false
		for _, c := range active {
			if !c.gone.Load() {
				waited = true
				break
			}
		}
		if waited {
			if time.Since(idleSince) >= spinFor {
				cYield()
			}
			continue
		}
		wait = min(max(2*wait, 10*time.Microsecond), abandonedWait)
		timer.Reset(wait)
		select {
		case c := <-e.work:
			begin(c)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// poll tests c's requests and reports whether all have completed and
// whether some completed now. The first failure goes to the caller at
// once; the call stays in flight until its other requests complete.
func (e *engine) poll(c *call) (all, some bool) {
	all = true
	for i := range c.reqs {
		if c.reqs[i] == requestNull() {
			continue
		}
		done, n, err := cTest(&c.reqs[i])
		some = some || done || err != nil
		if err != nil {
			c.reqs[i] = requestNull()
			if c.err == nil {
				c.err = err
				c.end(err)
			}
			continue
		}
		if !done {
			all = false
			continue
		}
		if c.received != nil && c.err == nil {
			if err := c.received(i, n); err != nil {
				c.err = err
				c.end(err)
			}
		}
	}
	return all, some
}

// spinFor is how long the MPI thread tests operations in flight before
// it yields the core between tests; abandonedWait bounds its sleeps
// between tests when no caller waits.
const (
	spinFor       = time.Millisecond
	abandonedWait = 10 * time.Millisecond
)
