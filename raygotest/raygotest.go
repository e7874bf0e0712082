// Package raygotest starts multi-node raygo clusters inside a test process.
//
// Each node is a real node agent with its own loopback address
// (127.0.0.1, 127.0.0.2, ...), object store and worker processes; only the
// agents share the test's process. The test process then joins the
// cluster as a driver with raygo.Init(raygo.Address(c.Addr())).
//
//	func TestMain(m *testing.M) {
//		if raygo.IsWorker() {
//			raygo.Init(context.Background()) // serves tasks; never returns
//		}
//		os.Exit(m.Run())
//	}
//
//	func TestSpread(t *testing.T) {
//		c := raygotest.Start(t, 3, raygotest.Options{CPUs: 2})
//		raygo.Init(ctx, raygo.Address(c.Addr()))
//		defer raygo.Shutdown(ctx)
//		...
//		c.Kill(2) // node 2 dies as if its machine went away
//	}
package raygotest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// Options shape the nodes of a test cluster.
type Options struct {
	CPUs       float64            // per node; default 2
	GPUs       int                // per node (fake device IDs 0..n-1)
	Custom     map[string]float64 // extra resources on every node
	StoreLimit int64              // per node; default 256 MiB
	Workers    int                // shared worker processes per job per node
	Logf       func(string, ...any)
}

// Cluster is a running test cluster.
type Cluster struct {
	Head   *runtime.Head
	Nodes  []*runtime.Agent
	Secret []byte
	dir    string
	mu     sync.Mutex
	dead   map[int]bool
}

// Start starts a head and n node agents; t.Cleanup stops them.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	c, err := StartCluster(n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartCluster is Start without a testing.TB, for benchmarks and tools.
func StartCluster(n int, opts Options) (*Cluster, error) {
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	if opts.StoreLimit == 0 {
		opts.StoreLimit = 256 << 20
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	secret, err := runtime.NewSecret()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "raygotest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Secret: secret, dir: dir, dead: map[int]bool{}}
	c.Head, err = runtime.NewHead("127.0.0.1:0", secret, runtime.NewClusterID(), opts.Logf)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if _, err := runtime.WriteSecret(c.Head.Addr(), secret); err != nil {
		c.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i <= n; i++ {
		res := wire.Resources{"CPU": opts.CPUs, "memory": 4 << 30}
		var gpus []string
		for g := 0; g < opts.GPUs; g++ {
			gpus = append(gpus, fmt.Sprint(g))
		}
		if opts.GPUs > 0 {
			res["GPU"] = float64(opts.GPUs)
		}
		for k, v := range opts.Custom {
			res[k] = v
		}
		a, err := runtime.StartAgent(ctx, runtime.AgentConfig{
			HeadAddr:   c.Head.Addr(),
			Secret:     secret,
			ListenAddr: fmt.Sprintf("127.0.0.%d:0", i),
			StateDir:   filepath.Join(dir, fmt.Sprintf("node%d", i)),
			Resources:  res,
			GPUs:       gpus,
			StoreLimit: opts.StoreLimit,
			Workers:    opts.Workers,
			Labels:     map[string]string{"index": fmt.Sprint(i)},
			Logf:       opts.Logf,
		})
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("start node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, a)
	}
	return c, nil
}

// Addr is the head's address, for raygo.Address.
func (c *Cluster) Addr() string { return c.Head.Addr() }

// Kill makes node i (1-based) die abruptly.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	c.dead[i] = true
	c.mu.Unlock()
	c.Nodes[i-1].Kill()
}

// KillHead makes the head die abruptly.
func (c *Cluster) KillHead() { c.Head.Kill() }

// Stop stops every node and the head, and removes all their files.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, a := range c.Nodes {
		wg.Add(1)
		go func(a *runtime.Agent) {
			defer wg.Done()
			a.Stop(2 * time.Second)
		}(a)
	}
	wg.Wait()
	if c.Head != nil {
		runtime.CleanupSecret(c.Head.Addr())
		c.Head.Stop("test cluster stopped")
	}
	os.RemoveAll(c.dir)
}
