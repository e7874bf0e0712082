package shm

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/collectives/backend"
)

// Waiting is in three phases: spin on atomic loads (the other ranks are
// running on other cores and will be there in a moment), then yield the
// processor to other goroutines (ranks of this process) and other threads
// (ranks in other processes on the same core), then sleep with a growing
// delay (the node is oversubscribed, or a rank is late). ctx and Close
// are checked throughout, and in the sleeping phase the processes waited
// for are checked to be alive.
//
// When the group has more ranks than this process may use CPUs, the
// ranks waited for probably need this core: the spinning phase is
// skipped, as MPI implementations do when oversubscribed.
var spinFor = 20 * time.Microsecond // a variable for benchmarks

const (
	yieldFor  = 2 * time.Millisecond
	minSleep  = 2 * time.Microsecond
	maxSleep  = time.Millisecond
	liveEvery = 50 * time.Millisecond
)

// await returns once c[p] >= target for every p in ranks.
func (b *Backend) await(ctx context.Context, op string, c []*atomic.Uint64, target uint64, ranks []int) error {
	for i, p := range ranks {
		if c[p].Load() < target {
			return b.awaitSlow(ctx, op, c, target, ranks[i:])
		}
	}
	return nil
}

func (b *Backend) awaitSlow(ctx context.Context, op string, c []*atomic.Uint64, target uint64, ranks []int) error {
	start := time.Now()
	delay := minSleep
	var lastLive time.Time
	spinning := true
	for n := 1; ; n++ {
		for len(ranks) > 0 && c[ranks[0]].Load() >= target {
			ranks = ranks[1:]
		}
		if len(ranks) == 0 {
			return nil
		}
		if spinning && n&63 != 0 {
			continue
		}
		if b.closed.Load() {
			return b.errorf(op, "%w", ErrClosed)
		}
		select {
		case <-ctx.Done():
			return &backend.WaitError{Op: op, Rank: b.rank, Missing: missing(c, target, ranks), Err: ctx.Err()}
		default:
		}
		if v := b.abort.Load(); v != 0 {
			// Whatever the rank published before it gave up counts.
			if m := missing(c, target, ranks); m != nil {
				return &backend.WaitError{Op: op, Rank: b.rank, Missing: m, Err: b.abandoned(v)}
			}
			return nil
		}
		switch waited := time.Since(start); {
		case waited < b.spinFor:
		case waited < yieldFor:
			spinning = false
			runtime.Gosched()
			osYield()
		default:
			time.Sleep(delay)
			delay = min(2*delay, maxSleep)
			if now := time.Now(); now.Sub(lastLive) >= liveEvery {
				lastLive = now
				if err := b.checkAlive(op, c, target, ranks); err != nil {
					return err
				}
			}
		}
	}
}

// osYield gives the core to another thread, if one is waiting for it.
func osYield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// missing lists the ranks whose counter is below target.
func missing(c []*atomic.Uint64, target uint64, ranks []int) []int {
	var out []int
	for _, p := range ranks {
		if c[p].Load() < target {
			out = append(out, p)
		}
	}
	return out
}

// checkAlive fails when a rank still waited for has exited.
func (b *Backend) checkAlive(op string, c []*atomic.Uint64, target uint64, ranks []int) error {
	var dead []int
	for _, p := range missing(c, target, ranks) {
		if pid := b.pids[p]; pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
			dead = append(dead, p)
		}
	}
	if dead == nil {
		return nil
	}
	pids := make([]int, len(dead))
	for i, p := range dead {
		pids[i] = b.pids[p]
	}
	return &backend.WaitError{Op: op, Rank: b.rank, Missing: dead,
		Err: fmt.Errorf("%w: ranks %v (pids %v)", ErrPeerExited, dead, pids)}
}

// acquire waits until stage g&1 may be written for step g: every rank
// has finished reading step g-2, its last use.
func (b *Backend) acquire(ctx context.Context, op string, g uint64) error {
	if g <= 2 {
		return nil
	}
	return b.await(ctx, op, b.ctr[kRelease], g-2, b.others)
}
