package runtime

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime/codec"
	"github.com/raygo/raygo/runtime/wire"
)

// ErrShutdown is returned by calls made after the client shut down or lost
// its node agent.
var ErrShutdown = errors.New("raygo: not connected to a cluster (Init not called, or Shutdown already)")

// Program describes the running binary, for the agent to check workers
// against their driver.
type Program struct {
	BinaryPath   string
	BinaryHash   string
	RegistryHash string
	Registry     []string
	Args         []string
}

// Client is a driver's or worker's connection to its node agent: it submits
// tasks, stores and fetches objects, and counts the references it holds.
//
// Concurrency: c.mu guards objs and the pending reference changes; every
// message that could depend on a reference change is sent with c.mu held,
// after those changes, so the agent sees them in order.
type Client struct {
	conn      *wire.Conn
	role      wire.Role
	node      wire.NodeID
	proc      wire.ProcID
	job       uint64
	clusterID string
	arenaPath string
	arenaSize int64
	arenaErr  error
	arena     *objstore.Arena // this node's object store, mapped once
	inlineMax int
	headAddr  string
	calls     calls
	seq       atomic.Uint64

	mu      sync.Mutex
	objs    idMap[*objState]
	pending map[wire.ObjectID]int32
	closed  error
	submit  wire.Submit // reused by Submit: a message is encoded when sent

	exec       *executor // worker mode
	done       chan struct{}
	flushCh    chan struct{} // wakes flushLoop to arm its timer
	flushArmed bool          // flushLoop will flush within flushDelay
}

// objState is what this process knows of an object it holds a reference to.
// A driver may hold a million: it is kept small (48 bytes), and its channel
// is made only for a caller that waits before the object is ready.
type objState struct {
	data       []byte // inline, or a view of the arena
	err        *wire.TaskError
	ready      chan struct{} // nil until someone waits; closed when ready
	refs       int32         // live handles in this process
	isReady    bool
	subscribed bool
	stored     bool // in a node's shared-memory store: its release is sent at once
}

// closedChan is always closed: the ready channel of objects that were ready
// before anyone waited.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// setLocked records the object's value or error and wakes its waiters.
func (st *objState) setLocked(data []byte, err *wire.TaskError) {
	st.data, st.err, st.isReady = data, err, true
	if st.ready != nil {
		close(st.ready)
	}
}

// readyLocked is a channel closed once the object is ready.
func (st *objState) readyLocked() <-chan struct{} {
	if st.isReady {
		return closedChan
	}
	if st.ready == nil {
		st.ready = make(chan struct{})
	}
	return st.ready
}

// Connect dials a node agent at addr and introduces this process.
func Connect(ctx context.Context, addr string, secret []byte, role wire.Role, prog Program, workerSlot uint32, job uint64) (*Client, error) {
	return connect(ctx, addr, secret, role, prog, workerSlot, job, nil)
}

