package raygo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/raygo/raygo"
)

func TestMain(m *testing.M) {
	if raygo.IsWorker() {
		raygo.Init(context.Background()) // serves tasks until released; never returns
	}
	if head := os.Getenv("RAYGO_TEST_AGENT"); head != "" {
		os.Exit(runTestAgent(head))
	}
	os.Exit(m.Run())
}

// ---- functions and actors used by the tests ----

type where struct {
	Node raygo.NodeID
	Pid  int
}

var whoami = raygo.Func0("test.whoami", func(ctx context.Context) (where, error) {
	c := raygo.CurrentContext(ctx)
	return where{c.Node, c.Pid}, nil
})

var add = raygo.Func2("test.add", func(ctx context.Context, a, b int) (int, error) { return a + b, nil })

var divmod = raygo.Func2x2("test.divmod", func(ctx context.Context, a, b int) (int, int, error) {
	return a / b, a % b, nil
})

var errNegative = errors.New("negative input")

var sqrtInt = raygo.Func1("test.sqrt", func(ctx context.Context, x int) (int, error) {
	if x < 0 {
		return 0, fmt.Errorf("sqrt(%d): %w", x, errNegative)
	}
	r := 0
	for (r+1)*(r+1) <= x {
		r++
	}
	return r, nil
})

var boom = raygo.Func0("test.boom", func(ctx context.Context) (int, error) {
	var m map[string]int
	m["x"] = 1 // panics
	return 0, nil
})

var sleepy = raygo.Func1("test.sleepy", func(ctx context.Context, d time.Duration) (string, error) {
	select {
	case <-time.After(d):
		return "slept", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
})

var sumFloats = raygo.Func1("test.sumFloats", func(ctx context.Context, xs []float64) (float64, error) {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s, nil
})

var makeBig = raygo.Func1("test.makeBig", func(ctx context.Context, n int) ([]float64, error) {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
	}
	return xs, nil
})

var getEnv = raygo.Func1("test.getenv", func(ctx context.Context, k string) (string, error) { return os.Getenv(k), nil })

type Box struct {
	Label string
	Data  raygo.Ref[[]float64]
}

var sumBox = raygo.Func1("test.sumBox", func(ctx context.Context, b Box) (string, error) {
	xs, err := b.Data.Get(ctx)
	if err != nil {
		return "", err
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return fmt.Sprintf("%s=%g", b.Label, s), nil
})

var fanout = raygo.Func1("test.fanout", func(ctx context.Context, n int) (int, error) {
	refs := make([]raygo.Ref[int], n)
	for i := range refs {
		refs[i] = add.Remote(raygo.Val(i), raygo.Val(1))
	}
	vals, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return 0, err
	}
	s := 0
	for _, v := range vals {
		s += v
	}
	return s, nil
})

var exitOnce = raygo.Func1("test.exitOnce", func(ctx context.Context, marker string) (string, error) {
	if _, err := os.Stat(marker); err != nil {
		os.WriteFile(marker, []byte("x"), 0o600)
		os.Exit(3) // the worker dies; the task is retried
	}
	return "survived", nil
})

var alwaysExit = raygo.Func0("test.alwaysExit", func(ctx context.Context) (int, error) {
	os.Exit(4)
	return 0, nil
})

type counter struct{ n int64 }

var counterType = raygo.Actor1("test.Counter", func(ctx context.Context, start int64) (*counter, error) {
	return &counter{n: start}, nil
})

var counterAdd = raygo.Method1(counterType, "Add", func(ctx context.Context, c *counter, d int64) (int64, error) {
	c.n += d
	return c.n, nil
})

var counterGet = raygo.Method0(counterType, "Get", func(ctx context.Context, c *counter) (int64, error) {
	return c.n, nil
})

var counterWhere = raygo.Method0(counterType, "Where", func(ctx context.Context, c *counter) (where, error) {
	cc := raygo.CurrentContext(ctx)
	return where{cc.Node, cc.Pid}, nil
})

var failingType = raygo.Actor0("test.Failing", func(ctx context.Context) (*counter, error) {
	return nil, errors.New("constructor refuses")
})

var useCounter = raygo.Func2("test.useCounter", func(ctx context.Context, h raygo.Actor[*counter], d int64) (int64, error) {
	return counterAdd.Remote(h, raygo.Val(d)).Get(ctx)
})

// ---- helpers ----

func initLocal(t *testing.T, opts ...raygo.InitOption) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := raygo.Init(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raygo.Shutdown(context.Background())
		cancel()
	})
	return ctx
}

