package runtime

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

// Head is the cluster's directory: which nodes exist and what they have,
// the jobs running, named actors and where actors live, placement groups,
// and a small key-value store. It is never on the path of a task or an
// object: node agents schedule and move data among themselves.
type Head struct {
	secret    []byte
	clusterID string
	// DeadAfter is how long a silent node lives; set before nodes join.
	// Zero turns silence detection off (the embedded cluster, whose only
	// node is the head's own process).
	DeadAfter time.Duration
	ln        net.Listener
	logf      func(string, ...any)

	// viewMu orders broadcasts: a view is taken and queued on every node's
	// connection under it, so no node sees an older view after a newer one.
	// Lock order: viewMu, then mu.
	viewMu sync.Mutex

	mu        sync.Mutex // guards everything below
	nodes     map[wire.NodeID]*headNode
	nextNode  wire.NodeID
	jobs      map[uint64]wire.Job
	kv        map[string][]byte
	kvWait    map[string][]chan []byte
	actors    map[wire.ActorID]*headActor
	names     map[string]wire.ActorID // namespace + "\x00" + name
	groups    map[uint64]*headGroup
	pgAwait   map[uint64][]chan struct{} // waits for groups whose creation has not come yet
	pgGone    map[uint64]string          // recently removed or refused groups: why
	pgGoneIDs []uint64                   // pgGone's keys, oldest first
	pgSeq     uint64                     // groups created, for placing them in that order
	placeNow  chan struct{}              // wakes tick to place pending groups
	viewDirty bool
	stopping  bool
	done      chan struct{}
	stopOnce  sync.Once
}

// How a node that stops answering is found out: agents report at least
// every HeartbeatInterval, and the head declares a node dead when nothing
// has come from it for Head.DeadAfter (default DefaultDeadAfter). Its
// connection is then closed, so a node that was only frozen (SIGSTOP, a
// stalled network) cannot come back half-alive: its agent stops when it
// notices.
const (
	HeartbeatInterval = 250 * time.Millisecond
	DefaultDeadAfter  = 2 * time.Second
)

type headNode struct {
	seen  time.Time // last message from the node
	info  wire.NodeInfo
	load  wire.Load
	conn  *wire.Conn
	calls calls
}

type headActor struct {
	node    wire.NodeID
	dead    string // why, once dead
	name    string // namespace + "\x00" + name, if named
	class   string
	waiters []chan struct{}
}

type headGroup struct {
	id       uint64
	seq      uint64 // creation order
	job      uint64 // the driver program that made it; removed when it ends
	name     string
	strategy uint8
	bundles  []wire.Resources
	nodes    []wire.NodeID // per bundle, once placed
	ready    bool
	removed  bool
	placing  bool
	waiters  []chan struct{}
	creator  *wire.Conn // where the creation's request is answered, until it is
	req      uint64     // that request's ID
}

// NewHead starts a head listening on addr (host:port; port 0 picks one).
func NewHead(addr string, secret []byte, clusterID string, logf func(string, ...any)) (*Head, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	h := &Head{
		secret: secret, clusterID: clusterID, ln: ln, logf: logf,
		nodes: make(map[wire.NodeID]*headNode), jobs: make(map[uint64]wire.Job),
		kv: make(map[string][]byte), kvWait: make(map[string][]chan []byte),
		actors: make(map[wire.ActorID]*headActor), names: make(map[string]wire.ActorID),
		groups: make(map[uint64]*headGroup), pgAwait: map[uint64][]chan struct{}{}, pgGone: map[uint64]string{}, placeNow: make(chan struct{}, 1), done: make(chan struct{}),
	}
	h.DeadAfter = DefaultDeadAfter
	go serve(ln, secret, logf, h.handle)
	go h.tick()
	return h, nil
}

// Addr is where nodes, drivers and the CLI reach the head.
func (h *Head) Addr() string { return h.ln.Addr().String() }

// Nodes is the head's current view of the nodes.
func (h *Head) Nodes() []wire.NodeInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.viewLocked().Nodes
}

// ClusterID names the cluster.
func (h *Head) ClusterID() string { return h.clusterID }