func connect(ctx context.Context, addr string, secret []byte, role wire.Role, prog Program, workerSlot uint32, job uint64, h Handler) (*Client, error) {
	conn, err := dial(ctx, addr, secret, role)
	if err != nil {
		return nil, err
	}
	conn.Send(&wire.Hello{Role: role, Pid: int64(os.Getpid()), Worker: workerSlot, Job: job,
		BinaryPath: prog.BinaryPath, BinaryHash: prog.BinaryHash, RegistryHash: prog.RegistryHash,
		Registry: prog.Registry, Args: prog.Args})
	type result struct {
		m   wire.Msg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := conn.Recv()
		ch <- result{m, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		conn.Abort()
		return nil, fmt.Errorf("connect to node agent %s: %w", addr, ctx.Err())
	}
	if r.err != nil {
		conn.Abort()
		return nil, fmt.Errorf("connect to node agent %s: %w", addr, r.err)
	}
	w, ok := r.m.(*wire.Welcome)
	if !ok {
		conn.Abort()
		return nil, fmt.Errorf("node agent %s sent %s instead of welcome", addr, r.m.Type())
	}
	if w.Err != "" {
		conn.Abort()
		return nil, fmt.Errorf("node agent %s refused this %s: %s", addr, role, w.Err)
	}
	c := &Client{conn: conn, role: role, node: w.Node, proc: w.Proc, clusterID: w.ClusterID,
		arenaPath: w.StoreDir, arenaSize: int64(w.ArenaSize), inlineMax: int(w.InlineMax), headAddr: w.HeadAddr,
		pending: map[wire.ObjectID]int32{},
		done:    make(chan struct{}), flushCh: make(chan struct{}, 1)}
	c.job, _ = strconv.ParseUint(w.Config["job"], 10, 64)
	// Map the node's arena once. A driver on another host than its agent
	// has none; it then fails only when it meets a stored object.
	c.arena, c.arenaErr = objstore.OpenArena(c.arenaPath, c.arenaSize, true)
	if h != nil {
		c.exec = &executor{c: c, h: h, base: context.WithoutCancel(ctx), running: map[wire.TaskID]context.CancelFunc{}, actors: map[wire.ActorID]*actorBox{}, leases: map[uint64]chan *wire.Exec{}, idle: make(chan chan func(), maxIdleRunners)}
		SetWorkerClient(c)
	}
	go c.readLoop()
	go c.flushLoop()
	return c, nil
}

// Node is the node this process runs on.
func (c *Client) Node() wire.NodeID { return c.node }

// Proc is this process's ID on its node.
func (c *Client) Proc() wire.ProcID { return c.proc }

// Job is the job this process belongs to.
func (c *Client) Job() uint64 { return c.job }

// ClusterID names the cluster.
func (c *Client) ClusterID() string { return c.clusterID }

// InlineMax is the largest object sent inline rather than through the store.
func (c *Client) InlineMax() int { return c.inlineMax }

// Done is closed when the connection to the agent ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// NewTaskID makes a cluster-unique task ID without a round trip.
func (c *Client) NewTaskID() wire.TaskID {
	return wire.TaskID{Node: c.node, Proc: c.proc, Seq: c.seq.Add(1)}
}

func (c *Client) readLoop() {
	var err error
	for {
		var m wire.Msg
		m, err = c.conn.Recv()
		if err != nil {
			break
		}
		switch m := m.(type) {
		case *wire.Object:
			c.objectArrived(m)
		case *wire.Rep:
			c.calls.deliver(m)
		case *wire.Exec:
			if c.exec != nil {
				c.exec.exec(m)
			}
		case *wire.Cancel:
			if c.exec != nil {
				c.exec.cancel(m.Task)
			}
		case *wire.KillActor:
			if c.exec != nil {
				c.exec.killActor(m.Actor)
			}
		case *wire.Shutdown:
			err = fmt.Errorf("node agent asked this process to stop: %s", m.Reason)
			c.conn.Close()
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.closed = fmt.Errorf("%w: connection to node %d agent lost: %v", ErrShutdown, c.node, err)
	for id, st := range c.objs.All() {
		if !st.isReady {
			st.setLocked(nil, &wire.TaskError{Kind: wire.ErrKindSystem, Node: c.node, Message: fmt.Sprintf("object %s: connection to the node agent lost", id)})
		}
	}
	c.mu.Unlock()
	c.calls.fail(ErrShutdown)
	close(c.done)
}

// view is the bytes of a stored object in this node's arena: a view of
// it, or for an object spilled to disk a copy read from its file.
func (c *Client) view(v *wire.Value) ([]byte, error) {
	if v.Spilled != "" {
		b, err := os.ReadFile(v.Spilled)
		if err == nil && uint64(len(b)) != v.Size {
			err = fmt.Errorf("spill file %s has %d bytes, want %d", v.Spilled, len(b), v.Size)
		}
		return b, err
	}
	if c.arena == nil {
		return nil, fmt.Errorf("node %d's object store is not reachable from this process: %v", c.node, c.arenaErr)
	}
	return c.arena.View(int64(v.Off), int64(v.Size))
}

func (c *Client) objectArrived(m *wire.Object) {
	var data []byte
	terr := m.Err
	if terr == nil {
		if m.Value.InStore {
			var err error
			if data, err = c.view(&m.Value); err != nil {
				terr = &wire.TaskError{Kind: wire.ErrKindObjectLost, Node: c.node, Message: fmt.Sprintf("object %s: %v", m.ID, err)}
			}
		} else {
			data = detach(m.Value.Data)
		}
	}
	c.mu.Lock()
	st := c.objs.Get(m.ID)
	if st == nil || st.isReady {
		c.mu.Unlock()
		return
	}
	st.setLocked(data, terr)
	st.stored = m.Value.InStore
	c.mu.Unlock()
}

// flushDelay bounds how long a change in the references this process
// holds waits for a message to carry it before it is sent on its own.
const flushDelay = 10 * time.Millisecond

// flushLoop sends reference changes that no other message carried, within
// flushDelay of the first. An idle process does not wake.
func (c *Client) flushLoop() {
	t := time.NewTimer(flushDelay)
	t.Stop()
	for {
		select {
		case <-c.done:
			t.Stop()
			return
		case <-c.flushCh:
			t.Reset(flushDelay)
			continue
		case <-t.C:
		}
		c.mu.Lock()
		c.flushArmed = false
		c.flushLocked()
		c.mu.Unlock()
	}
}

// refChangedLocked notes a change in c.pending, for flushLoop.
func (c *Client) refChangedLocked() {
	if !c.flushArmed {
		c.flushArmed = true
		select {
		case c.flushCh <- struct{}{}:
		default:
		}
	}
}

func (c *Client) flushLocked() {
	if len(c.pending) == 0 {
		return
	}
	m := &wire.Refs{IDs: make([]wire.ObjectID, 0, len(c.pending)), Deltas: make([]int32, 0, len(c.pending))}
	for id, d := range c.pending {
		if d != 0 {
			m.IDs = append(m.IDs, id)
			m.Deltas = append(m.Deltas, d)
		}
	}
	clear(c.pending)
	if len(m.IDs) > 0 {
		c.conn.Send(m)
	}
}

// sendLocked sends m after any pending reference changes.
func (c *Client) sendLocked(m wire.Msg) error {
	if c.closed != nil {
		return c.closed
	}
	c.flushLocked()
	return c.conn.Send(m)
}

// newObjLocked registers an object this process just created (the agent
// counts this process's reference when it sees the submit or put).
func (c *Client) newObjLocked(id wire.ObjectID) *objState {
	st := &objState{refs: 1}
	c.objs.Set(id, st)
	return st
}

// Submit sends a task to the agent; its return objects are registered as
// held by this process.
func (c *Client) Submit(spec *wire.TaskSpec) error {
	spec.Job = c.job
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return c.closed
	}
	for i := uint32(1); i <= spec.NumReturns; i++ {
		c.newObjLocked(wire.ObjectID{Task: spec.ID, Index: i})
	}
	c.submit.Spec = *spec
	err := c.sendLocked(&c.submit)
	c.submit.Spec = wire.TaskSpec{}
	return err
}

// FailLocal records an error for objects that could not even be submitted.
func (c *Client) FailLocal(ids []wire.ObjectID, terr *wire.TaskError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		st := c.objs.Get(id)
		if st == nil {
			st = c.newObjLocked(id)
		}
		if !st.isReady {
			st.setLocked(nil, terr)
		}
	}
}

// Put stores an encoded value and returns its ID. Small values travel
// inline; large ones are written straight into this node's shared-memory
// store. contained lists the refs inside the value.
func (c *Client) Put(ctx context.Context, enc codec.Encoded, contained []wire.ObjectID) (wire.ObjectID, error) {
	id := wire.ObjectID{Task: c.NewTaskID()}
	v, data, err := c.store(ctx, id, enc)
	if err != nil {
		return id, err
	}
	v.Contained = contained
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return id, c.closed
	}
	st := c.newObjLocked(id)
	st.stored = v.InStore
	if !v.InStore {
		st.setLocked(data, nil)
	}
	// A stored value is not kept as a view here: a view pins the object
	// in the arena (it could not be spilled), so the first Get asks the
	// agent for it like any other object.
	return id, c.sendLocked(&wire.Put{ID: id, Value: v})
}

