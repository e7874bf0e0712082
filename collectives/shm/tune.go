package shm

import (
	"context"
	"time"
)

// Large calls write the stages either through the cache (the reader then
// takes the lines from the writer's cache) or with non-temporal stores
// (the lines go to memory, and the reader takes them from there). Which
// is faster depends on where the ranks' cores are: sharing a last-level
// cache, the first is about twice as fast; on different dies (or
// sockets), where moving modified lines between caches is slow, the
// second is more than twice as fast. Virtual machines move between the
// two as the host places their CPUs, so the group measures, for each
// class of sizes (see sizeClass) apart. Rank 0 times its allreduce and
// reduce calls of at least ntMin bytes and publishes the faster mode in
// the segment's header; every rank uses that mode for such calls, except
// that the first of a class (a warm-up, not timed) uses the cache, the
// next 2×trials alternate between the modes, and every exploreEvery-th
// after that uses the slower mode, so that both stay measured. All ranks
// count the same calls, so they try a mode together.
// Other calls of at least ntMin bytes use the faster mode of their class.
const (
	ntMin        = 32 << 10
	trials       = 3
	exploreEvery = 64
	nClasses     = 4
)

// sizeClass is the class of a call of n >= ntMin bytes: below 256 KiB,
// below 2 MiB, below 16 MiB, and larger.
func sizeClass(n int) int {
	c := 0
	for t := ntMin * 8; n >= t && c < nClasses-1; t *= 8 {
		c++
	}
	return c
}

// forceNT overrides the choice in tests and benchmarks: 1 never, 2
// always.
var forceNT = 0

// tuner keeps, per mode (0 through the cache, 1 non-temporal), the time
// per byte of the last few of rank 0's calls that used it. A mode is
// judged by the least of them: a call is slowed by page faults, other
// processes and the like, never sped up, so the least is what the mode
// can do; and a mode that has become slower shows it after window calls.
type tuner struct {
	calls     uint64
	nsPerByte [2][window]float64 // 0: no sample
	next      [2]int
}

const window = 3

// pick returns the mode for the next call, given the faster one, and
// whether to time it.
func (t *tuner) pick(best int) (mode int, timed bool) {
	t.calls++
	switch {
	case t.calls == 1:
		return 0, false
	case t.calls <= 1+2*trials:
		return int(t.calls % 2), true
	case t.calls%exploreEvery == 0:
		return 1 - best, true
	}
	return best, true
}

// least is mode m's best time per byte, or 0 when it has none.
func (t *tuner) least(m int) float64 {
	v := 0.0
	for _, x := range t.nsPerByte[m] {
		if x != 0 && (v == 0 || x < v) {
			v = x
		}
	}
	return v
}

// best is the mode that has been faster (through the cache until both
// have been measured).
func (t *tuner) best() int {
	if c, n := t.least(0), t.least(1); n != 0 && n < c {
		return 1
	}
	return 0
}

// record adds a call of n bytes that took d in mode m.
func (t *tuner) record(m int, d time.Duration, n int) {
	t.nsPerByte[m][t.next[m]] = max(float64(d.Nanoseconds())/float64(n), 1e-9)
	t.next[m] = (t.next[m] + 1) % window
}

// reduceTuned runs reduceShared in the mode the group has found faster,
// and on rank 0 times it.
func (b *Backend) reduceTuned(ctx context.Context, c call, send, recv []byte) error {
	n := len(send)
	if n < ntMin || forceNT != 0 {
		b.nt = b.ntFor(n)
		return b.reduceShared(ctx, c, send, recv)
	}
	k := sizeClass(n)
	t := &b.tune[k]
	mode, timed := t.pick(int(b.fastMode[k].Load()))
	b.nt = mode == 1
	start := time.Now()
	if err := b.reduceShared(ctx, c, send, recv); err != nil {
		return err
	}
	if b.rank == 0 && timed {
		t.record(mode, time.Since(start), n)
		b.fastMode[k].Store(uint64(t.best()))
	}
	return nil
}

// ntFor says whether a call moving n bytes through the stages writes
// them with non-temporal stores.
func (b *Backend) ntFor(n int) bool {
	if forceNT != 0 {
		return forceNT == 2 && n >= ntMin
	}
	return n >= ntMin && b.fastMode[sizeClass(n)].Load() == 1
}