// Done is closed once the head has stopped.
func (h *Head) Done() <-chan struct{} { return h.done }

// Kill stops the head abruptly, as if its process died: connections are
// dropped without a word. For tests of head failure.
func (h *Head) Kill() {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		h.stopping = true
		var conns []*wire.Conn
		for _, n := range h.nodes {
			if n.conn != nil {
				conns = append(conns, n.conn)
			}
		}
		h.mu.Unlock()
		h.ln.Close()
		for _, c := range conns {
			c.Abort()
		}
		close(h.done)
	})
}

// Stop tells every node to shut down and closes the head.
func (h *Head) Stop(reason string) {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		h.stopping = true
		conns := make([]*wire.Conn, 0, len(h.nodes))
		for _, n := range h.nodes {
			if n.conn != nil {
				conns = append(conns, n.conn)
			}
		}
		h.mu.Unlock()
		for _, c := range conns {
			c.Send(&wire.Shutdown{Reason: reason})
			c.Close()
		}
		h.ln.Close()
		close(h.done)
	})
}

func (h *Head) handle(conn *wire.Conn, role wire.Role) {
	defer conn.Close()
	if role != wire.RoleNode {
		// Drivers and the CLI only make requests.
		for {
			m, err := conn.Recv()
			if err != nil {
				return
			}
			if r, ok := m.(*wire.Req); ok {
				h.dispatch(conn, r, 0)
			}
		}
	}
	m, err := conn.Recv()
	if err != nil {
		return
	}
	hello, ok := m.(*wire.NodeHello)
	if !ok {
		conn.Send(&wire.Welcome{Err: fmt.Sprintf("expected node hello, got %s", m.Type())})
		return
	}
	if hello.Version != Version {
		msg := fmt.Sprintf("raygo version mismatch: node %s (%s) runs %s, the head runs %s", hello.Hostname, hello.Addr, hello.Version, Version)
		h.logf("refused a node: %s", msg)
		conn.Send(&wire.Welcome{Err: msg})
		return
	}
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		conn.Send(&wire.Welcome{Err: "cluster is shutting down"})
		return
	}
	h.nextNode++
	id := h.nextNode
	n := &headNode{conn: conn, seen: time.Now(), info: wire.NodeInfo{
		ID: id, Addr: hello.Addr, Hostname: hello.Hostname, Alive: true,
		Total: hello.Resources, Available: copyRes(hello.Resources), Labels: hello.Labels,
	}}
	// The welcome must be the node's first message: queue it before the
	// node is visible to broadcasts.
	conn.Send(&wire.Welcome{Node: id, ClusterID: h.clusterID, HeadAddr: h.Addr()})
	h.nodes[id] = n
	h.mu.Unlock()
	h.broadcastView()
	h.logf("node %d joined from %s (%s)", id, hello.Addr, hello.Hostname)
	for {
		m, err := conn.Recv()
		if err != nil {
			break
		}
		h.mu.Lock()
		n.seen = time.Now()
		h.mu.Unlock()
		switch m := m.(type) {
		case *wire.Load:
			h.mu.Lock()
			n.load = *m
			n.info.Available = m.Available
			h.viewDirty = true
			h.mu.Unlock()
		case *wire.Req:
			h.dispatch(conn, m, id)
		case *wire.Rep:
			n.calls.deliver(m)
		}
	}
	h.nodeGone(n)
}

func (h *Head) nodeGone(n *headNode) {
	n.calls.fail(fmt.Errorf("node %d disconnected", n.info.ID))
	h.mu.Lock()
	n.info.Alive = false
	n.info.Available = nil
	n.conn = nil
	stopping := h.stopping
	for id, a := range h.actors {
		if a.dead != "" {
			continue
		}
		owner := h.nodes[id.Node]
		switch {
		case id.Node == n.info.ID || owner == nil || !owner.info.Alive:
			// Its owner is gone: nobody will restart it.
			if a.node == n.info.ID || id.Node == n.info.ID {
				h.actorDeadLocked(id, a, fmt.Sprintf("node %d died", n.info.ID))
			}
		case a.node == n.info.ID:
			a.node = 0 // its owner restarts it or declares it dead
		}
	}
	h.mu.Unlock()
	if !stopping {
		h.logf("node %d left", n.info.ID)
		h.broadcastView()
	}
}