// store writes enc for object id: inline, or straight into this node's
// arena. It returns the wire value and a local view of the bytes.
func (c *Client) store(ctx context.Context, id wire.ObjectID, enc codec.Encoded) (wire.Value, []byte, error) {
	n := enc.Len()
	if n <= c.inlineMax {
		b := make([]byte, n)
		enc.WriteTo(b)
		return wire.Value{Data: b, Size: uint64(n)}, b, nil
	}
	if c.arena == nil {
		return wire.Value{}, nil, fmt.Errorf("store object %s (%d bytes): node %d's object store is not reachable from this process: %v", id, n, c.node, c.arenaErr)
	}
	rep, err := c.Request(ctx, wire.OpCreate, encode(func(e *wire.Enc) { e.ObjectID(id); e.Uvarint(uint64(n)) }))
	if err != nil {
		return wire.Value{}, nil, fmt.Errorf("store object %s (%d bytes): %w", id, n, err)
	}
	var off uint64
	err = decodeBody(rep, func(d *wire.Dec) { off = d.Uvarint() })
	var w []byte
	if err == nil {
		w, err = c.arena.Writable(int64(off), int64(n))
	}
	if err != nil {
		c.Request(context.Background(), wire.OpRelease, encode(func(e *wire.Enc) { e.ObjectID(id) }))
		return wire.Value{}, nil, fmt.Errorf("store object %s: %w", id, err)
	}
	enc.WriteTo(w)
	v := wire.Value{InStore: true, Size: uint64(n), Node: c.node, Off: off}
	view, _ := c.arena.View(int64(off), int64(n))
	return v, view, nil
}

