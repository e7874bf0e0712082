package runtime

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime/wire"
)

// AgentConfig configures a node agent.
type AgentConfig struct {
	HeadAddr   string            // the head's host:port
	Secret     []byte            // the cluster secret
	ListenAddr string            // host:port for other agents and drivers; default 127.0.0.1:0
	StateDir   string            // per-node state (the workers' socket); created 0700, removed at Stop
	Resources  wire.Resources    // "CPU", "GPU", "memory" and custom
	GPUs       []string          // device IDs handed out through CUDA_VISIBLE_DEVICES; len must equal GPU count
	Labels     map[string]string // node labels
	StoreDir   string            // shared-memory directory; default under /dev/shm
	StoreLimit int64             // bytes; default 30% of memory
	SpillDir   string            // where objects go when the store is full; default $TMPDIR/raygo-spill-<cluster>-<node>
	SpillLimit int64             // bytes of spill files; default 90% of the free disk there; < 0: never spill
	InlineMax  int               // objects up to this size travel inline; default 100 KiB
	Workers    int               // shared worker processes per job; default min(CPUs, 4)
	Logf       func(string, ...any)
}

// Validate fills defaults and checks the configuration.
func (c *AgentConfig) Validate() error {
	if c.HeadAddr == "" {
		return fmt.Errorf("agent: no head address")
	}
	if len(c.Secret) == 0 {
		return fmt.Errorf("agent: no cluster secret")
	}
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
	}
	if c.StateDir == "" {
		return fmt.Errorf("agent: no state directory")
	}
	if c.Resources == nil {
		c.Resources = wire.Resources{}
	}
	if c.Resources["CPU"] <= 0 {
		return fmt.Errorf("agent: node has no CPUs (resources %v)", c.Resources)
	}
	if int(c.Resources["GPU"]) != len(c.GPUs) {
		return fmt.Errorf("agent: %v GPUs in resources but %d device IDs", c.Resources["GPU"], len(c.GPUs))
	}
	if c.StoreLimit <= 0 {
		m := c.Resources["memory"]
		if m <= 0 {
			m = 4 << 30
		}
		c.StoreLimit = int64(m * 0.3)
	}
	if c.InlineMax <= 0 {
		c.InlineMax = 100 << 10
	}
	if c.Workers <= 0 {
		c.Workers = int(c.Resources["CPU"])
		if c.Workers > 4 {
			c.Workers = 4
		}
		if c.Workers < 1 {
			c.Workers = 1
		}
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// Agent is a node agent: it owns the node's object store and worker
// processes, schedules the tasks submitted on its node, runs tasks sent by
// other agents, and serves objects to other nodes.
//
// Concurrency: one goroutine reads each connection and handles its messages
// under a.mu, which guards all agent state. Handlers never block while
// holding a.mu: sends only queue (wire.Conn), and anything slow (pulls,
// dials, head requests, process starts) runs in its own goroutine and
// re-takes a.mu to apply its result.
type Agent struct {
	cfg       AgentConfig
	id        wire.NodeID
	clusterID string
	head      *wire.Conn
	headCalls calls
	tcpLn     net.Listener
	unixLn    net.Listener
	sockPath  string
	store     *objstore.Store

	spillMu    sync.Mutex // serializes spilling; taken before mu
	spillDir   string
	spillLimit int64
	spillMade  bool // spillDir exists (guarded by spillMu)

	mu              sync.Mutex
	view            map[wire.NodeID]wire.NodeInfo
	othersAlive     int // live nodes in view other than this one
	jobs            map[uint64]*job
	procs           map[wire.ProcID]*proc
	nextProc        wire.ProcID
	peers           map[wire.NodeID]*peer
	objs            idMap[*obj]
	owned           taskMap[*ownedTask]
	running         taskMap[*execTask]
	queues          map[string]*taskQueue
	qorder          []string
	avail           wire.Resources
	freeGPUs        []string
	bundles         map[bundleKey]*bundle
	actors          map[wire.ActorID]*localActor
	routes          map[wire.ActorID]*actorRoute
	calls           map[callKey]*callQueue
	groups          map[uint64]*groupRoute
	remote          map[wire.ObjectID]int32 // refs held on this node to objects owned elsewhere
	pins            map[wire.ObjectID]int32 // local readers of an object's extent: never spilled while > 0
	spillUsed       int64                   // bytes of objects in spill files
	useSeq          uint64                  // for least-recently-used order
	spread          int
	fnMicros        map[string]float64           // recent run time of each function, for lease sizes
	names           map[string]string            // function and method names (internLocked)
	objMsg          wire.Object                  // reused to send results to their submitters
	execMsg         wire.Exec                    // reused to send tasks to connected workers
	ownActors       map[wire.ActorID]*ownedActor // actors created on this node
	lineage         map[wire.TaskID]*lineage     // how to rebuild stored results owned here
	lineageOrder    []lineageRef
	lineageBytes    int
	lineageSeq      uint64
	reconstructions uint64 // tasks run again to rebuild lost objects
	nextLease       uint64
	loadGen         uint64 // bumped on every change worth reporting
	stopped         bool
	why             string // why it stopped
	done            chan struct{}
	stopOnce        sync.Once
	workerWG        sync.WaitGroup
}

// StartAgent joins the head and starts serving.
func StartAgent(ctx context.Context, cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state dir: %w", err)
	}
	keepHeapFloor()
	a := &Agent{
		cfg: cfg, view: map[wire.NodeID]wire.NodeInfo{}, jobs: map[uint64]*job{},
		procs: map[wire.ProcID]*proc{}, peers: map[wire.NodeID]*peer{},
		queues: map[string]*taskQueue{}, avail: copyRes(cfg.Resources), freeGPUs: append([]string(nil), cfg.GPUs...),
		bundles: map[bundleKey]*bundle{}, actors: map[wire.ActorID]*localActor{}, routes: map[wire.ActorID]*actorRoute{},
		calls: map[callKey]*callQueue{}, fnMicros: map[string]float64{}, names: map[string]string{}, ownActors: map[wire.ActorID]*ownedActor{}, lineage: map[wire.TaskID]*lineage{}, groups: map[uint64]*groupRoute{}, remote: map[wire.ObjectID]int32{},
		done: make(chan struct{}),
	}
	var err error
	if a.tcpLn, err = listen(cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.sockPath = filepath.Join(cfg.StateDir, "agent.sock")
	os.Remove(a.sockPath)
	if a.unixLn, err = listen("unix:" + a.sockPath); err != nil {
		a.tcpLn.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	fail := func(err error) (*Agent, error) {
		a.tcpLn.Close()
		a.unixLn.Close()
		os.Remove(a.sockPath)
		return nil, err
	}
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	labels["driver-socket"] = a.SocketAddr()
	host, _ := os.Hostname()
	head, err := dial(ctx, cfg.HeadAddr, cfg.Secret, wire.RoleNode)
	if err != nil {
		return fail(fmt.Errorf("agent: join head: %w", err))
	}
	head.Send(&wire.NodeHello{Addr: a.tcpLn.Addr().String(), Hostname: host, Pid: int64(os.Getpid()),
		Resources: cfg.Resources, Labels: labels, Version: Version})
	m, err := head.Recv()
	if err != nil {
		head.Abort()
		return fail(fmt.Errorf("agent: join head %s: %w", cfg.HeadAddr, err))
	}
	w, ok := m.(*wire.Welcome)
	if !ok || w.Err != "" {
		head.Abort()
		if ok {
			return fail(fmt.Errorf("agent: head %s refused this node: %s", cfg.HeadAddr, w.Err))
		}
		return fail(fmt.Errorf("agent: head %s sent %s instead of welcome", cfg.HeadAddr, m.Type()))
	}
	a.id, a.clusterID, a.head = w.Node, w.ClusterID, head

	storeDir := cfg.StoreDir
	if storeDir == "" {
		storeDir = objstore.DefaultDir(a.clusterID, fmt.Sprint(a.id))
		// Stores of agents that were killed (SIGKILL at a job's end, OOM)
		// are removed by the next agent on the machine.
		SweepStaleStores(filepath.Dir(storeDir))
	}
	if a.store, err = objstore.Open(objstore.Config{Dir: storeDir, Limit: cfg.StoreLimit}); err != nil {
		head.Abort()
		return fail(fmt.Errorf("agent: node %d: %w", a.id, err))
	}
	os.WriteFile(filepath.Join(storeDir, ownerFile), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600)
	a.spillInit()
	go serve(a.tcpLn, cfg.Secret, a.logf, a.handle)
	go serve(a.unixLn, cfg.Secret, a.logf, a.handle)
	go a.headLoop()
	go a.reportLoop()
	return a, nil
}

func (a *Agent) logf(format string, args ...any) {
	a.cfg.Logf("node %d: "+format, append([]any{a.id}, args...)...)
}

func (a *Agent) liveActorsLocked() int {
	n := 0
	for _, act := range a.actors {
		if act.state != actorDead {
			n++
		}
	}
	return n
}

// Reconstructions counts tasks this node ran again to rebuild objects lost
// with a node.
func (a *Agent) Reconstructions() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reconstructions
}

// ClusterID names the cluster the agent belongs to.
func (a *Agent) ClusterID() string { return a.clusterID }

// ID is the node's ID in the cluster.
func (a *Agent) ID() wire.NodeID { return a.id }

// Addr is the agent's TCP address.
func (a *Agent) Addr() string { return a.tcpLn.Addr().String() }

// SocketAddr is the agent's Unix socket ("unix:/path") for local processes.
func (a *Agent) SocketAddr() string { return "unix:" + a.sockPath }

// StoreDir is the node's shared-memory directory.
func (a *Agent) StoreDir() string { return a.store.Dir() }

// Kill stops the agent abruptly, as if its machine died: connections are
// dropped without goodbyes and worker processes are killed. For tests.
func (a *Agent) Kill() {
	a.setWhy("killed")
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.stopped = true
		var conns []*wire.Conn
		for _, p := range a.procs {
			conns = append(conns, p.conn)
		}
		for _, p := range a.peers {
			if p.conn != nil {
				conns = append(conns, p.conn)
			}
		}
		var workers []*workerProc
		for _, j := range a.jobs {
			workers = append(workers, j.workers...)
		}
		a.mu.Unlock()
		a.tcpLn.Close()
		a.unixLn.Close()
		a.head.Abort()
		for _, c := range conns {
			c.Abort()
		}
		for _, w := range workers {
			w.kill()
		}
		a.waitWorkers(nil, 5*time.Second)
		a.headCalls.fail(errors.New("agent killed"))
		a.store.Close()
		a.spillRemove()
		os.Remove(a.sockPath)
		os.Remove(a.cfg.StateDir)
		close(a.done)
	})
}