func get[T any](t *testing.T, ctx context.Context, r raygo.Ref[T]) T {
	t.Helper()
	v, err := r.Get(ctx)
	if err != nil {
		t.Fatalf("get %s: %v", r.ID(), err)
	}
	return v
}

// ---- tests ----

func TestTasksRunInWorkerProcesses(t *testing.T) {
	ctx := initLocal(t)
	w := get(t, ctx, whoami.Remote())
	if w.Pid == os.Getpid() || w.Pid == 0 {
		t.Fatalf("task ran in pid %d; the driver is %d", w.Pid, os.Getpid())
	}
	if got := get(t, ctx, add.Remote(raygo.Val(2), raygo.Val(3))); got != 5 {
		t.Fatalf("add = %d", got)
	}
	q, r := divmod.Remote(raygo.Val(17), raygo.Val(5))
	if a, b := get(t, ctx, q), get(t, ctx, r); a != 3 || b != 2 {
		t.Fatalf("divmod = %d, %d", a, b)
	}
}

func TestChainsAndNestedTasks(t *testing.T) {
	ctx := initLocal(t)
	x := add.Remote(raygo.Val(1), raygo.Val(1))
	for i := 0; i < 20; i++ {
		x = add.Remote(x, raygo.Val(1))
	}
	if got := get(t, ctx, x); got != 22 {
		t.Fatalf("chain = %d, want 22", got)
	}
	if got := get(t, ctx, fanout.Remote(raygo.Val(50))); got != 50*49/2+50 {
		t.Fatalf("nested fanout = %d", got)
	}
}

func TestManyTasks(t *testing.T) {
	ctx := initLocal(t)
	refs := make([]raygo.Ref[int], 2000)
	for i := range refs {
		refs[i] = add.Remote(raygo.Val(i), raygo.Val(i))
	}
	vals, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != 2*i {
			t.Fatalf("task %d = %d", i, v)
		}
	}
}

func TestErrors(t *testing.T) {
	ctx := initLocal(t)
	_, err := sqrtInt.Remote(raygo.Val(-4)).Get(ctx)
	var te *raygo.TaskError
	if !errors.As(err, &te) || !errors.Is(err, raygo.ErrApplication) {
		t.Fatalf("want an application TaskError, got %v", err)
	}
	if te.Name != "test.sqrt" || te.Task == "" || te.Node == 0 || te.Pid == 0 || !strings.Contains(te.Message, "negative input") {
		t.Fatalf("TaskError lacks detail: %+v", te)
	}

	_, err = boom.Remote().Get(ctx)
	if !errors.Is(err, raygo.ErrPanic) || !errors.As(err, &te) || !strings.Contains(te.Stack, "raygo_test") {
		t.Fatalf("want a panic with its stack, got %v", err)
	}

	// A task whose input failed fails with that error attached.
	bad := sqrtInt.Remote(raygo.Val(-1))
	_, err = add.Remote(bad, raygo.Val(1)).Get(ctx)
	if !errors.Is(err, raygo.ErrUpstream) || !errors.Is(err, raygo.ErrApplication) {
		t.Fatalf("want upstream failure wrapping the application error, got %v", err)
	}
	if !errors.As(err, &te) || te.Cause == nil || te.Cause.Name != "test.sqrt" {
		t.Fatalf("upstream cause missing: %+v", te)
	}
}

func TestMissingFunction(t *testing.T) {
	ctx := initLocal(t)
	_, err := raygo.UnregisteredForTest().Remote(raygo.Val(1)).Get(ctx)
	if !errors.Is(err, raygo.ErrNoFunction) || !strings.Contains(err.Error(), "test.not-registered") {
		t.Fatalf("want ErrNoFunction naming the function, got %v", err)
	}
}

func TestObjects(t *testing.T) {
	ctx := initLocal(t)
	small, err := raygo.Put(ctx, map[string]int{"a": 1, "b": 2})
	if err != nil {
		t.Fatal(err)
	}
	if m := get(t, ctx, small); m["b"] != 2 {
		t.Fatalf("map = %v", m)
	}

	// A large slice goes to shared memory; Gets are views of it, not copies.
	xs := make([]float64, 4<<20) // 32 MiB
	want := 0.0
	for i := range xs {
		xs[i] = float64(i % 1000)
		want += xs[i]
	}
	big, err := raygo.Put(ctx, xs)
	if err != nil {
		t.Fatal(err)
	}
	xs[0] = -1e9 // the object is a snapshot
	v1, v2 := get(t, ctx, big), get(t, ctx, big)
	if unsafe.SliceData(v1) != unsafe.SliceData(v2) || unsafe.SliceData(v1) == unsafe.SliceData(xs) {
		t.Fatalf("Get of a stored slice should be a shared view")
	}
	if v1[0] != 0 || len(v1) != len(xs) {
		t.Fatalf("stored object changed with its source")
	}
	if got := get(t, ctx, sumFloats.Remote(big)); got != want {
		t.Fatalf("sum in task = %g, want %g", got, want)
	}
	// Large task results also go through the store.
	if got := get(t, ctx, makeBig.Remote(raygo.Val(1<<20))); len(got) != 1<<20 || got[12345] != 12345 {
		t.Fatalf("big result wrong")
	}
	// Refs inside values.
	box := Box{Label: "box", Data: big}
	if got := get(t, ctx, sumBox.Remote(raygo.Val(box))); got != fmt.Sprintf("box=%g", want) {
		t.Fatalf("ref in struct: %s", got)
	}
}