// tick sends the view when loads changed and retries pending placement
// groups, oldest first, every 50 ms and when a removal freed resources.
func (h *Head) tick() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		case <-h.placeNow:
		}
		h.mu.Lock()
		now := time.Now()
		if now.Sub(last) > 500*time.Millisecond {
			// The head itself did not run for a while (a stalled process,
			// a GC pause under memory pressure): silence meanwhile says
			// nothing about the nodes. Give them a new full period.
			for _, n := range h.nodes {
				n.seen = now
			}
		}
		last = now
		var silent []*wire.Conn
		for _, n := range h.nodes {
			if h.DeadAfter > 0 && n.info.Alive && n.conn != nil && time.Since(n.seen) > h.DeadAfter {
				h.logf("node %d declared dead: nothing from it for %v (limit %v)", n.info.ID, time.Since(n.seen).Round(time.Millisecond), h.DeadAfter)
				silent = append(silent, n.conn)
			}
		}
		h.mu.Unlock()
		for _, c := range silent {
			c.Abort() // its reader sees the error and calls nodeGone
		}
		h.mu.Lock()
		dirty := h.viewDirty
		h.viewDirty = false
		pending := h.pendingGroupsLocked()
		h.mu.Unlock()
		if dirty {
			h.broadcastView()
		}
		for _, g := range pending {
			h.placeGroup(g)
		}
	}
}

func (h *Head) viewLocked() *wire.View {
	v := &wire.View{}
	for _, n := range h.nodes {
		v.Nodes = append(v.Nodes, n.info)
	}
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].ID < v.Nodes[j].ID })
	for _, j := range h.jobs {
		v.Jobs = append(v.Jobs, j)
	}
	return v
}