// Acquire notes one more handle to id in this process.
func (c *Client) Acquire(id wire.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.objs.Get(id)
	if st == nil {
		st = &objState{}
		c.objs.Set(id, st)
	}
	st.refs++
	if st.refs == 1 {
		c.pending[id]++
		c.refChangedLocked()
	}
}

// Release drops a handle to id; the last one tells the agent.
func (c *Client) Release(id wire.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.objs.Get(id)
	if st == nil {
		return
	}
	st.refs--
	if st.refs > 0 {
		return
	}
	c.objs.Delete(id)
	c.pending[id]--
	if c.pending[id] == 0 {
		delete(c.pending, id)
	}
	if st.stored {
		// Store space is wanted back at once (Ray frees an object the
		// moment its last reference goes): a large put that follows
		// would otherwise find the arena still holding this one.
		c.flushLocked()
		return
	}
	c.refChangedLocked()
}

// Get waits for an object and returns its encoded bytes (a read-only view
// of shared memory for stored objects, valid while this process holds a
// reference to it).
func (c *Client) Get(ctx context.Context, id wire.ObjectID) ([]byte, error) {
	c.mu.Lock()
	st := c.objs.Get(id)
	if st == nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("object %s: no reference held by this process", id)
	}
	if st.isReady {
		c.mu.Unlock()
		return st.result(id)
	}
	if !st.subscribed {
		st.subscribed = true
		if err := c.sendLocked(&wire.Subscribe{IDs: []wire.ObjectID{id}}); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	ready := st.readyLocked()
	c.mu.Unlock()
	select {
	case <-ready:
		return st.result(id)
	case <-ctx.Done():
		return nil, fmt.Errorf("get %s: %w", id, ctx.Err())
	}
}

func (st *objState) result(id wire.ObjectID) ([]byte, error) {
	if st.err != nil {
		return nil, &RemoteError{TaskError: st.err, Object: id}
	}
	return st.data, nil
}

