package raygo_test

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/raygotest"
	rt "github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

var sumRange = raygo.Func3("test.sumRange", func(ctx context.Context, xs []float64, lo, hi int) (where, error) {
	s := 0.0
	for _, x := range xs[lo:hi] {
		s += x
	}
	c := raygo.CurrentContext(ctx)
	return where{c.Node, int(s)}, nil
})

var spin = raygo.Func1("test.spin", func(ctx context.Context, d time.Duration) (where, error) {
	time.Sleep(d)
	c := raygo.CurrentContext(ctx)
	return where{c.Node, c.Pid}, nil
})

func joinCluster(t *testing.T, n int, opts raygotest.Options) (*raygotest.Cluster, context.Context) {
	t.Helper()
	c := raygotest.Start(t, n, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raygo.Shutdown(context.Background())
		cancel()
	})
	return c, ctx
}

func TestSpreadReachesEveryNode(t *testing.T) {
	_, ctx := joinCluster(t, 3, raygotest.Options{})
	var refs []raygo.Ref[where]
	for i := 0; i < 30; i++ {
		refs = append(refs, whoami.With(raygo.Spread()).Remote())
	}
	ws, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[raygo.NodeID]int{}
	for _, w := range ws {
		seen[w.Node]++
	}
	if len(seen) != 3 {
		t.Fatalf("SPREAD tasks ran on %v, want all 3 nodes", seen)
	}
	// Busy nodes pass work on: long tasks fill the whole cluster.
	refs = refs[:0]
	for i := 0; i < 6; i++ {
		refs = append(refs, spin.Remote(raygo.Val(300*time.Millisecond)))
	}
	ws, err = raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	seen = map[raygo.NodeID]int{}
	for _, w := range ws {
		seen[w.Node]++
	}
	if len(seen) < 2 {
		t.Fatalf("default scheduling kept every task on one node: %v", seen)
	}
}

func TestObjectsMoveBetweenNodes(t *testing.T) {
	_, ctx := joinCluster(t, 3, raygotest.Options{})
	xs := make([]float64, 3<<20) // 24 MiB: several chunks
	for i := range xs {
		xs[i] = 1
	}
	big, err := raygo.Put(ctx, xs) // stored on node 1, the driver's
	if err != nil {
		t.Fatal(err)
	}
	for node := raygo.NodeID(1); node <= 3; node++ {
		w := get(t, ctx, sumRange.With(raygo.OnNode(node, false)).Remote(big, raygo.Val(0), raygo.Val(len(xs))))
		if w.Node != node || w.Pid != len(xs) {
			t.Fatalf("task on node %d: ran on %d, sum %d", node, w.Node, w.Pid)
		}
	}
	// A result made on node 3 is read by the driver on node 1 and by node 2.
	made := makeBig.With(raygo.OnNode(3, false)).Remote(raygo.Val(1 << 20))
	got := get(t, ctx, made)
	if len(got) != 1<<20 || got[777] != 777 {
		t.Fatal("driver read a wrong remote result")
	}
	if s := get(t, ctx, sumFloats.With(raygo.OnNode(2, false)).Remote(made)); s != float64((1<<20-1)*(1<<20))/2 {
		t.Fatalf("node 2 summed %g", s)
	}
	_, err = whoami.With(raygo.OnNode(9, false)).Remote().Get(ctx)
	if !errors.Is(err, raygo.ErrUnschedulable) {
		t.Fatalf("affinity to a missing node: %v", err)
	}
	if w := get(t, ctx, whoami.With(raygo.OnNode(9, true)).Remote()); w.Node == 0 {
		t.Fatal("soft affinity did not run")
	}
}

func TestActorsAcrossNodes(t *testing.T) {
	_, ctx := joinCluster(t, 3, raygotest.Options{})
	c := counterType.With(raygo.OnNode(2, false)).Remote(raygo.Val(int64(0)))
	if w := get(t, ctx, counterWhere.Remote(c)); w.Node != 2 {
		t.Fatalf("actor on node %d, want 2", w.Node)
	}
	var last raygo.Ref[int64]
	for i := 0; i < 200; i++ {
		last = counterAdd.Remote(c, raygo.Val(int64(1)))
	}
	if got := get(t, ctx, last); got != 200 {
		t.Fatalf("counter = %d", got)
	}
	// A task on node 3 calls the actor on node 2 through a handle it was given.
	if got := get(t, ctx, useCounter.With(raygo.OnNode(3, false)).Remote(raygo.Val(c), raygo.Val(int64(5)))); got != 205 {
		t.Fatalf("remote call from a task = %d", got)
	}
}

