package collectives_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/collectives"
	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	"github.com/raygo/raygo/raygotest"
)

func TestMain(m *testing.M) {
	if raygo.IsWorker() {
		raygo.Init(context.Background()) // serves tasks until released; never returns
	}
	os.Exit(m.Run())
}

// member is one rank: an actor holding the groups it has opened.
type member struct {
	mu     sync.Mutex
	groups map[string]*collectives.Group
}

var (
	memberActor = raygo.Actor0("collectives_test.Member", func(ctx context.Context) (*member, error) {
		return &member{groups: map[string]*collectives.Group{}}, nil
	})
	// openGroup joins a declared group and says which backend it chose.
	openGroup = raygo.Method1(memberActor, "Open", func(ctx context.Context, m *member, name string) (string, error) {
		g, err := collectives.Open(ctx, name)
		if err != nil {
			return "", err
		}
		m.mu.Lock()
		m.groups[name] = g
		m.mu.Unlock()
		return g.Backend(), nil
	})
	// runMatrix checks every operation and element type on one group.
	runMatrix = raygo.Method2(memberActor, "Matrix", func(ctx context.Context, m *member, name string, seed uint64) (string, error) {
		m.mu.Lock()
		g := m.groups[name]
		m.mu.Unlock()
		if g == nil {
			return "", fmt.Errorf("group %q not opened", name)
		}
		if err := matrix(ctx, g, seed, []int{0, 1, 7, 1001}); err != nil {
			return "", err
		}
		return "ok", nil
	})
	destroyGroup = raygo.Method1(memberActor, "Destroy", func(ctx context.Context, m *member, name string) (bool, error) {
		m.mu.Lock()
		g := m.groups[name]
		delete(m.groups, name)
		m.mu.Unlock()
		if g == nil {
			return false, nil
		}
		return true, g.Destroy(ctx)
	})
	// stall joins a barrier only when told to.
	barrierAfter = raygo.Method2(memberActor, "Barrier", func(ctx context.Context, m *member, name string, timeoutMS int) (string, error) {
		m.mu.Lock()
		g := m.groups[name]
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, time.Duration(timeoutMS)*time.Millisecond)
		defer cancel()
		err := collectives.Barrier(ctx, g)
		if err == nil {
			return "", nil
		}
		var we *collectives.WaitError
		if !errors.As(err, &we) {
			return "", fmt.Errorf("barrier error is not a WaitError: %w", err)
		}
		return fmt.Sprint(we.Missing), nil
	})
)

func typed[T collectives.Elem](b []byte) []T {
	var z T
	out := make([]T, len(b)/int(sizeOf(z)))
	copy(bytesOf(out), b)
	return out
}