func (h *Head) broadcastView() {
	h.viewMu.Lock()
	defer h.viewMu.Unlock()
	h.mu.Lock()
	v := h.viewLocked()
	var conns []*wire.Conn
	for _, n := range h.nodes {
		if n.conn != nil {
			conns = append(conns, n.conn)
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Send(v)
	}
}

// dispatch serves a request: a placement group's creation at once, on the
// connection's reader (it does not block, and the requests after it must
// find the group), anything else on its own goroutine.
func (h *Head) dispatch(conn *wire.Conn, r *wire.Req, from wire.NodeID) {
	if r.Op == wire.OpPGCreate {
		h.groupCreate(conn, r)
		return
	}
	go h.request(conn, r, from)
}

func (h *Head) request(conn *wire.Conn, r *wire.Req, from wire.NodeID) {
	body, err := h.serveOp(r.Op, r.Body, from)
	reply(conn, r.ID, body, err)
}

func (h *Head) serveOp(op wire.Op, body []byte, from wire.NodeID) ([]byte, error) {
	ctx := context.Background()
	switch op {
	case wire.OpKVPut:
		var key string
		var val []byte
		var overwrite bool
		if err := decodeBody(body, func(d *wire.Dec) { key = d.Str(); val = d.Bytes(); overwrite = d.Bool() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.kv[key]; ok && !overwrite {
			return nil, fmt.Errorf("key %q: %w", key, ErrExists)
		}
		val = append([]byte{}, val...)
		h.kv[key] = val
		for _, ch := range h.kvWait[key] {
			ch <- val
		}
		delete(h.kvWait, key)
		return nil, nil
	case wire.OpKVGet, wire.OpKVWait:
		var key string
		var timeout uint64
		if err := decodeBody(body, func(d *wire.Dec) { key = d.Str(); timeout = d.Uvarint() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		if v, ok := h.kv[key]; ok {
			h.mu.Unlock()
			return v, nil
		}
		if op == wire.OpKVGet {
			h.mu.Unlock()
			return nil, fmt.Errorf("key %q: %w", key, ErrNotFound)
		}
		ch := make(chan []byte, 1)
		h.kvWait[key] = append(h.kvWait[key], ch)
		h.mu.Unlock()
		t := time.NewTimer(time.Duration(timeout) * time.Millisecond)
		defer t.Stop()
		select {
		case v := <-ch:
			return v, nil
		case <-t.C:
			h.mu.Lock()
			ws := h.kvWait[key]
			for i, w := range ws {
				if w == ch {
					h.kvWait[key] = append(ws[:i:i], ws[i+1:]...)
					break
				}
			}
			h.mu.Unlock()
			select {
			case v := <-ch:
				return v, nil
			default:
			}
			return nil, fmt.Errorf("key %q did not appear within %v: %w", key, time.Duration(timeout)*time.Millisecond, ErrTimeout)
		case <-h.done:
			return nil, fmt.Errorf("head stopped: %w", ErrUnavailable)
		}
	case wire.OpKVList:
		var prefix string
		if err := decodeBody(body, func(d *wire.Dec) { prefix = d.Str() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		var keys []string
		for k := range h.kv {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		h.mu.Unlock()
		sort.Strings(keys)
		return encode(func(e *wire.Enc) { e.Strs(keys) }), nil
	case wire.OpKVDelete:
		var key string
		if err := decodeBody(body, func(d *wire.Dec) { key = d.Str() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		_, ok := h.kv[key]
		delete(h.kv, key)
		h.mu.Unlock()
		return encode(func(e *wire.Enc) { e.Bool(ok) }), nil
	case wire.OpJobRegister:
		var j wire.Job
		if err := decodeBody(body, func(d *wire.Dec) { d.Job(&j) }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.jobs[j.ID] = j
		h.mu.Unlock()
		h.broadcastView()
		return nil, nil
	case wire.OpJobEnd:
		var id uint64
		if err := decodeBody(body, func(d *wire.Dec) { id = d.Uvarint() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		delete(h.jobs, id)
		var orphans []uint64
		for gid, g := range h.groups {
			if g.job == id {
				orphans = append(orphans, gid)
			}
		}
		h.mu.Unlock()
		for _, gid := range orphans {
			h.groupRemove(gid)
		}
		h.broadcastView()
		return nil, nil
	case wire.OpActorPlace:
		return h.actorPlace(body)
	case wire.OpActorDead:
		var id wire.ActorID
		var why string
		if err := decodeBody(body, func(d *wire.Dec) { id = d.TaskID(); why = d.Str() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		a := h.actors[id]
		if a == nil {
			a = &headActor{}
			h.actors[id] = a
		}
		h.actorDeadLocked(id, a, why)
		h.mu.Unlock()
		return nil, nil
	case wire.OpActorMoving:
		var id wire.ActorID
		if err := decodeBody(body, func(d *wire.Dec) { id = d.TaskID() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		if a := h.actors[id]; a != nil && a.dead == "" {
			a.node = 0 // locate waits for the new incarnation's node
		}
		h.mu.Unlock()
		return nil, nil
	case wire.OpActorLookup:
		var ns, name string
		if err := decodeBody(body, func(d *wire.Dec) { ns = d.Str(); name = d.Str() }); err != nil {
			return nil, err
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		id, ok := h.names[ns+"\x00"+name]
		if !ok {
			return nil, fmt.Errorf("no actor named %q in namespace %q: %w", name, ns, ErrNotFound)
		}
		a := h.actors[id]
		return encode(func(e *wire.Enc) { e.TaskID(id); e.Str(a.class) }), nil
	case wire.OpActorLocate:
		var id wire.ActorID
		if err := decodeBody(body, func(d *wire.Dec) { id = d.TaskID() }); err != nil {
			return nil, err
		}
		return h.actorLocate(ctx, id)
	case wire.OpPGWait:
		return h.groupWait(body)
	case wire.OpPGRemove:
		var id uint64
		if err := decodeBody(body, func(d *wire.Dec) { id = d.Uvarint() }); err != nil {
			return nil, err
		}
		return nil, h.groupRemove(id)
	case wire.OpStatus:
		return h.status(), nil
	case wire.OpStop:
		go h.Stop("stopped by request")
		return nil, nil
	}
	return nil, fmt.Errorf("%w: head does not serve op %d", ErrInvalid, op)
}

func (h *Head) actorPlace(body []byte) ([]byte, error) {
	var id wire.ActorID
	var node wire.NodeID
	var ns, name, class string
	if err := decodeBody(body, func(d *wire.Dec) {
		id = d.TaskID()
		node = wire.NodeID(d.U32())
		ns = d.Str()
		name = d.Str()
		class = d.Str()
	}); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.actors[id]
	if a == nil {
		a = &headActor{}
		h.actors[id] = a
	}
	if class != "" {
		a.class = class
	}
	if name != "" && a.name == "" {
		key := ns + "\x00" + name
		if other, ok := h.names[key]; ok && other != id {
			return nil, fmt.Errorf("an actor named %q already exists in namespace %q (%s): %w", name, ns, other, ErrExists)
		}
		h.names[key] = id
		a.name = key
	}
	if node != 0 && a.dead == "" {
		a.node = node
		for _, w := range a.waiters {
			close(w)
		}
		a.waiters = nil
	}
	return nil, nil
}

func (h *Head) actorDeadLocked(id wire.ActorID, a *headActor, why string) {
	if a.dead != "" {
		return
	}
	a.dead = why
	if a.name != "" && h.names[a.name] == id {
		delete(h.names, a.name)
	}
	for _, w := range a.waiters {
		close(w)
	}
	a.waiters = nil
}

// actorLocate answers where an actor lives, waiting while it is being placed.
func (h *Head) actorLocate(ctx context.Context, id wire.ActorID) ([]byte, error) {
	for {
		h.mu.Lock()
		a := h.actors[id]
		if a == nil {
			a = &headActor{}
			h.actors[id] = a
		}
		if a.dead != "" || a.node != 0 {
			node, dead := a.node, a.dead
			h.mu.Unlock()
			return encode(func(e *wire.Enc) { e.U32(uint32(node)); e.Str(dead) }), nil
		}
		w := make(chan struct{})
		a.waiters = append(a.waiters, w)
		h.mu.Unlock()
		select {
		case <-w:
		case <-h.done:
			return nil, fmt.Errorf("head stopped: %w", ErrUnavailable)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Cluster status: what `raygo status` prints.
func (h *Head) status() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]wire.NodeID, 0, len(h.nodes))
	for id := range h.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return encode(func(e *wire.Enc) {
		e.Str(h.clusterID)
		e.Uvarint(uint64(len(ids)))
		for _, id := range ids {
			n := h.nodes[id]
			e.NodeInfo(&n.info)
			e.Uvarint(n.load.Tasks)
			e.Uvarint(n.load.Actors)
			e.Uvarint(n.load.Objects)
			e.Uvarint(n.load.StoreUsed)
		}
		e.Uvarint(uint64(len(h.jobs)))
		e.Uvarint(uint64(len(h.groups)))
	})
}

// NodeStatus is one node in a cluster status report.
type NodeStatus struct {
	wire.NodeInfo
	Tasks, Actors, Objects, StoreUsed uint64
}

// ClusterStatus is what the head reports about the cluster.
type ClusterStatus struct {
	ClusterID string
	Nodes     []NodeStatus
	Jobs      int
	Groups    int
}

// DecodeStatus parses an OpStatus reply.
func DecodeStatus(b []byte) (*ClusterStatus, error) {
	s := &ClusterStatus{}
	err := decodeBody(b, func(d *wire.Dec) {
		s.ClusterID = d.Str()
		n := d.Len(8)
		for i := 0; i < n; i++ {
			var ns NodeStatus
			d.NodeInfo(&ns.NodeInfo)
			ns.Tasks = d.Uvarint()
			ns.Actors = d.Uvarint()
			ns.Objects = d.Uvarint()
			ns.StoreUsed = d.Uvarint()
			s.Nodes = append(s.Nodes, ns)
		}
		s.Jobs = int(d.Uvarint())
		s.Groups = int(d.Uvarint())
	})
	return s, err
}

func copyRes(r wire.Resources) wire.Resources {
	out := make(wire.Resources, len(r))
	for k, v := range r {
		out[k] = v
	}
	return out
}