func TestPlacementGroups(t *testing.T) {
	_, ctx := joinCluster(t, 3, raygotest.Options{CPUs: 2})
	// Infeasible groups: creation does not wait for the head, Wait says so
	// at once, and removing them does nothing.
	four, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 1}, {"CPU": 1}, {"CPU": 1}, {"CPU": 1}}, raygo.StrictSpread)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := four.Wait(ctx); !errors.Is(err, raygo.ErrUnschedulable) {
		t.Fatalf("4 STRICT_SPREAD bundles on 3 nodes: %v", err)
	}
	if err := four.Remove(ctx); err != nil {
		t.Fatalf("removing a group that could never be placed: %v", err)
	}
	big, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 3}}, raygo.Pack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.Wait(ctx); !errors.Is(err, raygo.ErrUnschedulable) {
		t.Fatalf("a 3-CPU bundle on 2-CPU nodes: %v", err)
	}
	// One bundle per node, taking every CPU.
	all, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 2}, {"CPU": 2}, {"CPU": 2}}, raygo.StrictSpread)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := all.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0] == nodes[1] || nodes[1] == nodes[2] || nodes[0] == nodes[2] {
		t.Fatalf("STRICT_SPREAD bundles on %v", nodes)
	}
	for b, n := range nodes {
		if w := get(t, ctx, whoami.With(raygo.InPlacementGroup(all, b)).Remote()); w.Node != n {
			t.Fatalf("task in bundle %d ran on node %d, want %d", b, w.Node, n)
		}
	}
	// Nothing is left for a second group: it waits, all or nothing.
	second, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 1}, {"CPU": 1}}, raygo.Pack)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = second.Wait(short)
	cancel()
	if err == nil {
		t.Fatal("second group reserved while the first holds every CPU")
	}
	// A plain task cannot run either, until the first group goes.
	pending := whoami.Remote()
	if _, _, err := raygo.Wait(ctx, []raygo.Ref[where]{pending}, 1, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := all.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if nodes, err := second.Wait(ctx); err != nil || len(nodes) != 2 || nodes[0] != nodes[1] {
		t.Fatalf("PACK group after release: %v %v", nodes, err)
	}
	get(t, ctx, pending)
	if err := second.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Wait(ctx); err == nil {
		t.Fatal("Wait succeeded after Remove")
	}
	if err := second.Remove(ctx); err == nil {
		t.Fatal("a second Remove succeeded")
	}
}

// TestPlacementGroupsPipelined creates groups without waiting for each,
// as raygo.NewPlacementGroup does not, then removes them: every bundle is
// reserved once and returned everywhere, and a group removed before it
// was placed fails its Wait and leaves nothing reserved.
func TestPlacementGroupsPipelined(t *testing.T) {
	_, ctx := joinCluster(t, 2, raygotest.Options{CPUs: 2})
	const n = 200
	pgs := make([]*raygo.PlacementGroup, n)
	for i := range pgs {
		pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 0.01}, {"CPU": 0.01}}, raygo.SpreadNodes)
		if err != nil {
			t.Fatal(err)
		}
		pgs[i] = pg
	}
	seen := map[uint64]bool{}
	for _, pg := range pgs {
		if seen[pg.ID()] {
			t.Fatalf("two groups with ID %d", pg.ID())
		}
		seen[pg.ID()] = true
		nodes, err := pg.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 2 || nodes[0] == nodes[1] {
			t.Fatalf("SPREAD group %d on %v", pg.ID(), nodes)
		}
	}
	// A group removed right after its creation, before anyone waited.
	for range 20 {
		pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 0.5}}, raygo.Pack)
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.Remove(ctx); err != nil {
			t.Fatalf("remove right after create: %v", err)
		}
		if _, err := pg.Wait(ctx); err == nil {
			t.Fatal("Wait succeeded after Remove")
		}
	}
	// Every group that waits for room (each takes a whole node) is placed
	// once the small ones go.
	whole := make([]*raygo.PlacementGroup, 2)
	for i := range whole {
		pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 2}}, raygo.StrictPack)
		if err != nil {
			t.Fatal(err)
		}
		whole[i] = pg
	}
	for _, pg := range pgs {
		if err := pg.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var nodes []raygo.NodeID
	for _, pg := range whole {
		got, err := pg.Wait(ctx)
		if err != nil {
			t.Fatalf("a group of a whole node after the others were removed: %v", err)
		}
		nodes = append(nodes, got...)
	}
	if nodes[0] == nodes[1] {
		t.Fatalf("two groups of 2 CPUs on one 2-CPU node %d", nodes[0])
	}
	for _, pg := range whole {
		if err := pg.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Everything is free again on both nodes.
	waitFor(t, func() bool {
		ns, err := raygo.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if math.Abs(n.Available["CPU"]-n.Total["CPU"]) > 1e-6 {
				return false
			}
		}
		return true
	})
}