func matrix(ctx context.Context, g *collectives.Group, seed uint64, lengths []int) error {
	for _, err := range []error{
		matrixOf[float32](ctx, g, seed, lengths),
		matrixOf[float64](ctx, g, seed, lengths),
		matrixOf[int32](ctx, g, seed, lengths),
		matrixOf[int64](ctx, g, seed, lengths),
		matrixOf[uint8](ctx, g, seed, lengths),
		matrixOf[collectives.Float16](ctx, g, seed, lengths),
		matrixOf[collectives.BFloat16](ctx, g, seed, lengths),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// matrixOf runs every operation on T, each reduction and length, and
// compares with backendtest's float64 reference.
func matrixOf[T collectives.Elem](ctx context.Context, g *collectives.Group, seed uint64, lengths []int) error {
	dt := collectives.DTypeOf[T]()
	rank, size := g.Rank(), g.Size()
	fail := func(what string, err error) error {
		return fmt.Errorf("rank %d of %d, %v %s: %w", rank, size, dt, what, err)
	}
	for _, n := range lengths {
		for _, op := range backend.Ops {
			want := backendtest.Expect(dt, op, size, n, seed)
			send := typed[T](backendtest.Data(dt, op, rank, n, seed))
			recv := make([]T, n)
			if err := collectives.Allreduce(ctx, g, send, recv, op); err != nil {
				return fail(fmt.Sprintf("allreduce %v n=%d", op, n), err)
			}
			if err := backendtest.Check(dt, op, size, bytesOf(recv), want); err != nil {
				return fail(fmt.Sprintf("allreduce %v n=%d", op, n), err)
			}
			if err := collectives.AllreduceInPlace(ctx, g, send, op); err != nil {
				return fail(fmt.Sprintf("allreduce in place %v n=%d", op, n), err)
			}
			if err := backendtest.Check(dt, op, size, bytesOf(send), want); err != nil {
				return fail(fmt.Sprintf("allreduce in place %v n=%d", op, n), err)
			}
			root := n % size
			send = typed[T](backendtest.Data(dt, op, rank, n, seed))
			if err := collectives.Reduce(ctx, g, send, recv, op, root); err != nil {
				return fail(fmt.Sprintf("reduce %v n=%d", op, n), err)
			}
			if rank == root {
				if err := backendtest.Check(dt, op, size, bytesOf(recv), want); err != nil {
					return fail(fmt.Sprintf("reduce %v n=%d", op, n), err)
				}
			}
			// reduce-scatter over n blocks of size elements... n per rank
			wantRS := backendtest.Expect(dt, op, size, n*size, seed)
			big := typed[T](backendtest.Data(dt, op, rank, n*size, seed))
			part := make([]T, n)
			if err := collectives.ReduceScatter(ctx, g, big, part, op); err != nil {
				return fail(fmt.Sprintf("reduce-scatter %v n=%d", op, n), err)
			}
			if err := backendtest.Check(dt, op, size, bytesOf(part), wantRS[rank*n:(rank+1)*n]); err != nil {
				return fail(fmt.Sprintf("reduce-scatter %v n=%d", op, n), err)
			}
		}
		mine := func(r, k int) []T { return typed[T](backendtest.Data(dt, backend.Sum, r, k, seed)) }
		same := func(a, b []T) bool { return string(bytesOf(a)) == string(bytesOf(b)) }
		root := (n + 1) % size
		buf := mine(rank, n)
		if err := collectives.Broadcast(ctx, g, buf, root); err != nil {
			return fail(fmt.Sprintf("broadcast n=%d", n), err)
		}
		if !same(buf, mine(root, n)) {
			return fail(fmt.Sprintf("broadcast n=%d", n), errors.New("data differs from root's"))
		}
		all := make([]T, n*size)
		if err := collectives.Allgather(ctx, g, mine(rank, n), all); err != nil {
			return fail(fmt.Sprintf("allgather n=%d", n), err)
		}
		for r := 0; r < size; r++ {
			if !same(all[r*n:(r+1)*n], mine(r, n)) {
				return fail(fmt.Sprintf("allgather n=%d", n), fmt.Errorf("block %d differs", r))
			}
		}
		var gathered []T
		if rank == root {
			gathered = make([]T, n*size)
		}
		if err := collectives.Gather(ctx, g, mine(rank, n), gathered, root); err != nil {
			return fail(fmt.Sprintf("gather n=%d", n), err)
		}
		if rank == root && !same(gathered, all) {
			return fail(fmt.Sprintf("gather n=%d", n), errors.New("data differs"))
		}
		var whole []T
		if rank == root {
			whole = mine(root, n*size)
		}
		got := make([]T, n)
		if err := collectives.Scatter(ctx, g, whole, got, root); err != nil {
			return fail(fmt.Sprintf("scatter n=%d", n), err)
		}
		if !same(got, mine(root, n*size)[rank*n:(rank+1)*n]) {
			return fail(fmt.Sprintf("scatter n=%d", n), errors.New("block differs"))
		}
		out := make([]T, n*size)
		if err := collectives.AllToAll(ctx, g, mine(rank, n*size), out); err != nil {
			return fail(fmt.Sprintf("all-to-all n=%d", n), err)
		}
		for r := 0; r < size; r++ {
			if !same(out[r*n:(r+1)*n], mine(r, n*size)[rank*n:(rank+1)*n]) {
				return fail(fmt.Sprintf("all-to-all n=%d", n), fmt.Errorf("block from %d differs", r))
			}
		}
		if size > 1 {
			next, prev := (rank+1)%size, (rank-1+size)%size
			errc := make(chan error, 1)
			go func() { errc <- collectives.Send(ctx, g, mine(rank, n), next) }()
			in := make([]T, n)
			if err := collectives.Recv(ctx, g, in, prev); err != nil {
				return fail(fmt.Sprintf("recv n=%d", n), err)
			}
			if err := <-errc; err != nil {
				return fail(fmt.Sprintf("send n=%d", n), err)
			}
			if !same(in, mine(prev, n)) {
				return fail(fmt.Sprintf("send/recv n=%d", n), errors.New("data differs"))
			}
		}
		if err := collectives.Barrier(ctx, g); err != nil {
			return fail("barrier", err)
		}
	}
	return nil
}

// startMembers creates n dedicated actors (one process each) and declares
// a group over them; it returns the actors and the backend each chose.
func startMembers(t *testing.T, ctx context.Context, name string, n int, opts ...raygo.Option) []raygo.Actor[*member] {
	t.Helper()
	actors := make([]raygo.Actor[*member], n)
	for i := range actors {
		actors[i] = memberActor.With(append([]raygo.Option{raygo.Dedicated(), raygo.CPUs(0), raygo.MaxConcurrency(4)}, opts...)...).Remote()
	}
	return actors
}

func openAll(t *testing.T, ctx context.Context, name string, actors []raygo.Actor[*member], opts ...collectives.Option) []string {
	t.Helper()
	if err := collectives.Declare(ctx, name, actors, opts...); err != nil {
		t.Fatal(err)
	}
	refs := make([]raygo.Ref[string], len(actors))
	for i, a := range actors {
		refs[i] = openGroup.Remote(a, raygo.Val(name))
	}
	out, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func matrixAll(t *testing.T, ctx context.Context, name string, actors []raygo.Actor[*member]) {
	t.Helper()
	refs := make([]raygo.Ref[string], len(actors))
	seed := uint64(time.Now().UnixNano())
	for i, a := range actors {
		refs[i] = runMatrix.Remote(a, raygo.Val(name), raygo.Val(seed))
	}
	if _, err := raygo.GetAll(ctx, refs); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
}

func destroyAll(t *testing.T, ctx context.Context, name string, actors []raygo.Actor[*member]) {
	t.Helper()
	refs := make([]raygo.Ref[bool], len(actors))
	for i, a := range actors {
		refs[i] = destroyGroup.Remote(a, raygo.Val(name))
	}
	if _, err := raygo.GetAll(ctx, refs); err != nil {
		t.Fatal(err)
	}
}

func initLocal(t *testing.T, opts ...raygo.InitOption) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	if err := raygo.Init(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raygo.Shutdown(context.Background())
		cancel()
	})
	return ctx
}

// TestOneNode runs the whole matrix on groups of 1 to 8 ranks, each rank
// its own process on one node (the shm backend), then two groups over the
// same actors at once.
func TestOneNode(t *testing.T) {
	ctx := initLocal(t, raygo.NumCPUs(8))
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 8}
	if testing.Short() {
		sizes = []int{1, 2, 3, 8}
	}
	actors := startMembers(t, ctx, "", 8)
	for _, n := range sizes {
		name := fmt.Sprintf("one-node-%d", n)
		backends := openAll(t, ctx, name, actors[:n])
		for _, b := range backends {
			if b != collectives.SHM {
				t.Fatalf("group of %d ranks on one node chose %s, want shm", n, b)
			}
		}
		matrixAll(t, ctx, name, actors[:n])
		destroyAll(t, ctx, name, actors[:n])
	}
	// Concurrent groups over the same actors, with ranks reversed in one.
	openAll(t, ctx, "even", actors[:4])
	openAll(t, ctx, "odd", actors[:4], collectives.WithRanks(3, 2, 1, 0), collectives.WithBackend(collectives.TCP))
	var wg sync.WaitGroup
	for _, name := range []string{"even", "odd"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			matrixAll(t, ctx, name, actors[:4])
		}()
	}
	wg.Wait()
	destroyAll(t, ctx, "even", actors[:4])
	destroyAll(t, ctx, "odd", actors[:4])
	// A destroyed name can be declared again.
	openAll(t, ctx, "even", actors[:2])
	destroyAll(t, ctx, "even", actors[:2])
	left, err := raygo.KVList(ctx, "collectives/")
	if err != nil || len(left) != 0 {
		t.Fatalf("keys left after destroy: %v %v", left, err)
	}
}