// StopReason says why the agent stopped ("" while it runs): "shutdown" when
// the head asked, "lost head: ..." when the head went away, "stopped" when
// Stop was called, "killed" for Kill.
func (a *Agent) StopReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.why
}

func (a *Agent) setWhy(why string) {
	a.mu.Lock()
	if a.why == "" {
		a.why = why
	}
	a.mu.Unlock()
}

// Done is closed when the agent has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Stop shuts the agent down: workers are asked to exit and killed after
// grace, then the listeners, the socket, the object store and the state
// directory are removed.
func (a *Agent) Stop(grace time.Duration) {
	a.setWhy("stopped")
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.stopped = true
		var conns []*wire.Conn
		var workers []*workerProc
		for _, p := range a.procs {
			conns = append(conns, p.conn)
		}
		for _, j := range a.jobs {
			workers = append(workers, j.workers...)
		}
		for _, p := range a.peers {
			if p.conn != nil {
				conns = append(conns, p.conn)
			}
		}
		a.mu.Unlock()
		a.tcpLn.Close()
		a.unixLn.Close()
		for _, c := range conns {
			c.Send(&wire.Shutdown{Reason: "node stopping"})
			c.Close()
		}
		a.waitWorkers(workers, grace)
		a.head.Close()
		a.headCalls.fail(errors.New("agent stopped"))
		a.store.Close()
		a.spillRemove()
		os.Remove(a.sockPath)
		os.Remove(a.cfg.StateDir)
		close(a.done)
	})
}