func TestWait(t *testing.T) {
	ctx := initLocal(t)
	refs := []raygo.Ref[string]{
		sleepy.Remote(raygo.Val(time.Millisecond)),
		sleepy.Remote(raygo.Val(10 * time.Second)),
		sleepy.Remote(raygo.Val(2 * time.Millisecond)),
	}
	ready, pending, err := raygo.Wait(ctx, refs, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 2 || len(pending) != 1 || pending[0].ID() != refs[1].ID() {
		t.Fatalf("ready %v pending %v", ready, pending)
	}
	start := time.Now()
	ready, pending, err = raygo.Wait(ctx, refs, 3, 100*time.Millisecond)
	if err != nil || len(ready) != 2 || len(pending) != 1 || time.Since(start) > 3*time.Second {
		t.Fatalf("timeout wait: %v %v %v after %v", ready, pending, err, time.Since(start))
	}
	raygo.Cancel(refs[1], false)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	slow := sleepy.Remote(raygo.Val(5 * time.Second))
	if _, err := slow.Get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past its deadline: %v", err)
	}
	raygo.Cancel(slow, false)
}

func TestCancel(t *testing.T) {
	ctx := initLocal(t, raygo.NumCPUs(1))
	running := sleepy.Remote(raygo.Val(30 * time.Second))
	pending := sleepy.Remote(raygo.Val(30 * time.Second)) // waits for the only CPU
	time.Sleep(200 * time.Millisecond)
	if err := raygo.Cancel(pending, false); err != nil {
		t.Fatal(err)
	}
	if err := raygo.Cancel(running, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range []raygo.Ref[string]{pending, running} {
		_, err := r.Get(ctx)
		if !errors.Is(err, raygo.ErrCancelled) {
			t.Fatalf("cancelled task: %v", err)
		}
	}
	forced := sleepy.Remote(raygo.Val(30 * time.Second))
	time.Sleep(200 * time.Millisecond)
	raygo.Cancel(forced, true)
	if _, err := forced.Get(ctx); !errors.Is(err, raygo.ErrCancelled) {
		t.Fatalf("force-cancelled task: %v", err)
	}
	// The node recovers its CPU and keeps working.
	if got := get(t, ctx, add.Remote(raygo.Val(1), raygo.Val(2))); got != 3 {
		t.Fatal("cluster unusable after cancel")
	}
}

func TestWorkerDeathIsRetried(t *testing.T) {
	ctx := initLocal(t)
	marker := t.TempDir() + "/died"
	if got := get(t, ctx, exitOnce.Remote(raygo.Val(marker))); got != "survived" {
		t.Fatalf("got %q", got)
	}
	_, err := alwaysExit.With(raygo.MaxRetries(1)).Remote().Get(ctx)
	var te *raygo.TaskError
	if !errors.Is(err, raygo.ErrWorkerDied) || !errors.As(err, &te) || te.Attempt != 1 {
		t.Fatalf("want worker death after 1 retry, got %v", err)
	}
}

func TestActors(t *testing.T) {
	ctx := initLocal(t)
	c := counterType.Remote(raygo.Val(int64(10)))
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var refs []raygo.Ref[int64]
	for i := 0; i < 500; i++ {
		refs = append(refs, counterAdd.Remote(c, raygo.Val(int64(1))))
	}
	vals, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != int64(11+i) {
			t.Fatalf("call %d saw %d: calls ran out of order", i, v)
		}
	}
	w := get(t, ctx, counterWhere.Remote(c))
	if w.Pid == os.Getpid() {
		t.Fatal("actor runs in the driver")
	}
	// Handles travel to tasks.
	if got := get(t, ctx, useCounter.Remote(raygo.Val(c), raygo.Val(int64(100)))); got != 610 {
		t.Fatalf("call from a task = %d", got)
	}
	// Named actors.
	named := counterType.With(raygo.ActorName("tally"), raygo.Namespace("tests")).Remote(raygo.Val(int64(7)))
	if err := named.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	found, err := raygo.GetActor(ctx, counterType, "tally", "tests")
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, ctx, counterGet.Remote(found)); got != 7 {
		t.Fatalf("named actor = %d", got)
	}
	dup := counterType.With(raygo.ActorName("tally"), raygo.Namespace("tests")).Remote(raygo.Val(int64(0)))
	if err := dup.Ready(ctx); !errors.Is(err, raygo.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := raygo.GetActor(ctx, counterType, "nobody", "tests"); !errors.Is(err, raygo.ErrActorNotFound) {
		t.Fatal("GetActor of a missing name succeeded")
	}
	// Kill.
	if err := found.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = counterGet.Remote(found).Get(ctx)
	if !errors.Is(err, raygo.ErrActorDied) {
		t.Fatalf("call after kill: %v", err)
	}
	// A failing constructor.
	f := failingType.Remote()
	if err := f.Ready(ctx); !errors.Is(err, raygo.ErrApplication) {
		t.Fatalf("failing constructor: %v", err)
	}
	if _, err := counterGet.Remote(raygo.ActorForTest[*counter](f)).Get(ctx); !errors.Is(err, raygo.ErrActorDied) {
		t.Fatalf("call to never-created actor: %v", err)
	}
}