// TestThreeNodes spreads ranks over three nodes: one rank per node (tcp)
// and several per node (hier).
func TestThreeNodes(t *testing.T) {
	c := raygotest.Start(t, 3, raygotest.Options{CPUs: 4})
	ctx := initLocal(t, raygo.Address(c.Addr()))
	var actors []raygo.Actor[*member]
	for i := 0; i < 8; i++ {
		actors = append(actors, memberActor.With(raygo.Dedicated(), raygo.CPUs(0), raygo.MaxConcurrency(4), raygo.OnNode(raygo.NodeID(c.Nodes[i%3].ID()), false)).Remote())
	}
	backends := openAll(t, ctx, "spread3", actors[:3])
	if backends[0] != collectives.TCP {
		t.Fatalf("one rank per node chose %s, want tcp", backends[0])
	}
	matrixAll(t, ctx, "spread3", actors[:3])
	destroyAll(t, ctx, "spread3", actors[:3])
	for _, n := range []int{5, 8} {
		name := fmt.Sprintf("hier-%d", n)
		backends := openAll(t, ctx, name, actors[:n])
		if backends[0] != collectives.Hier {
			t.Fatalf("%d ranks on 3 nodes chose %s, want hier", n, backends[0])
		}
		matrixAll(t, ctx, name, actors[:n])
		destroyAll(t, ctx, name, actors[:n])
	}
}

