package raygo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/raygotest"
	rt "github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// runTestAgent runs a node agent in this process (a separate OS process
// the test can freeze or kill) until its cluster stops.
func runTestAgent(head string) int {
	secret, err := rt.ReadSecret(head, os.Getenv("RAYGO_SECRET_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, _ := os.MkdirTemp("", "raygo-test-agent-")
	defer os.RemoveAll(dir)
	a, err := rt.StartAgent(context.Background(), rt.AgentConfig{
		HeadAddr: head, Secret: secret, ListenAddr: os.Getenv("RAYGO_TEST_AGENT_IP") + ":0",
		StateDir: filepath.Join(dir, "node"), Resources: wire.Resources{"CPU": 2, "memory": 4 << 30},
		StoreLimit: 256 << 20, Labels: map[string]string{"index": os.Getenv("RAYGO_TEST_AGENT_IP")},
		Logf: func(f string, args ...any) {
			fmt.Fprintf(os.Stderr, "agent "+os.Getenv("RAYGO_TEST_AGENT_IP")+": "+f+"\n", args...)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// SIGUSR1 prints what the agent waits on (tests send it when stuck).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				a.Stop(2 * time.Second)
				return 0
			}
			fmt.Fprint(os.Stderr, a.DebugState())
		case <-a.Done():
			return 0
		}
	}
}

// startAgentProcess starts a node agent as a child process joining head.
func startAgentProcess(t *testing.T, head, ip string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Its state goes under the test's own temporary directory, so even a
	// SIGKILLed agent leaves nothing behind once the test ends.
	cmd.Env = append(os.Environ(), "RAYGO_TEST_AGENT="+head, "RAYGO_TEST_AGENT_IP="+ip, "TMPDIR="+t.TempDir(),
		"RAYGO_SECRET_FILE="+filepath.Join(rt.ClusterDir(head), "secret"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		// Stores of agents this test killed outright.
		rt.SweepStaleStores("/dev/shm")
	})
	return cmd
}

func aliveNodes(t *testing.T, ctx context.Context) map[raygo.NodeID]bool {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[raygo.NodeID]bool{}
	for _, n := range nodes {
		if n.Alive {
			out[n.ID] = true
		}
	}
	return out
}

// TestFrozenNodeIsDeclaredDead: a node that stops answering (SIGSTOP, as
// a hung machine or a cut network would) is declared dead within the
// documented bound, its tasks finish elsewhere, and when it wakes it finds
// itself fenced off and exits.
func TestFrozenNodeIsDeclaredDead(t *testing.T) {
	c := raygotest.Start(t, 1, raygotest.Options{CPUs: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		t.Fatal(err)
	}
	defer raygo.Shutdown(context.Background())
	p2 := startAgentProcess(t, c.Addr(), "127.0.0.2")
	p3 := startAgentProcess(t, c.Addr(), "127.0.0.3")
	_ = p2
	waitFor(t, func() bool { return len(aliveNodes(t, ctx)) == 3 })

	var refs []raygo.Ref[where]
	for i := 0; i < 12; i++ {
		refs = append(refs, spin.With(raygo.Spread()).Remote(raygo.Val(300*time.Millisecond)))
	}
	time.Sleep(100 * time.Millisecond)
	frozen := time.Now()
	if err := p3.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var dead raygo.NodeID
	for dead == 0 {
		if time.Since(frozen) > rt.DefaultDeadAfter+2*time.Second {
			t.Fatalf("frozen node not declared dead after %v", time.Since(frozen))
		}
		for id := raygo.NodeID(1); id <= 3; id++ {
			if !aliveNodes(t, ctx)[id] {
				dead = id
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	detect := time.Since(frozen)
	t.Logf("node %d declared dead %v after SIGSTOP (bound: %v + one check)", dead, detect.Round(time.Millisecond), rt.DefaultDeadAfter)
	ws, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatalf("tasks did not finish after a node froze: %v", err)
	}
	if len(ws) != len(refs) {
		t.Fatalf("%d results for %d tasks", len(ws), len(refs))
	}
	t.Logf("all tasks done %v after SIGSTOP", time.Since(frozen).Round(time.Millisecond))
	// Woken up, the node finds its head connection closed and exits.
	p3.Process.Signal(syscall.SIGCONT)
	exited := make(chan error, 1)
	go func() { exited <- p3.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the fenced node kept running after SIGCONT")
	}
}

// TestWorkerKilledMidPipeline: kill -9 of a worker process during a
// 1,000-task pipeline changes nothing in the result.
func TestWorkerKilledMidPipeline(t *testing.T) {
	ctx := initLocal(t)
	const n = 1000
	run := func(kill bool) int {
		var killed atomic.Bool
		refs := make([]raygo.Ref[int], n)
		for i := range refs {
			x := add.Remote(raygo.Val(i), raygo.Val(1))
			refs[i] = add.Remote(x, raygo.Val(i))
			if kill && i == n/3 && !killed.Load() {
				w := get(t, ctx, whoami.Remote())
				syscall.Kill(w.Pid, syscall.SIGKILL)
				killed.Store(true)
			}
		}
		vals, err := raygo.GetAll(ctx, refs)
		if err != nil {
			t.Fatalf("pipeline (kill=%v): %v", kill, err)
		}
		sum := 0
		for _, v := range vals {
			sum += v
		}
		return sum
	}
	want := run(false)
	if got := run(true); got != want {
		t.Fatalf("with a worker killed: %d, without: %d", got, want)
	}
}

// TestAgentKilledMidPipeline: kill -9 of a node agent process (a real
// separate process, as started by hand) in the middle of a pipeline; the
// lost intermediate objects are rebuilt and the result is unchanged.
func TestAgentKilledMidPipeline(t *testing.T) {
	c := raygotest.Start(t, 1, raygotest.Options{CPUs: 2, Logf: t.Logf})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := raygo.Init(ctx, raygo.Address(c.Addr())); err != nil {
		t.Fatal(err)
	}
	defer raygo.Shutdown(context.Background())
	p2 := startAgentProcess(t, c.Addr(), "127.0.0.2")
	p3 := startAgentProcess(t, c.Addr(), "127.0.0.3")
	procs := []*exec.Cmd{p2, p3}
	waitFor(t, func() bool { return len(aliveNodes(t, ctx)) == 3 })

	const n = 30
	run := func(kill bool) float64 {
		parts := make([]raygo.Ref[[]float64], n)
		for i := range parts {
			parts[i] = fill.With(raygo.Spread()).Remote(raygo.Val(32<<10), raygo.Val(float64(i)))
		}
		if kill {
			waitFor(t, func() bool { return storeUsed(t, ctx) >= n*(256<<10) })
			p3.Process.Kill()
		}
		sums := make([]raygo.Ref[float64], n)
		for i := range parts {
			sums[i] = sumFloats.Remote(parts[i])
		}
		vals, err := raygo.GetAll(ctx, sums)
		if err != nil {
			for _, p := range procs {
				p.Process.Signal(syscall.SIGUSR1)
			}
			time.Sleep(200 * time.Millisecond)
			t.Fatalf("pipeline (kill=%v): %v\n%s", kill, err, c.Nodes[0].DebugState())
		}
		total := 0.0
		for _, v := range vals {
			total += v
		}
		return total
	}
	want := run(false)
	// The first run's objects must be gone, so that the store use seen
	// below is the second run's.
	waitFor(t, func() bool { return storeUsed(t, ctx) < 256<<10 })
	if got := run(true); got != want {
		t.Fatalf("with node 3 killed: %g, without: %g", got, want)
	}
	if r := c.Nodes[0].Reconstructions(); r == 0 {
		t.Fatal("nothing was rebuilt, yet node 3 held intermediate objects")
	} else {
		t.Logf("%d tasks run again after node 3 was killed", r)
	}
}

// TestHeadDeathEndsTheJob: the allocation is the failure domain. When the
// head dies, every node stops its workers, removes its store and state,
// and the driver's calls fail instead of hanging.
func TestHeadDeathEndsTheJob(t *testing.T) {
	c, ctx := joinCluster(t, 3, raygotest.Options{})
	var pids []int
	for node := raygo.NodeID(1); node <= 3; node++ {
		pids = append(pids, get(t, ctx, whoami.With(raygo.OnNode(node, false)).Remote()).Pid)
	}
	var stores []string
	for _, a := range c.Nodes {
		stores = append(stores, a.StoreDir())
	}
	pending := sleepy.Remote(raygo.Val(time.Minute))
	c.KillHead()
	for i, a := range c.Nodes {
		select {
		case <-a.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d still running 10 s after its head died", i+1)
		}
		if why := a.StopReason(); !strings.HasPrefix(why, "lost head") {
			t.Errorf("node %d stopped because %q", i+1, why)
		}
	}
	for _, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d outlived its node", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, s := range stores {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("store %s left behind: %v", s, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := pending.Get(short); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a task pending at the head's death: %v (want a failure, not a hang)", err)
	}
}

// TestNoGoroutineLeak: an embedded cluster's goroutines all end at Shutdown.
func TestNoGoroutineLeak(t *testing.T) {
	before := goruntime.NumGoroutine()
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		if err := raygo.Init(ctx); err != nil {
			t.Fatal(err)
		}
		refs := make([]raygo.Ref[int], 200)
		for i := range refs {
			refs[i] = add.Remote(raygo.Val(i), raygo.Val(1))
		}
		if _, err := raygo.GetAll(ctx, refs); err != nil {
			t.Fatal(err)
		}
		c := counterType.Remote(raygo.Val(int64(0)))
		get(t, ctx, counterAdd.Remote(c, raygo.Val(int64(1))))
		if _, err := raygo.Put(ctx, make([]float64, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if err := raygo.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := goruntime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after Shutdown:\n%s", before, goruntime.NumGoroutine(), buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