func TestGPUsAreIsolated(t *testing.T) {
	ctx := initLocal(t, raygo.NumGPUs(2))
	a := getEnv.With(raygo.GPUs(1)).Remote(raygo.Val("CUDA_VISIBLE_DEVICES"))
	b := getEnv.With(raygo.GPUs(1)).Remote(raygo.Val("CUDA_VISIBLE_DEVICES"))
	both := getEnv.With(raygo.GPUs(2)).Remote(raygo.Val("CUDA_VISIBLE_DEVICES"))
	none := getEnv.Remote(raygo.Val("CUDA_VISIBLE_DEVICES"))
	va, vb, vboth, vnone := get(t, ctx, a), get(t, ctx, b), get(t, ctx, both), get(t, ctx, none)
	if va == "" || vb == "" || (va == vb && va != "") {
		// Two one-GPU tasks may run one after the other on the same GPU, but each sees exactly one.
		if strings.Contains(va, ",") || strings.Contains(vb, ",") || va == "" {
			t.Fatalf("one-GPU tasks saw %q and %q", va, vb)
		}
	}
	if vboth != "0,1" && vboth != "1,0" {
		t.Fatalf("two-GPU task saw %q", vboth)
	}
	if vnone != "" {
		t.Fatalf("CPU task saw GPUs %q", vnone)
	}
	_, err := getEnv.With(raygo.GPUs(3)).Remote(raygo.Val("x")).Get(ctx)
	if !errors.Is(err, raygo.ErrUnschedulable) {
		t.Fatalf("3 GPUs on a 2-GPU cluster: %v", err)
	}
}

