package shm

import "time"

// Large calls write the stages either through the cache (the reader then
// takes the lines from the writer's cache) or with non-temporal stores
// (the lines go to memory, and the reader takes them from there). Which
// is faster depends on where the ranks' cores are: sharing a last-level
// cache, the first is about twice as fast; on different dies (or
// sockets), where moving modified lines between caches is slow, the
// second is more than twice as fast. Virtual machines move between the
// two as the host places their CPUs, so each rank measures: its allreduce
// and reduce calls of at least ntMin bytes use the mode that has been
// faster, and every exploreEvery-th such call the other one. Other calls
// of at least ntMin bytes use the mode that has been faster (through the
// cache until allreduce or reduce has measured both). The mode is each
// rank's own choice; the ranks need not agree.
const (
	ntMin        = 32 << 10
	exploreEvery = 16
)

// forceNT overrides the choice in tests and benchmarks: 1 never, 2
// always.
var forceNT = 0

// tuner keeps, per mode (0 through the cache, 1 non-temporal), a moving
// average of the time per byte of the calls that used it.
type tuner struct {
	calls     uint64
	nsPerByte [2]float64
}

// pick returns the mode for the next call.
func (t *tuner) pick() int {
	t.calls++
	for m, v := range t.nsPerByte {
		if v == 0 {
			return m // not measured yet
		}
	}
	if t.calls%exploreEvery == 0 {
		return 1 - t.best()
	}
	return t.best()
}

// best is the mode that has been faster (through the cache until both
// have been measured).
func (t *tuner) best() int {
	if t.nsPerByte[1] != 0 && t.nsPerByte[1] < t.nsPerByte[0] {
		return 1
	}
	return 0
}

// record adds a call of n bytes that took d in mode m.
func (t *tuner) record(m int, d time.Duration, n int) {
	v := float64(d.Nanoseconds()) / float64(n)
	if t.nsPerByte[m] == 0 {
		t.nsPerByte[m] = v
		return
	}
	t.nsPerByte[m] = (t.nsPerByte[m] + v) / 2
}

// ntFor says whether a call moving n bytes through the stages writes
// them with non-temporal stores.
func (b *Backend) ntFor(n int) bool {
	if forceNT != 0 {
		return forceNT == 2 && n >= ntMin
	}
	return n >= ntMin && b.tune.best() == 1
}
