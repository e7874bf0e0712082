package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/raygotest"
)

// The workloads follow Ray's release tests (release/benchmarks in
// ray-project/ray: single_node/test_single_node.py, distributed
// test_many_actors.py, object_store/test_object_store.py), adapted where
// raygo's API differs; each says how.
var workloads = []workload{
	{"tasks1m", "1,000,000 tasks queued on one node, then run", 1_000_000, "181 s", runQueuedTasks, false, false},
	{"args10k", "10,000 object args to one task", 10_000, "17.5 s", runManyArgs, false, false},
	{"returns3k", "3,000 returns from one task", 3_000, "5.6 s", runManyReturns, false, false},
	{"get10k", "GetAll of 10,000 objects (80 KB, inline)", 10_000, "23.4 s", runGetInline, false, false},
	{"get10k_store", "GetAll of 10,000 objects (128 KiB, in the store)", 10_000, "", runGetStore, false, false},
	{"actors10k", "10,000 actors created, each called once", 10_000, "638 actors/s", runManyActors, false, false},
	{"broadcast1g", "1 GiB object read by tasks on 3 other nodes", 1 << 30, "18.7 s (50 nodes)", runBroadcast, true, true},
}

type workload struct {
	name  string
	title string
	full  int    // count (bytes for broadcast1g) at -scale 1
	ray   string // Ray's published figure at full scale, another machine
	run   func(ctx context.Context, n int, r *result) error
	// ownCluster: run starts and joins its own cluster instead of the
	// embedded one, and calls r.measure before stopping it.
	ownCluster bool
	bytes      bool // full is a size in bytes
}

func (w workload) scaled(s float64) int { return max(1, int(math.Round(float64(w.full)*s))) }

// Phases are timed sections of a workload, in order.
type phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

type result struct {
	Name       string  `json:"name"`
	N          int     `json:"n"`
	Seconds    float64 `json:"seconds"` // the figure compared with Ray's
	Rate       float64 `json:"rate,omitempty"`
	RateUnit   string  `json:"rate_unit,omitempty"`
	Phases     []phase `json:"phases,omitempty"`
	DriverHWM  int64   `json:"driver_hwm"`
	OthersHWM  int64   `json:"others_hwm"`
	Others     int     `json:"others"`
	PeakRSS    int64   `json:"peak_rss"`
	PeakShmRSS int64   `json:"peak_shm_rss"`
	Note       string  `json:"note,omitempty"`
	Err        string  `json:"error,omitempty"`

	mem *memWatch
}

// measure stops the memory watcher and records what it saw. The child
// calls it after the workload, before Shutdown; a workload that stops its
// own cluster calls it first.
func (r *result) measure() {
	if r.mem == nil {
		return
	}
	r.mem.Stop()
	r.DriverHWM, r.OthersHWM, r.Others, r.PeakRSS, r.PeakShmRSS = r.mem.Report()
	r.mem = nil
}

func (r *result) phase(name string, since time.Time) time.Time {
	now := time.Now()
	r.Phases = append(r.Phases, phase{name, now.Sub(since).Seconds()})
	logf("%s: %s %.2fs", r.Name, name, now.Sub(since).Seconds())
	return now
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
}

// ---- tasks1m

var nop = raygo.Func0("scale.nop", func(ctx context.Context) (int, error) { return 0, nil })

const releaseKey = "scale/release"

// block holds one CPU until releaseKey is set, as Ray's test blocks every
// CPU on a semaphore actor while it queues its tasks.
var block = raygo.Func0("scale.block", func(ctx context.Context) (int, error) {
	_, err := raygo.KVWait(ctx, releaseKey)
	return 0, err
})

func runQueuedTasks(ctx context.Context, n int, r *result) error {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		return err
	}
	cpus := int(nodes[0].Total["CPU"])
	blockers := make([]raygo.Ref[int], cpus)
	for i := range blockers {
		blockers[i] = block.Remote()
	}
	t0 := time.Now()
	refs := make([]raygo.Ref[int], n)
	for i := range refs {
		refs[i] = nop.Remote()
	}
	t := r.phase("submit (all CPUs blocked)", t0)
	if err := raygo.KVPut(ctx, releaseKey, []byte("go"), true); err != nil {
		return err
	}
	if _, err := raygo.GetAll(ctx, blockers); err != nil {
		return err
	}
	if _, err := raygo.GetAll(ctx, refs); err != nil {
		return err
	}
	r.phase("run and get all", t)
	r.Seconds = time.Since(t0).Seconds()
	r.Rate, r.RateUnit = float64(n)/r.Seconds, "tasks/s"
	r.Note = fmt.Sprintf("%d blocking tasks hold the node's %d CPUs while the tasks are submitted; GetAll, not one Get per task", cpus, cpus)
	return nil
}