func (a *Agent) waitWorkers(ws []*workerProc, grace time.Duration) {
	done := make(chan struct{})
	go func() { a.workerWG.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	for _, w := range ws {
		w.kill()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		a.logf("workers did not exit after kill")
	}
}

func (a *Agent) headLoop() {
	for {
		m, err := a.head.Recv()
		if err != nil {
			a.mu.Lock()
			stopped := a.stopped
			a.mu.Unlock()
			if !stopped {
				a.logf("lost the head: %v; stopping", err)
				a.setWhy(fmt.Sprintf("lost head: %v", err))
				go a.Stop(2 * time.Second)
			}
			return
		}
		switch m := m.(type) {
		case *wire.View:
			a.applyView(m)
		case *wire.Req:
			// Bundle reservations and releases: quick, and served in the
			// order sent, so a release that follows a reservation finds it.
			body, err := a.serveHeadOp(m.Op, m.Body)
			reply(a.head, m.ID, body, err)
		case *wire.Rep:
			a.headCalls.deliver(m)
		case *wire.Shutdown:
			a.logf("head asked to stop: %s", m.Reason)
			a.setWhy("shutdown")
			go a.Stop(2 * time.Second)
			return
		}
	}
}

// reportLoop tells the head what is free here whenever it changed.
func (a *Agent) reportLoop() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var sent uint64
	var last time.Time
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		a.mu.Lock()
		// A report when something changed, and at least every
		// HeartbeatInterval: the head declares a silent node dead.
		if a.loadGen == sent && time.Since(last) < HeartbeatInterval {
			a.mu.Unlock()
			continue
		}
		sent = a.loadGen
		last = time.Now()
		l := &wire.Load{Available: copyRes(a.avail), Tasks: uint64(a.running.Len() + a.owned.Len()),
			Actors: uint64(a.liveActorsLocked()), Objects: uint64(a.objs.Len()), StoreUsed: uint64(a.store.Used())}
		a.mu.Unlock()
		a.head.Send(l)
	}
}

