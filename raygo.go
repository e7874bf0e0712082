package raygo

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// InitOption configures Init.
type InitOption func(*initConfig)

type initConfig struct {
	address    string
	secretFile string
	resources  wire.Resources
	storeLimit int64
	spillLimit int64
	workers    int
	logf       func(string, ...any)
}

// Address joins the cluster whose head is at host:port instead of starting
// an embedded one. RAYGO_ADDRESS does the same.
func Address(hostport string) InitOption { return func(c *initConfig) { c.address = hostport } }

// SecretFile names the file holding the cluster secret when joining a
// cluster (default: the file `raygo start --head` wrote on this machine;
// RAYGO_SECRET_FILE also sets it).
func SecretFile(path string) InitOption { return func(c *initConfig) { c.secretFile = path } }

// NumCPUs sets the embedded cluster's CPU count instead of detecting it.
func NumCPUs(n float64) InitOption {
	return func(c *initConfig) { c.res()["CPU"] = n }
}

// NumGPUs sets the embedded cluster's GPU count instead of detecting it.
func NumGPUs(n int) InitOption {
	return func(c *initConfig) { c.res()["GPU"] = float64(n) }
}

// NodeResource adds a custom resource to the embedded cluster's node.
func NodeResource(name string, amount float64) InitOption {
	return func(c *initConfig) { c.res()[name] = amount }
}

// ObjectStoreMemory sets the embedded node's object store limit in bytes
// (default 30% of memory).
func ObjectStoreMemory(bytes int64) InitOption { return func(c *initConfig) { c.storeLimit = bytes } }

// ObjectSpillLimit sets how many bytes of objects the embedded node may
// spill to disk when its object store is full (default: 90% of the free
// space in $TMPDIR; a negative value turns spilling off).
func ObjectSpillLimit(bytes int64) InitOption { return func(c *initConfig) { c.spillLimit = bytes } }

// WorkersPerNode sets how many shared worker processes a node runs for
// this program (default: CPUs, at most 4).
func WorkersPerNode(n int) InitOption { return func(c *initConfig) { c.workers = n } }

// Logger receives the runtime's log lines (default: none).
func Logger(f func(format string, args ...any)) InitOption { return func(c *initConfig) { c.logf = f } }

func (c *initConfig) res() wire.Resources {
	if c.resources == nil {
		c.resources = wire.Resources{}
	}
	return c.resources
}

var state struct {
	sync.Mutex
	c     *runtime.Client
	local *runtime.Local
}

func client() (*runtime.Client, error) {
	if c := runtime.WorkerClient(); c != nil {
		return c, nil
	}
	state.Lock()
	defer state.Unlock()
	if state.c == nil {
		return nil, ErrNotInitialized
	}
	return state.c, nil
}

// IsWorker reports whether this process is a raygo worker. Init never
// returns in a worker, so code after Init runs only in the driver; code
// before it runs in both.
func IsWorker() bool { return os.Getenv(runtime.EnvWorker) == "1" }