// ---- args10k

func ones(n int) []int64 {
	xs := make([]int64, n)
	for i := range xs {
		xs[i] = 1
	}
	return xs
}

func arange(n int) []int64 {
	xs := make([]int64, n)
	for i := range xs {
		xs[i] = int64(i)
	}
	return xs
}

// sumArgs gets its objects itself: raygo functions take at most four
// arguments, so 10,000 objects travel as one []Ref argument.
var sumArgs = raygo.Func1("scale.sumArgs", func(ctx context.Context, refs []raygo.Ref[[]int64]) (int64, error) {
	vals, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return 0, err
	}
	var s int64
	for _, v := range vals {
		for _, x := range v {
			s += x
		}
	}
	return s, nil
})

func runManyArgs(ctx context.Context, n int, r *result) error {
	t0 := time.Now()
	xs := ones(10_000)
	refs := make([]raygo.Ref[[]int64], n)
	for i := range refs {
		var err error
		if refs[i], err = raygo.Put(ctx, xs); err != nil {
			return err
		}
	}
	t := r.phase("put", t0)
	s, err := sumArgs.Remote(raygo.Val(refs)).Get(ctx)
	if err != nil {
		return err
	}
	if want := int64(n) * 10_000; s != want {
		return fmt.Errorf("sum %d, want %d", s, want)
	}
	r.phase("task", t)
	r.Seconds = time.Since(t0).Seconds()
	r.Note = "objects of 10,000 int64 (80 KB, inline) made by Put; one []Ref argument, GetAll inside the task (raygo functions take at most 4 arguments)"
	return nil
}

// ---- returns3k

// manyReturns returns n objects: raygo has Func*x2 for two results at most,
// so the task returns a slice of Refs it made with Put.
var manyReturns = raygo.Func1("scale.manyReturns", func(ctx context.Context, n int) ([]raygo.Ref[[]int64], error) {
	xs := arange(10_000)
	out := make([]raygo.Ref[[]int64], n)
	for i := range out {
		var err error
		if out[i], err = raygo.Put(ctx, xs); err != nil {
			return nil, err
		}
	}
	return out, nil
})

func runManyReturns(ctx context.Context, n int, r *result) error {
	t0 := time.Now()
	refs, err := manyReturns.Remote(raygo.Val(n)).Get(ctx)
	if err != nil {
		return err
	}
	if len(refs) != n {
		return fmt.Errorf("%d refs, want %d", len(refs), n)
	}
	t := r.phase("task", t0)
	for _, ref := range refs { // one Get each, as Ray's test does
		v, err := ref.Get(ctx)
		if err != nil {
			return err
		}
		if len(v) != 10_000 || v[9_999] != 9_999 {
			return fmt.Errorf("object %s: wrong contents", ref)
		}
	}
	r.phase("get each", t)
	r.Seconds = time.Since(t0).Seconds()
	r.Note = "the task returns a []Ref of objects it made with Put (80 KB each; raygo has two results at most, Func*x2)"
	return nil
}

// ---- get10k

func runGetInline(ctx context.Context, n int, r *result) error {
	xs := arange(10_000)
	check := func(v []int64) bool { return len(v) == 10_000 && v[9_999] == 9_999 }
	err := runGet(ctx, n, r, xs, check)
	r.Note = "10,000 int64 per object (80 KB): under the 100 KiB inline limit, so held by the owner, not in the store; time includes the puts, as Ray's does"
	return err
}

func runGetStore(ctx context.Context, n int, r *result) error {
	xs := make([]float64, 16<<10)
	for i := range xs {
		xs[i] = float64(i)
	}
	check := func(v []float64) bool { return len(v) == 16<<10 && v[len(v)-1] == float64(len(v)-1) }
	err := runGet(ctx, n, r, xs, check)
	r.Note = "16,384 float64 per object (128 KiB): in the shared-memory store; Get returns views"
	return err
}

func runGet[T any](ctx context.Context, n int, r *result, v T, ok func(T) bool) error {
	t0 := time.Now()
	refs := make([]raygo.Ref[T], n)
	for i := range refs {
		var err error
		if refs[i], err = raygo.Put(ctx, v); err != nil {
			return err
		}
	}
	t := r.phase("put", t0)
	vals, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return err
	}
	t = r.phase("GetAll", t)
	for i, v := range vals {
		if !ok(v) {
			return fmt.Errorf("object %d: wrong contents", i)
		}
	}
	r.phase("check", t)
	r.Seconds = time.Since(t0).Seconds()
	return nil
}

// ---- actors10k

type pinger struct{}