func (a *Agent) applyView(v *wire.View) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[wire.NodeID]bool{}
	for _, n := range v.Nodes {
		seen[n.ID] = true
		old, had := a.view[n.ID]
		a.view[n.ID] = n
		if had && old.Alive && !n.Alive {
			a.nodeDiedLocked(n.ID)
		}
	}
	a.othersAlive = 0
	for _, n := range a.view {
		if n.Alive && n.ID != a.id {
			a.othersAlive++
		}
	}
	live := map[uint64]bool{}
	for i := range v.Jobs {
		j := v.Jobs[i]
		live[j.ID] = true
		if cur := a.jobs[j.ID]; cur == nil {
			a.jobs[j.ID] = &job{info: j, known: true}
		} else if !cur.known {
			cur.info, cur.known = j, true
			pend := cur.pending
			cur.pending = nil
			for _, t := range pend {
				a.admitLocked(t)
			}
		}
	}
	for id, j := range a.jobs {
		if j.known && !live[id] && !j.local {
			a.endJobLocked(id)
		}
	}
	a.dispatchLocked()
}

func (a *Agent) serveHeadOp(op wire.Op, body []byte) ([]byte, error) {
	switch op {
	case wire.OpPGReserve:
		var k bundleKey
		var r wire.Resources
		if err := decodeBody(body, func(d *wire.Dec) { k.group = d.Uvarint(); k.index = int(d.Uvarint()); r = d.Resources() }); err != nil {
			return nil, err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.bundles[k]; ok {
			return nil, nil
		}
		if !fits(r, a.avail) {
			return nil, fmt.Errorf("node %d: %w: bundle %v does not fit in %v", a.id, ErrUnavailable, r, a.avail)
		}
		sub(a.avail, r)
		b := &bundle{total: r, avail: copyRes(r)}
		if n := int(r["GPU"]); n > 0 && n <= len(a.freeGPUs) {
			b.gpus = append([]string(nil), a.freeGPUs[:n]...)
			a.freeGPUs = a.freeGPUs[n:]
		}
		a.bundles[k] = b
		a.loadGen++
		return nil, nil
	case wire.OpPGRelease:
		var k bundleKey
		if err := decodeBody(body, func(d *wire.Dec) { k.group = d.Uvarint(); k.index = int(d.Uvarint()) }); err != nil {
			return nil, err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		b := a.bundles[k]
		if b == nil {
			return nil, nil
		}
		delete(a.bundles, k)
		b.removed = true
		add(a.avail, b.total)
		a.freeGPUs = append(a.freeGPUs, b.gpus...)
		a.loadGen++
		a.dispatchLocked()
		return nil, nil
	}
	return nil, fmt.Errorf("%w: agent does not serve op %d", ErrInvalid, op)
}

// handle serves one authenticated connection: a local driver or worker, or
// another node's agent.
func (a *Agent) handle(conn *wire.Conn, role wire.Role) {
	m, err := conn.Recv()
	if err != nil {
		conn.Abort()
		return
	}
	hello, ok := m.(*wire.Hello)
	if !ok {
		conn.Send(&wire.Welcome{Err: fmt.Sprintf("expected hello, got %s", m.Type())})
		conn.Close()
		return
	}
	if hello.Role != role {
		conn.Send(&wire.Welcome{Err: fmt.Sprintf("handshake said %s, hello says %s", role, hello.Role)})
		conn.Close()
		return
	}
	if role == wire.RoleNode {
		a.servePeer(conn, wire.NodeID(hello.Worker))
		return
	}
	p, err := a.admitProc(conn, hello)
	if err != nil {
		a.logf("refused %s (pid %d): %v", hello.Role, hello.Pid, err)
		conn.Send(&wire.Welcome{Err: err.Error()})
		conn.Close()
		return
	}
	a.serveProc(p)
}

func (a *Agent) welcome(p *proc) *wire.Welcome {
	return &wire.Welcome{Node: a.id, Proc: p.id, ClusterID: a.clusterID, HeadAddr: a.cfg.HeadAddr,
		StoreDir: a.store.ArenaPath(), ArenaSize: uint64(a.store.Limit()), InlineMax: uint64(a.cfg.InlineMax),
		Config: map[string]string{"job": fmt.Sprint(p.job)}}
}

// secretHex is how the secret reaches workers: in their environment only.
func (a *Agent) secretHex() string { return hex.EncodeToString(a.cfg.Secret) }

// DebugState describes what the agent is waiting on: for diagnosing a
// stuck job (tests print it when a deadline passes).
func (a *Agent) DebugState() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "node %d: avail %v\n", a.id, a.avail)
	for id, ot := range a.owned.All() {
		fmt.Fprintf(&b, "  owned %s %s attempt %d deps %d node %d scheduled %v rebuild %v\n", id, displayName(&ot.spec), ot.attempt, ot.deps, ot.node, ot.scheduled, ot.rebuild)
	}
	for id, et := range a.running.All() {
		w := 0
		if et.worker != nil {
			w = int(et.worker.slot)
		}
		fmt.Fprintf(&b, "  running %s %s attempt %d waiting %d resolved %v acquired %v worker %d lease %v\n", id, displayName(et.spec), et.attempt, et.waiting, et.resolved, et.acquired, w, et.lease != nil)
	}
	for k, q := range a.queues {
		fmt.Fprintf(&b, "  queue %q: %d\n", k, len(q.tasks))
	}
	for id, o := range a.objs.All() {
		if o.state == objPending || o.pulling() {
			fmt.Fprintf(&b, "  obj %s owned %v state %d pulling %v waiters %d locs %v\n", id, o.owned, o.state, o.pulling(), o.numWaiters(), o.locs())
		}
	}
	return b.String()
}