// Init connects this program to a cluster. With no address (neither the
// Address option nor RAYGO_ADDRESS), it starts an embedded cluster on this
// machine: a head and a node agent in this process, with worker processes
// that run this same binary. Call it first thing in main, after flag
// parsing: in worker processes it serves tasks and never returns.
func Init(ctx context.Context, opts ...InitOption) error {
	cfg := initConfig{address: os.Getenv(runtime.EnvAddress), secretFile: os.Getenv("RAYGO_SECRET_FILE")}
	for _, o := range opts {
		o(&cfg)
	}
	registryLines, registryHash := registryList()
	path, hash, err := binaryIdentity()
	if err != nil {
		return fmt.Errorf("raygo: identify this binary: %w", err)
	}
	prog := runtime.Program{BinaryPath: path, BinaryHash: hash, RegistryHash: registryHash, Registry: registryLines, Args: os.Args[1:]}
	if IsWorker() {
		err := runtime.ServeWorker(ctx, handler{}, prog)
		if err != nil {
			fmt.Fprintf(os.Stderr, "raygo worker (pid %d): %v\n", os.Getpid(), err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	state.Lock()
	defer state.Unlock()
	if state.c != nil {
		return errors.New("raygo: Init called twice")
	}
	watchSignals()
	if cfg.address == "" {
		l, err := runtime.StartLocal(ctx, runtime.LocalConfig{Resources: cfg.resources, StoreLimit: cfg.storeLimit, SpillLimit: cfg.spillLimit,
			Workers: cfg.workers, Logf: cfg.logf})
		if err != nil {
			return fmt.Errorf("raygo: start embedded cluster: %w", err)
		}
		c, err := runtime.Connect(ctx, l.Agent.SocketAddr(), l.Secret, wire.RoleDriver, prog, 0, 0)
		if err != nil {
			l.Stop()
			return fmt.Errorf("raygo: %w", err)
		}
		state.c, state.local = c, l
		return nil
	}
	secret, err := runtime.ReadSecret(cfg.address, cfg.secretFile)
	if err != nil {
		return fmt.Errorf("raygo: join %s: %w", cfg.address, err)
	}
	// raygo-launch names the agent of the driver's own node; otherwise
	// find one on this host.
	agentAddr := os.Getenv("RAYGO_DRIVER_AGENT")
	if agentAddr == "" {
		if agentAddr, err = runtime.LocalAgentAddr(ctx, cfg.address, secret); err != nil {
			return fmt.Errorf("raygo: join %s: %w", cfg.address, err)
		}
	}
	c, err := runtime.Connect(ctx, agentAddr, secret, wire.RoleDriver, prog, 0, 0)
	if err != nil {
		return fmt.Errorf("raygo: join %s: %w", cfg.address, err)
	}
	state.c = c
	return nil
}

// Shutdown disconnects from the cluster; an embedded cluster is stopped,
// its worker processes, sockets, shared memory and temporary files
// removed. Refs from before Shutdown no longer work.
func Shutdown(ctx context.Context) error {
	state.Lock()
	c, l := state.c, state.local
	state.c, state.local = nil, nil
	state.Unlock()
	if c == nil {
		return nil
	}
	endJob()
	err := c.Close()
	if l != nil {
		done := make(chan struct{})
		go func() { l.Stop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil && !strings.Contains(err.Error(), "closed") {
		return err
	}
	return nil
}

// ClusterID names the cluster this process is connected to ("" before Init).
func ClusterID() string {
	c, err := client()
	if err != nil {
		return ""
	}
	return c.ClusterID()
}

// Context returns information about where the calling code runs.
type Context struct {
	Node   NodeID
	Pid    int
	Task   string // the running task's ID; "" in the driver
	Actor  string // the actor whose method or constructor runs; "" otherwise
	Worker bool
	// PlacementGroup and Bundle say which placement group bundle the task
	// (or, for an actor call, its actor) was placed in: 0 and -1 when none,
	// and Bundle is -1 when placed in any bundle of the group.
	PlacementGroup uint64
	Bundle         int
}

// CurrentContext says which node and process run the caller, and which
// task when called with a task's context.
func CurrentContext(ctx context.Context) Context {
	out := Context{Pid: os.Getpid(), Worker: IsWorker(), Bundle: -1}
	if c, err := client(); err == nil {
		out.Node = NodeID(c.Node())
	}
	if ti, ok := runtime.TaskInfoFromContext(ctx); ok {
		out.Task = ti.ID.String()
		if !ti.Actor.IsZero() {
			out.Actor = ti.Actor.String()
		}
		out.PlacementGroup, out.Bundle = ti.Group, int(ti.Bundle)
	}
	return out
}

// Nodes lists the cluster's nodes.
func Nodes(ctx context.Context) ([]NodeInfo, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	body, err := c.Request(ctx, wire.OpStatus, nil)
	if err != nil {
		return nil, convert(err)
	}
	st, err := runtime.DecodeStatus(body)
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		out = append(out, NodeInfo{ID: NodeID(n.ID), Addr: n.Addr, Hostname: n.Hostname, Alive: n.Alive,
			Total: n.Total, Available: n.Available, Labels: n.Labels,
			Tasks: int(n.Tasks), Actors: int(n.Actors), Objects: int(n.Objects), StoreUsed: int64(n.StoreUsed)})
	}
	return out, nil
}

// NodeInfo describes one node of the cluster.
type NodeInfo struct {
	ID        NodeID
	Addr      string
	Hostname  string
	Alive     bool
	Total     map[string]float64
	Available map[string]float64
	Labels    map[string]string
	Tasks     int // tasks queued or running there
	Actors    int
	Objects   int
	StoreUsed int64
}

func init() {
	// Worker processes log with their pid, so interleaved output stays readable.
	if IsWorker() {
		log.SetPrefix(fmt.Sprintf("[worker %d] ", os.Getpid()))
	}
}