func TestNodeDeathRetriesTasks(t *testing.T) {
	c, ctx := joinCluster(t, 3, raygotest.Options{CPUs: 1})
	var refs []raygo.Ref[where]
	for i := 0; i < 9; i++ {
		refs = append(refs, spin.With(raygo.Spread()).Remote(raygo.Val(400*time.Millisecond)))
	}
	time.Sleep(150 * time.Millisecond)
	c.Kill(3)
	ws, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatalf("tasks did not survive node 3 dying: %v", err)
	}
	for _, w := range ws {
		if w.Node == 0 {
			t.Fatal("missing result")
		}
	}
}

func TestUnauthenticatedConnectionsAreRefused(t *testing.T) {
	c := raygotest.Start(t, 1, raygotest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wrong := make([]byte, 32)
	for _, addr := range []string{c.Addr(), c.Nodes[0].Addr()} {
		_, err := rt.HeadRequest(ctx, addr, wrong, wire.OpStatus, nil)
		if !errors.Is(err, wire.ErrAuth) {
			t.Fatalf("%s with a wrong secret: %v", addr, err)
		}
		// Garbage instead of a handshake: the server hangs up.
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("x", 100)))
		buf := make([]byte, 4096)
		total := 0
		for {
			n, err := nc.Read(buf)
			total += n
			if err != nil {
				break
			}
		}
		nc.Close()
		if total > 64 {
			t.Fatalf("%s answered %d bytes to garbage", addr, total)
		}
	}
	if _, err := rt.HeadRequest(ctx, c.Addr(), c.Secret, wire.OpStatus, nil); err != nil {
		t.Fatalf("the right secret was refused: %v", err)
	}
}

func TestShutdownLeavesNothingBehind(t *testing.T) {
	before := leftovers(t)
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := 0; i < 4; i++ {
		w, err := whoami.Remote().Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, w.Pid)
	}
	w, err := whoami.With(raygo.Dedicated()).Remote().Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, w.Pid)
	big, err := raygo.Put(ctx, make([]float64, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	_ = big
	id := raygo.ClusterID()
	if err := raygo.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("worker pid %d still running after Shutdown", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	after := leftovers(t)
	for p := range after {
		if !before[p] && strings.Contains(p, id) {
			t.Errorf("left behind: %s", p)
		}
	}
}

func leftovers(t *testing.T) map[string]bool {
	out := map[string]bool{}
	for _, pat := range []string{"/dev/shm/raygo-*", filepath.Join(os.TempDir(), "raygo-*")} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() && strings.HasPrefix(filepath.Base(p), "raygo-") && !strings.HasPrefix(filepath.Base(p), "raygo-0") {
				out[p] = true
			}
		}
	}
	return out
}

