package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
)

// EnvHeapFloor sets the heap floor, in MiB, of the processes that serve a
// node (agents and workers); 0 turns it off. See keepHeapFloor.
const EnvHeapFloor = "RAYGO_HEAP_FLOOR_MB"

// defaultHeapFloor is the heap floor when EnvHeapFloor is not set.
const defaultHeapFloor = 64 << 20

var heapFloorOnce sync.Once

// keepHeapFloor lets the heap of this process grow to a floor before the
// garbage collector runs, then behaves as GOGC says. An agent or worker
// keeps little live data but allocates a few hundred bytes per message:
// with Go's default pacing (collect when the heap doubles, from 4 MiB) it
// collected hundreds of times a second under load, a fifth of its time.
// Each collection it raises GOGC so that the next one comes when the heap
// reaches the floor, or back to GOGC once twice the live heap is more.
// The cost is at most the floor in memory; a process whose live heap is
// above half the floor is paced as before.
//
// It does nothing when GOGC is set in the environment (the user chose)
// or EnvHeapFloor is 0.
func keepHeapFloor() {
	heapFloorOnce.Do(func() {
		floor := uint64(defaultHeapFloor)
		if s := os.Getenv(EnvHeapFloor); s != "" {
			mb, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				fmt.Fprintf(os.Stderr, "raygo: %s=%q is not a number of MiB; the heap floor is off\n", EnvHeapFloor, s)
				return
			}
			floor = mb << 20
		}
		if floor == 0 || os.Getenv("GOGC") != "" {
			return
		}
		t := &heapTuner{floor: floor, base: 100, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		t.tune()
		t.arm()
	})
}

type heapTuner struct {
	floor   uint64
	base    int // GOGC when the floor is not in play
	percent int // what it set last
	samples []metrics.Sample
}

// arm runs tune after the next collection: a finalizer runs once the
// collector has found its object unreachable.
func (t *heapTuner) arm() {
	s := new([16]byte) // not tiny-allocated: its own object
	goruntime.SetFinalizer(s, func(*[16]byte) {
		t.tune()
		t.arm()
	})
}

func (t *heapTuner) tune() {
	metrics.Read(t.samples)
	live := uint64(0)
	if t.samples[0].Value.Kind() == metrics.KindUint64 {
		live = t.samples[0].Value.Uint64()
	}
	p := t.percentFor(live)
	if p == t.percent {
		return
	}
	// Small changes are not worth a call (each takes the heap lock).
	if t.percent != 0 && p != t.base && p > t.percent*9/10 && p < t.percent*11/10 {
		return
	}
	t.percent = p
	debug.SetGCPercent(p)
}

// percentFor is GOGC for a live heap of live bytes.
func (t *heapTuner) percentFor(live uint64) int {
	if live >= t.floor/2 {
		return t.base
	}
	// The next collection comes at live × (1 + p/100) = floor; but never
	// before Go's minimum heap, 4 MiB × p/100, which must not pass the
	// floor either.
	p := (t.floor - live) * 100 / max(live, 1)
	return int(min(p, t.floor*100/goMinHeap))
}

// goMinHeap is the Go runtime's minimum heap goal at GOGC=100, which it
// scales with GOGC.
const goMinHeap = 4 << 20