// TestMissingRank: a barrier that one rank never reaches fails on the
// others, naming it.
func TestMissingRank(t *testing.T) {
	ctx := initLocal(t, raygo.NumCPUs(4))
	actors := startMembers(t, ctx, "", 3)
	openAll(t, ctx, "stuck", actors)
	r1 := barrierAfter.Remote(actors[1], raygo.Val("stuck"), raygo.Val(700))
	r2 := barrierAfter.Remote(actors[2], raygo.Val("stuck"), raygo.Val(700))
	for _, r := range []raygo.Ref[string]{r1, r2} {
		missing, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if missing != "[0]" {
			t.Fatalf("missing ranks %q, want [0]", missing)
		}
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := collectives.Join(ctx, "x", 0, 1); !errors.Is(err, raygo.ErrNotInitialized) {
		t.Fatalf("join without a cluster: %v", err)
	}
	if _, err := collectives.Join(ctx, "a/b", 0, 1); err == nil || !strings.Contains(err.Error(), "without '/'") {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := collectives.Join(ctx, "x", 2, 2); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("bad rank: %v", err)
	}
	if _, err := collectives.Join(ctx, "x", 0, 1, collectives.WithBackend("carrier-pigeon")); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("unknown backend: %v", err)
	}
	ctx = initLocal(t)
	g, err := collectives.Join(ctx, "solo", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy(ctx)
	if _, err := collectives.Join(ctx, "solo", 0, 1); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second join as the same rank: %v", err)
	}
	a := []float32{1, 2, 3}
	if err := collectives.Allreduce(ctx, g, a, make([]float32, 2), collectives.Sum); err == nil {
		t.Fatal("allreduce into a short buffer succeeded")
	}
	if err := collectives.Allreduce(ctx, g, a[:2], a[1:], collectives.Sum); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("overlapping buffers: %v", err)
	}
	if err := collectives.Broadcast(ctx, g, a, 1); err == nil || !strings.Contains(err.Error(), "root 1") {
		t.Fatalf("bad root: %v", err)
	}
	if err := collectives.Send(ctx, g, a, 0); err == nil {
		t.Fatal("send to self succeeded")
	}
	if err := collectives.AllreduceInPlace(ctx, g, a, collectives.Op(99)); err == nil {
		t.Fatal("unknown op accepted")
	}
	if err := collectives.AllreduceInPlace(ctx, g, a, collectives.Avg); err != nil || a[2] != 3 {
		t.Fatalf("avg over one rank: %v %v", a, err)
	}
	if _, err := collectives.Open(ctx, "solo"); err == nil {
		t.Fatal("open outside an actor succeeded")
	}
}

func bytesOf[T collectives.Elem](s []T) []byte { return collectives.BytesOf(s) }

func sizeOf[T collectives.Elem](T) int { return collectives.DTypeOf[T]().Size() }

// bundleRank opens a group declared over a placement group, from a task
// placed in one of its bundles, and returns an allreduce's result.
var bundleRank = raygo.Func1("collectives_test.bundleRank", func(ctx context.Context, name string) ([]float64, error) {
	g, err := collectives.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer g.Destroy(ctx)
	v := []float64{float64(g.Rank()), 1}
	if err := collectives.AllreduceInPlace(ctx, g, v, collectives.Sum); err != nil {
		return nil, err
	}
	return v, nil
})

func TestPlacementGroupRanks(t *testing.T) {
	ctx := initLocal(t, raygo.NumCPUs(4))
	pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 1}, {"CPU": 1}, {"CPU": 1}}, raygo.Pack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := collectives.DeclarePlacementGroup(ctx, "bundles", pg); err != nil {
		t.Fatal(err)
	}
	refs := make([]raygo.Ref[[]float64], 3)
	for i := range refs {
		refs[i] = bundleRank.With(raygo.InPlacementGroup(pg, i), raygo.Dedicated()).Remote(raygo.Val("bundles"))
	}
	out, err := raygo.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v[0] != 0+1+2 || v[1] != 3 {
			t.Fatalf("bundle %d: allreduce gave %v, want [3 3]", i, v)
		}
	}
	// A task outside the group's bundles cannot open it.
	if err := collectives.DeclarePlacementGroup(ctx, "bundles2", pg); err != nil {
		t.Fatal(err)
	}
	_, err = bundleRank.Remote(raygo.Val("bundles2")).Get(ctx)
	if err == nil || !strings.Contains(err.Error(), "not placed in a bundle") {
		t.Fatalf("open from outside the placement group: %v", err)
	}
	collectives.Remove(ctx, "bundles2")
}