// Subscribe asks for several objects at once (before waiting on them).
func (c *Client) Subscribe(ids []wire.ObjectID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := make([]wire.ObjectID, 0, min(len(ids), SubscribeBatch))
	for _, id := range ids {
		st := c.objs.Get(id)
		if st == nil || st.isReady || st.subscribed {
			continue
		}
		st.subscribed = true
		want = append(want, id)
		if len(want) == SubscribeBatch {
			if err := c.sendLocked(&wire.Subscribe{IDs: want}); err != nil {
				return err
			}
			want = want[:0] // the message was encoded when sent
		}
	}
	if len(want) == 0 {
		return nil
	}
	return c.sendLocked(&wire.Subscribe{IDs: want})
}

// SubscribeBatch is the most objects one Subscribe message asks for: a
// Get of a million objects sends many small messages rather than one of
// 24 MB, which the agent would hold whole while it decodes it.
const SubscribeBatch = 4096

// ReadyChan is closed when the object is ready or failed; nil when this
// process holds no reference to it.
func (c *Client) ReadyChan(id wire.ObjectID) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.objs.Get(id); st != nil {
		return st.readyLocked()
	}
	return nil
}

// Cancel asks for a task to be cancelled.
func (c *Client) Cancel(id wire.TaskID, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(&wire.Cancel{Task: id, Force: force})
}

// KillActor ends an actor.
func (c *Client) KillActor(id wire.ActorID, noRestart bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(&wire.KillActor{Actor: id, NoRestart: noRestart})
}

// Request makes a request of the agent (or, through it, of the head).
func (c *Client) Request(ctx context.Context, op wire.Op, body []byte) ([]byte, error) {
	id, ch, err := c.calls.start()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	err = c.sendLocked(&wire.Req{ID: id, Op: op, Body: body})
	c.mu.Unlock()
	if err != nil {
		c.calls.cancel(id)
		return nil, err
	}
	select {
	case r := <-ch:
		if err := repErr(r); err != nil {
			return nil, err
		}
		return r.Body, nil
	case <-ctx.Done():
		c.calls.cancel(id)
		return nil, ctx.Err()
	}
}

// Call is a request sent with Start whose reply may not have come yet.
// Its methods may be called any number of times, from any goroutine.
type Call struct {
	done chan struct{}
	rep  *wire.Rep // set before done is closed
}

// Start sends a request of the agent (or, through it, of the head) without
// waiting for the reply: requests started one after another reach the
// agent, and are forwarded to the head, in that order.
func (c *Client) Start(op wire.Op, body []byte) (*Call, error) {
	call := &Call{done: make(chan struct{})}
	id, err := c.calls.startFunc(func(r *wire.Rep) { call.rep = r; close(call.done) })
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	err = c.sendLocked(&wire.Req{ID: id, Op: op, Body: body})
	c.mu.Unlock()
	if err != nil {
		c.calls.cancel(id)
		return nil, err
	}
	return call, nil
}

// Done is closed when the reply has come.
func (call *Call) Done() <-chan struct{} { return call.done }

// Result waits for the reply, or for ctx to end.
func (call *Call) Result(ctx context.Context) ([]byte, error) {
	select {
	case <-call.done:
	default:
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := repErr(call.rep); err != nil {
		return nil, err
	}
	return call.rep.Body, nil
}

// Close disconnects from the agent, releasing every reference and mapping.
func (c *Client) Close() error {
	c.mu.Lock()
	c.flushLocked()
	c.objs = idMap[*objState]{}
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.done
	// The node's arena goes with the connection: views handed out are
	// invalid from here on (their memory would otherwise stay pinned).
	if c.arena != nil {
		c.arena.Close()
	}
	return err
}

// SecretFromEnv reads the cluster secret handed to a worker and removes it
// from the environment, so the worker's own children do not inherit it.
func SecretFromEnv() ([]byte, error) {
	s := os.Getenv(EnvSecret)
	os.Unsetenv(EnvSecret)
	if s == "" {
		return nil, fmt.Errorf("%s is not set", EnvSecret)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not hex", EnvSecret)
	}
	return b, nil
}