func TestObjectsFreedOnEveryNode(t *testing.T) {
	_, ctx := joinCluster(t, 3, raygotest.Options{})
	func() {
		xs := make([]float64, 1<<20) // 8 MiB
		big, err := raygo.Put(ctx, xs)
		if err != nil {
			t.Fatal(err)
		}
		for node := raygo.NodeID(2); node <= 3; node++ {
			get(t, ctx, sumFloats.With(raygo.OnNode(node, false)).Remote(big))
		}
		small := add.With(raygo.OnNode(3, false)).Remote(raygo.Val(1), raygo.Val(2))
		get(t, ctx, add.With(raygo.OnNode(2, false)).Remote(small, raygo.Val(1)))
		waitFor(t, func() bool { return storeUsed(t, ctx) >= 3*8<<20 })
	}()
	// Every Ref is gone: every copy on every node is freed.
	waitFor(t, func() bool {
		nodes, err := raygo.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.StoreUsed != 0 || n.Objects != 0 {
				return false
			}
		}
		return true
	})
}

func TestGetOfAFreedObject(t *testing.T) {
	ctx := initLocal(t)
	var enc []byte
	func() {
		r, err := raygo.Put(ctx, []int{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		enc, _ = r.MarshalBinary()
		waitFor(t, func() bool {
			nodes, _ := raygo.Nodes(ctx)
			return len(nodes) == 1 && nodes[0].Objects == 1
		})
		runtime.KeepAlive(r)
	}()
	waitFor(t, func() bool {
		nodes, _ := raygo.Nodes(ctx)
		return len(nodes) == 1 && nodes[0].Objects == 0
	})
	var back raygo.Ref[[]int]
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := back.Get(short); !errors.Is(err, raygo.ErrObjectLost) {
		t.Fatalf("Get of a freed object: %v", err)
	}
}

// TestKilledDriverIsSweptUp: a driver killed with SIGKILL cannot clean up;
// the next embedded cluster on the machine removes what it left.
func TestKilledDriverIsSweptUp(t *testing.T) {
	if os.Getenv("RAYGO_TEST_DIE") == "1" {
		ctx := context.Background()
		if err := raygo.Init(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := raygo.Put(ctx, make([]float64, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		get(t, ctx, sumFloats.Remote(r))
		os.Stdout.WriteString("CLUSTER " + raygo.ClusterID() + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledDriverIsSweptUp$")
	cmd.Env = append(os.Environ(), "RAYGO_TEST_DIE=1", "TMPDIR="+tmp)
	out, _ := cmd.Output()
	var id string
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, "CLUSTER "); ok {
			id = s
		}
	}
	if id == "" {
		t.Fatalf("child did not start a cluster: %s", out)
	}
	shm, _ := filepath.Glob("/dev/shm/raygo-" + id + "-*")
	state, _ := filepath.Glob(filepath.Join(tmp, "raygo-*"))
	if len(shm) == 0 || len(state) == 0 {
		t.Fatalf("expected leftovers of the killed driver, found shm %v state %v", shm, state)
	}
	rt.SweepStale(tmp)
	shm, _ = filepath.Glob("/dev/shm/raygo-" + id + "-*")
	state, _ = filepath.Glob(filepath.Join(tmp, "raygo-*"))
	if len(shm) != 0 || len(state) != 0 {
		t.Fatalf("sweep left shm %v state %v", shm, state)
	}
}

func TestActorRestartsAfterNodeDeath(t *testing.T) {
	c, ctx := joinCluster(t, 3, raygotest.Options{})
	a := counterType.With(raygo.MaxRestarts(1), raygo.OnNode(3, true)).Remote(raygo.Val(int64(5)))
	if w := get(t, ctx, counterWhere.Remote(a)); w.Node != 3 {
		t.Fatalf("actor on node %d, want 3", w.Node)
	}
	get(t, ctx, counterAdd.Remote(a, raygo.Val(int64(1))))
	c.Kill(3)
	// The owner restarts it on a live node; its state starts over.
	got, err := counterAdd.With(raygo.MaxRetries(3)).Remote(a, raygo.Val(int64(1))).Get(ctx)
	if err != nil || got != 6 {
		t.Fatalf("call after node death: %d %v, want 6", got, err)
	}
	if w := get(t, ctx, counterWhere.Remote(a)); w.Node == 3 || w.Node == 0 {
		t.Fatalf("restarted actor on node %d", w.Node)
	}
}

var fill = raygo.Func2("test.fill", func(ctx context.Context, n int, v float64) ([]float64, error) {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = v
	}
	return xs, nil
})

// TestLostObjectsAreRebuilt: objects whose only copy was on a node that
// died are made again by running their tasks again (their lineage), and
// the pipeline's answer does not change.
func TestLostObjectsAreRebuilt(t *testing.T) {
	c, ctx := joinCluster(t, 3, raygotest.Options{CPUs: 2})
	const n = 24
	parts := make([]raygo.Ref[[]float64], n)
	for i := range parts {
		parts[i] = fill.With(raygo.Spread()).Remote(raygo.Val(64<<10), raygo.Val(float64(i))) // 512 KiB: stored
	}
	// Wait without fetching: every part is in some node's store.
	waitFor(t, func() bool { return storeUsed(t, ctx) >= n*(512<<10) })
	c.Kill(3)
	sums := make([]raygo.Ref[float64], n)
	for i := range parts {
		sums[i] = sumFloats.Remote(parts[i])
	}
	got, err := raygo.GetAll(ctx, sums)
	if err != nil {
		t.Fatalf("pipeline after node 3 died: %v", err)
	}
	for i, s := range got {
		if want := float64(i) * (64 << 10); s != want {
			t.Fatalf("sum %d = %g, want %g", i, s, want)
		}
	}
	var rebuilt uint64
	for _, a := range c.Nodes[:2] {
		rebuilt += a.Reconstructions()
	}
	if rebuilt == 0 {
		t.Fatal("no task was run again, yet node 3 held some of the parts")
	}
	t.Logf("%d tasks run again to rebuild parts lost with node 3", rebuilt)
}

var putOnNode = raygo.Func1("test.putOnNode", func(ctx context.Context, n int) (Box, error) {
	r, err := raygo.Put(ctx, make([]float64, n))
	return Box{Label: "put by a task", Data: r}, err
})

// TestOwnerDeath: an object put by a task on a node that dies is owned by
// that node; getting it fails with an error naming the object and node.
func TestOwnerDeath(t *testing.T) {
	c, ctx := joinCluster(t, 3, raygotest.Options{})
	box := get(t, ctx, putOnNode.With(raygo.OnNode(2, false)).Remote(raygo.Val(64<<10)))
	c.Kill(2)
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := box.Data.Get(short)
	if !errors.Is(err, raygo.ErrObjectLost) || !strings.Contains(err.Error(), "node 2") {
		t.Fatalf("get of an object whose owner died: %v", err)
	}
}

// TestDriverExitFreesItsObjects: a driver that goes away lets go of what
// it made (objects it put, results of its tasks, small and stored), which
// its node counts on the objects themselves while their creator holds
// them, and of what it only received.
func TestDriverExitFreesItsObjects(t *testing.T) {
	c := raygotest.Start(t, 1, raygotest.Options{CPUs: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raygo.Shutdown(context.Background()) }) // after a failure
	var keep []any
	for i := 0; i < 5; i++ {
		small, err := raygo.Put(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		big, err := raygo.Put(ctx, make([]float64, 1<<15)) // 256 KiB: in the store
		if err != nil {
			t.Fatal(err)
		}
		made := makeBig.Remote(raygo.Val(1 << 15))
		sum := add.Remote(raygo.Val(i), raygo.Val(1))
		if _, err := made.Get(ctx); err != nil {
			t.Fatal(err)
		}
		get(t, ctx, sum)
		// A ref received inside a value: held by the driver, not made by it.
		box := get(t, ctx, putOnNode.Remote(raygo.Val(1)))
		keep = append(keep, small, big, made, sum, box)
	}
	// Nodes report their counts a few times a second.
	waitFor(t, func() bool { return objectsOn(t, ctx) > 0 })
	if err := raygo.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(keep)
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		t.Fatal(err)
	}
	defer raygo.Shutdown(context.Background())
	waitFor(t, func() bool { return objectsOn(t, ctx) == 0 && storeUsed(t, ctx) == 0 })
}

func objectsOn(t *testing.T, ctx context.Context) int {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range nodes {
		n += x.Objects
	}
	return n
}