func TestKV(t *testing.T) {
	ctx := initLocal(t)
	if err := raygo.KVPut(ctx, "job/a", []byte("1"), false); err != nil {
		t.Fatal(err)
	}
	if err := raygo.KVPut(ctx, "job/a", []byte("2"), false); !errors.Is(err, raygo.ErrKeyExists) {
		t.Fatalf("put over an existing key without overwrite: %v, want ErrKeyExists", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		raygo.KVPut(context.Background(), "job/b", []byte("late"), true)
	}()
	v, err := raygo.KVWait(ctx, "job/b")
	if err != nil || string(v) != "late" {
		t.Fatalf("wait: %q %v", v, err)
	}
	keys, err := raygo.KVList(ctx, "job/")
	if err != nil || len(keys) != 2 {
		t.Fatalf("list: %v %v", keys, err)
	}
	if _, err := raygo.KVGet(ctx, "nope"); !errors.Is(err, raygo.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := raygo.KVWait(short, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait timeout: %v", err)
	}
}

func TestObjectsAreFreed(t *testing.T) {
	ctx := initLocal(t, raygo.ObjectStoreMemory(64<<20))
	// Far more than the store holds, one at a time: each is freed once
	// its refs are gone.
	for i := 0; i < 12; i++ {
		r, err := raygo.Put(ctx, make([]float64, 2<<20)) // 16 MiB
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		get(t, ctx, sumFloats.Remote(r))
		r = raygo.Ref[[]float64]{}
		runtime.GC()
		waitFor(t, func() bool { return storeUsed(t, ctx) < 40<<20 })
	}
	// An object larger than the store is a clear error.
	_, err := raygo.Put(ctx, make([]byte, 100<<20))
	if err == nil || !strings.Contains(err.Error(), "object store full") {
		t.Fatalf("oversized put: %v", err)
	}
}

func storeUsed(t *testing.T, ctx context.Context) int64 {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, x := range nodes {
		n += x.StoreUsed
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

var _ atomic.Int64

// Workers belong to their agent: job-wide signals (Ctrl-C, scancel) must
// not kill them while the driver finishes.
func TestWorkersIgnoreJobSignals(t *testing.T) {
	ctx := initLocal(t)
	w := get(t, ctx, whoami.Remote())
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		if err := syscall.Kill(w.Pid, s); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(w.Pid, 0); err != nil {
		t.Fatalf("worker %d died of a job signal: %v", w.Pid, err)
	}
	get(t, ctx, whoami.Remote())
}

func TestActorRestarts(t *testing.T) {
	ctx := initLocal(t, raygo.Logger(t.Logf))
	c := counterType.With(raygo.MaxRestarts(2), raygo.Dedicated()).Remote(raygo.Val(int64(100)))
	_ = ctx
	for round := 0; round < 3; round++ {
		if got := get(t, ctx, counterAdd.Remote(c, raygo.Val(int64(1)))); got != 101 {
			t.Fatalf("round %d: counter %d, want 101 (a fresh incarnation)", round, got)
		}
		w := get(t, ctx, counterWhere.Remote(c))
		if err := syscall.Kill(w.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Wait for the process to be gone before calling again.
		for syscall.Kill(w.Pid, 0) == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if round < 2 {
			// Calls made while it restarts go to the new incarnation.
			continue
		}
		_, err := counterGet.Remote(c).Get(ctx)
		var te *raygo.TaskError
		if !errors.Is(err, raygo.ErrActorDied) || !errors.As(err, &te) || !strings.Contains(err.Error(), "after 2 restarts") {
			t.Fatalf("after the restarts are used up: %v", err)
		}
		return
	}
}

func TestActorKillIsFinal(t *testing.T) {
	ctx := initLocal(t)
	c := counterType.With(raygo.MaxRestarts(-1)).Remote(raygo.Val(int64(0)))
	get(t, ctx, counterAdd.Remote(c, raygo.Val(int64(1))))
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := counterGet.Remote(c).Get(ctx); !errors.Is(err, raygo.ErrActorDied) {
		t.Fatalf("call after Kill of a restartable actor: %v", err)
	}
}

var ctxActor = raygo.Actor0("test.ContextActor", func(ctx context.Context) (*counter, error) { return &counter{}, nil })

var ctxOf = raygo.Method0(ctxActor, "Context", func(ctx context.Context, _ *counter) (raygo.Context, error) {
	return raygo.CurrentContext(ctx), nil
})

var taskCtx = raygo.Func0("test.taskContext", func(ctx context.Context) (raygo.Context, error) {
	return raygo.CurrentContext(ctx), nil
})

// TestContextPlacement: a task's context names its actor and the
// placement group bundle it (or its actor) was placed in.
func TestContextPlacement(t *testing.T) {
	ctx := initLocal(t, raygo.NumCPUs(4))
	pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 1}, {"CPU": 1}}, raygo.Pack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	plain := ctxActor.Remote()
	placed := ctxActor.With(raygo.InPlacementGroup(pg, 1)).Remote()
	c := get(t, ctx, ctxOf.Remote(plain))
	if c.Actor != plain.ID() || c.PlacementGroup != 0 || c.Bundle != -1 {
		t.Fatalf("plain actor's context: %+v (actor %s)", c, plain.ID())
	}
	c = get(t, ctx, ctxOf.Remote(placed))
	if c.Actor != placed.ID() || c.PlacementGroup != pg.ID() || c.Bundle != 1 {
		t.Fatalf("placed actor's context: %+v (actor %s, group %d)", c, placed.ID(), pg.ID())
	}
	c = get(t, ctx, taskCtx.With(raygo.InPlacementGroup(pg, 0)).Remote())
	if c.Actor != "" || c.PlacementGroup != pg.ID() || c.Bundle != 0 || c.Task == "" {
		t.Fatalf("placed task's context: %+v", c)
	}
	if d := raygo.CurrentContext(ctx); d.Task != "" || d.Actor != "" || d.Bundle != -1 {
		t.Fatalf("driver's context: %+v", d)
	}
}