var pingerType = raygo.Actor0("scale.Pinger", func(ctx context.Context) (*pinger, error) { return &pinger{}, nil })
var ping = raygo.Method0(pingerType, "Ping", func(ctx context.Context, p *pinger) (int, error) { return 1, nil })

func runManyActors(ctx context.Context, n int, r *result) error {
	t0 := time.Now()
	actors := make([]raygo.Actor[*pinger], n)
	for i := range actors {
		actors[i] = pingerType.Remote()
	}
	t := r.phase("create", t0)
	refs := make([]raygo.Ref[int], n)
	for i, a := range actors {
		refs[i] = ping.Remote(a)
	}
	if _, err := raygo.GetAll(ctx, refs); err != nil {
		return err
	}
	r.phase("call each once and get", t)
	r.Seconds = time.Since(t0).Seconds()
	r.Rate, r.RateUnit = float64(n)/r.Seconds, "actors/s"
	r.Note = "actors take 0 CPUs (raygo's default) and share the node's worker processes as goroutines; Ray's test used 0.25 CPU each on 64 × 64 vCPUs"
	return nil
}

// ---- broadcast1g

var whereAmI = raygo.Func0("scale.whereAmI", func(ctx context.Context) (int, error) {
	return int(raygo.CurrentContext(ctx).Node), nil
})

var sumFloats = raygo.Func1("scale.sumFloats", func(ctx context.Context, xs []float64) (float64, error) {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s, nil
})

// runBroadcast starts its own 4-node cluster (raygotest: one agent per
// loopback address, all in this process), puts the object from a driver on
// node 1 and reads it from tasks pinned to nodes 2, 3 and 4.
func runBroadcast(ctx context.Context, size int, r *result) error {
	words := max(1, size/8)
	c, err := raygotest.StartCluster(4, raygotest.Options{CPUs: 2, StoreLimit: int64(words*8) + 256<<20})
	if err != nil {
		return err
	}
	defer c.Stop()
	os.Setenv("RAYGO_DRIVER_AGENT", c.Nodes[0].SocketAddr())
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		return err
	}
	defer raygo.Shutdown(ctx)
	if node := raygo.CurrentContext(ctx).Node; node != raygo.NodeID(c.Nodes[0].ID()) {
		return fmt.Errorf("driver on node %d, want node %d", node, c.Nodes[0].ID())
	}
	others := c.Nodes[1:]
	warm := make([]raygo.Ref[int], len(others))
	for i, a := range others {
		warm[i] = whereAmI.With(raygo.OnNode(raygo.NodeID(a.ID()), false)).Remote()
	}
	if _, err := raygo.GetAll(ctx, warm); err != nil {
		return err
	}
	xs := make([]float64, words)
	for i := range xs {
		xs[i] = 1
	}
	// Round 1 is the figure: the object is new and so are the stores'
	// pages. Round 2 repeats it once round 1's object is freed everywhere,
	// into stores whose pages are already mapped.
	for round := 1; round <= 2; round++ {
		t0 := time.Now()
		ref, err := raygo.Put(ctx, xs)
		if err != nil {
			return err
		}
		t := r.phase(fmt.Sprintf("round %d: put on node 1", round), t0)
		sums := make([]raygo.Ref[float64], len(others))
		for i, a := range others {
			sums[i] = sumFloats.With(raygo.OnNode(raygo.NodeID(a.ID()), false)).Remote(ref)
		}
		got, err := raygo.GetAll(ctx, sums)
		if err != nil {
			return err
		}
		for i, s := range got {
			if s != float64(words) {
				return fmt.Errorf("node %d summed %g, want %d", others[i].ID(), s, words)
			}
		}
		r.phase(fmt.Sprintf("round %d: read on nodes 2-4", round), t)
		if round == 1 {
			r.Seconds = time.Since(t).Seconds()
			r.Rate, r.RateUnit = float64(len(others))*float64(words*8)/r.Seconds/1e9, "GB/s to 3 nodes"
		}
		runtime.KeepAlive(ref)
		ref, sums = raygo.Ref[[]float64]{}, nil
		if round == 1 && !storesEmpty(ctx, 30*time.Second) {
			r.Note = "round 1's object was not freed on every node within 30 s, so no round 2. "
			break
		}
	}
	r.measure()
	r.Note += "raygotest cluster of 4 nodes on 127.0.0.1-4, agents in the driver process (their stores' pages count in its RSS); the figure is round 1, from the tasks' submission to their sums, workers warm, as in Ray's test"
	return nil
}

// storesEmpty collects garbage until no node's store holds an object, or
// the timeout passes.
func storesEmpty(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		runtime.GC()
		nodes, err := raygo.Nodes(ctx)
		if err != nil {
			return false
		}
		used := int64(0)
		for _, n := range nodes {
			used += n.StoreUsed
		}
		if used == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
