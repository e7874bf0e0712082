package wire

import "fmt"

// Type is the first byte of every frame: which message follows.
type Type uint8

// Message types. The numbers are part of the protocol: add, never renumber
// (bump Version when a message changes shape).
const (
	THello Type = iota + 1
	TWelcome
	TSubmit
	TPut
	TRefs
	TSubscribe
	TObject
	TCancel
	TExec
	TDone
	TReq
	TRep
	TForward
	TFree
	TNodeHello
	TView
	TLoad
	TKillActor
	TShutdown
	TActorDown
	tEnd
)

var typeNames = [...]string{"", "hello", "welcome", "submit", "put", "refs", "subscribe", "object",
	"cancel", "exec", "done", "req", "rep", "forward", "free", "node-hello", "view", "load", "kill-actor", "shutdown", "actor-down"}

func (t Type) String() string {
	if t > 0 && t < tEnd {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Msg is one protocol message.
type Msg interface {
	Type() Type
	Encode(e *Enc)
	Decode(d *Dec)
}

// Decode parses one frame (type byte and body). Any malformed input returns
// an error wrapping ErrMalformed; it never panics.
func Decode(frame []byte) (Msg, error) {
	return decode(frame, new(Dec))
}

// decode is Decode with the decoder given: a connection reuses one (no
// message keeps it).
func decode(frame []byte, d *Dec) (Msg, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	var m Msg
	switch Type(frame[0]) {
	case THello:
		m = new(Hello)
	case TWelcome:
		m = new(Welcome)
	case TSubmit:
		m = new(Submit)
	case TPut:
		m = new(Put)
	case TRefs:
		m = new(Refs)
	case TSubscribe:
		m = new(Subscribe)
	case TObject:
		m = new(Object)
	case TCancel:
		m = new(Cancel)
	case TExec:
		m = new(Exec)
	case TDone:
		m = new(Done)
	case TReq:
		m = new(Req)
	case TRep:
		m = new(Rep)
	case TForward:
		m = new(Forward)
	case TFree:
		m = new(Free)
	case TNodeHello:
		m = new(NodeHello)
	case TView:
		m = new(View)
	case TLoad:
		m = new(Load)
	case TKillActor:
		m = new(KillActor)
	case TShutdown:
		m = new(Shutdown)
	case TActorDown:
		m = new(ActorDown)
	default:
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, frame[0])
	}
	*d = Dec{b: frame[1:]}
	m.Decode(d)
	if d.err == nil && d.Remaining() != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", d.Remaining()))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s message: %w", m.Type(), d.err)
	}
	return m, nil
}

// Append encodes m as a frame body (type byte first) onto e.
func Append(e *Enc, m Msg) {
	e.U8(uint8(m.Type()))
	m.Encode(e)
}

// Role says what a connecting process is.
type Role uint8

const (
	RoleDriver Role = iota + 1
	RoleWorker
	RoleNode  // a node agent, to the head or to another agent
	RoleAdmin // the raygo CLI: status, stop
)

func (r Role) String() string {
	switch r {
	case RoleDriver:
		return "driver"
	case RoleWorker:
		return "worker"
	case RoleNode:
		return "node"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Hello is a driver's or worker's first message to its node agent.
type Hello struct {
	Role         Role
	Pid          int64
	Worker       uint32 // the worker slot the agent started this process for; for RoleNode, the dialing node's ID
	Job          uint64 // for workers: the job they serve
	BinaryPath   string
	BinaryHash   string
	RegistryHash string
	Registry     []string // registered function and actor type names, sorted
	Args         []string // drivers: their command-line arguments, for their workers
}

func (*Hello) Type() Type { return THello }
func (m *Hello) Encode(e *Enc) {
	e.U8(uint8(m.Role))
	e.Varint(m.Pid)
	e.Uvarint(uint64(m.Worker))
	e.Uvarint(m.Job)
	e.Str(m.BinaryPath)
	e.Str(m.BinaryHash)
	e.Str(m.RegistryHash)
	e.Strs(m.Registry)
	e.Strs(m.Args)
}
func (m *Hello) Decode(d *Dec) {
	m.Role = Role(d.U8())
	m.Pid = d.Varint()
	m.Worker = d.u32v("worker")
	m.Job = d.Uvarint()
	m.BinaryPath = d.Str()
	m.BinaryHash = d.Str()
	m.RegistryHash = d.Str()
	m.Registry = d.Strs()
	m.Args = d.Strs()
}

// Welcome answers Hello and NodeHello. A non-empty Err refuses the peer.
type Welcome struct {
	Err       string
	Node      NodeID
	Proc      ProcID
	ClusterID string
	HeadAddr  string
	StoreDir  string // the node's arena file
	ArenaSize uint64
	InlineMax uint64 // objects up to this size travel inline
	Config    map[string]string
}

func (*Welcome) Type() Type { return TWelcome }
func (m *Welcome) Encode(e *Enc) {
	e.Str(m.Err)
	e.Uvarint(uint64(m.Node))
	e.Uvarint(uint64(m.Proc))
	e.Str(m.ClusterID)
	e.Str(m.HeadAddr)
	e.Str(m.StoreDir)
	e.Uvarint(m.ArenaSize)
	e.Uvarint(m.InlineMax)
	e.StrMap(m.Config)
}
func (m *Welcome) Decode(d *Dec) {
	m.Err = d.Str()
	m.Node = NodeID(d.u32v("node"))
	m.Proc = ProcID(d.u32v("proc"))
	m.ClusterID = d.Str()
	m.HeadAddr = d.Str()
	m.StoreDir = d.Str()
	m.ArenaSize = d.Uvarint()
	m.InlineMax = d.Uvarint()
	m.Config = d.StrMap()
}

// Task kinds.
const (
	KindTask uint8 = iota
	KindActorCreate
	KindActorCall
)

// Scheduling strategies.
const (
	StrategyDefault uint8 = iota
	StrategySpread
	StrategyNode // node affinity: Strategy.Node, hard unless Soft
	StrategyPlacementGroup
)

// Strategy says where a task or actor may run. (Fields are ordered to
// leave no padding: a node holds one per queued task.)
type Strategy struct {
	Group  uint64 // placement group
	Node   NodeID
	Bundle int32 // -1: any bundle of the group
	Kind   uint8
	Soft   bool
}

// Arg is one task argument: a value inline, or a reference to an object.
type Arg struct {
	IsRef bool
	Ref   ObjectID
	Data  []byte
}

// TaskSpec is everything needed to run a task, create an actor, or call one.
// (Fields are ordered to leave little padding: a node holds one per queued
// task.)
type TaskSpec struct {
	ID             TaskID
	Job            uint64 // the driver program it belongs to
	Func           string // registered function or actor type name
	Method         string // actor method, for KindActorCall
	Actor          ActorID
	Name           string // display name
	Args           []Arg
	Resources      Resources
	Strategy       Strategy
	ActorName      string // named actors
	Namespace      string
	NumReturns     uint32
	MaxRetries     int32
	MaxConcurrency int32 // actors
	MaxRestarts    int32 // actors
	Kind           uint8
	RetryAppErrors bool
	Dedicated      bool
}

func (e *Enc) Spec(s *TaskSpec) {
	e.TaskID(s.ID)
	e.Uvarint(s.Job)
	e.U8(s.Kind)
	e.Str(s.Func)
	e.Str(s.Method)
	e.TaskID(s.Actor)
	e.Str(s.Name)
	e.Uvarint(uint64(len(s.Args)))
	for i := range s.Args {
		a := &s.Args[i]
		e.Bool(a.IsRef)
		if a.IsRef {
			e.ObjectID(a.Ref)
		} else {
			e.Blob(a.Data)
		}
	}
	e.Uvarint(uint64(s.NumReturns))
	e.Resources(s.Resources)
	e.Varint(int64(s.MaxRetries))
	e.Bool(s.RetryAppErrors)
	e.U8(s.Strategy.Kind)
	e.Uvarint(uint64(s.Strategy.Node))
	e.Bool(s.Strategy.Soft)
	e.Uvarint(s.Strategy.Group)
	e.Varint(int64(s.Strategy.Bundle))
	e.Bool(s.Dedicated)
	e.Varint(int64(s.MaxConcurrency))
	e.Varint(int64(s.MaxRestarts))
	e.Str(s.ActorName)
	e.Str(s.Namespace)
}

func (d *Dec) i32(what string) int32 {
	v := d.Varint()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail(what + " out of range")
		return 0
	}
	return int32(v)
}

func (d *Dec) Spec(s *TaskSpec) {
	s.ID = d.TaskID()
	s.Job = d.Uvarint()
	s.Kind = d.U8()
	if s.Kind > KindActorCall {
		d.fail("unknown task kind")
	}
	s.Func = d.Str()
	s.Method = d.Str()
	s.Actor = d.TaskID()
	s.Name = d.Str()
	if n := d.Len(2); n > 0 {
		s.Args = make([]Arg, n)
		for i := range s.Args {
			a := &s.Args[i]
			a.IsRef = d.Bool()
			if a.IsRef {
				a.Ref = d.ObjectID()
			} else {
				a.Data = d.Bytes()
			}
		}
	}
	s.NumReturns = d.u32v("returns")
	s.Resources = d.Resources()
	s.MaxRetries = d.i32("max retries")
	s.RetryAppErrors = d.Bool()
	s.Strategy.Kind = d.U8()
	s.Strategy.Node = NodeID(d.u32v("node"))
	s.Strategy.Soft = d.Bool()
	s.Strategy.Group = d.Uvarint()
	s.Strategy.Bundle = d.i32("bundle")
	s.Dedicated = d.Bool()
	s.MaxConcurrency = d.i32("max concurrency")
	s.MaxRestarts = d.i32("max restarts")
	s.ActorName = d.Str()
	s.Namespace = d.Str()
}

// Error kinds carried by TaskError.
const (
	ErrKindApp           uint8 = iota + 1 // the function returned an error
	ErrKindPanic                          // the function panicked
	ErrKindWorkerDied                     // the process running it exited
	ErrKindCancelled                      // cancelled by the caller
	ErrKindUpstream                       // an argument's task failed
	ErrKindUnschedulable                  // no node can ever run it
	ErrKindNoFunction                     // the worker lacks the function or actor type
	ErrKindObjectLost                     // an object it needs is gone
	ErrKindActorDied                      // the actor is dead
	ErrKindSystem                         // anything else the runtime could not do
	ErrKindActorMoved                     // the actor is not (or no longer) on the node asked: ask where it is now
)

// TaskError is a failure carried on the wire, with where it happened.
type TaskError struct {
	Kind     uint8
	Task     TaskID
	Name     string // function or method name
	Node     NodeID
	Pid      int64
	Attempt  uint32
	Message  string
	TypeName string // Go type of the error value, for app errors
	Stack    string
	Cause    *TaskError // the upstream failure, for ErrKindUpstream
}

const maxErrorDepth = 64

func (e *Enc) TaskError(t *TaskError) {
	depth := 0
	for ; t != nil && depth < maxErrorDepth; t = t.Cause {
		e.Bool(true)
		e.U8(t.Kind)
		e.TaskID(t.Task)
		e.Str(t.Name)
		e.Uvarint(uint64(t.Node))
		e.Varint(t.Pid)
		e.Uvarint(uint64(t.Attempt))
		e.Str(t.Message)
		e.Str(t.TypeName)
		e.Str(t.Stack)
		depth++
	}
	e.Bool(false)
}

func (d *Dec) TaskError() *TaskError {
	var head *TaskError
	link := &head
	for depth := 0; d.Bool(); depth++ {
		if depth >= maxErrorDepth {
			d.fail("error chain too deep")
			return nil
		}
		t := &TaskError{
			Kind:     d.U8(),
			Task:     d.TaskID(),
			Name:     d.Str(),
			Node:     NodeID(d.u32v("node")),
			Pid:      d.Varint(),
			Attempt:  d.u32v("attempt"),
			Message:  d.Str(),
			TypeName: d.Str(),
			Stack:    d.Str(),
		}
		*link = t
		link = &t.Cause
		if d.err != nil {
			return nil
		}
	}
	return head
}

// Value is an object's value or where to find it: Data inline, or Size
// bytes in the shared-memory store of node Node. Off is the object's
// offset in that node's arena; it is only meaningful on that node (between
// an agent and its local processes). Spilled, for a stored object, is the
// file on that node's disk that holds it instead of the arena (the store was
// full); like Off it only means something on that node.
type Value struct {
	Data      []byte
	Size      uint64
	Off       uint64
	Spilled   string
	Contained []ObjectID // refs inside the value, kept alive by it
	Node      NodeID
	InStore   bool
}

// Value kinds on the wire: 0 inline, 1 in a store, 2 in a store and
// spilled to disk (the path follows).
const (
	valueInline  = 0
	valueStore   = 1
	valueSpilled = 2
)

func (e *Enc) Value(v *Value) {
	switch {
	case !v.InStore:
		e.U8(valueInline)
		e.Blob(v.Data)
	case v.Spilled != "":
		e.U8(valueSpilled)
	default:
		e.U8(valueStore)
	}
	if v.InStore {
		e.Uvarint(v.Size)
		e.Uvarint(uint64(v.Node))
		e.Uvarint(v.Off)
		if v.Spilled != "" {
			e.Str(v.Spilled)
		}
	}
	e.ObjectIDs(v.Contained)
}

func (d *Dec) Value(v *Value) {
	switch kind := d.U8(); kind {
	case valueInline:
		v.Data = d.Bytes()
		v.Size = uint64(len(v.Data))
	case valueStore, valueSpilled:
		v.InStore = true
		v.Size = d.Uvarint()
		v.Node = NodeID(d.u32v("node"))
		v.Off = d.Uvarint()
		if kind == valueSpilled {
			v.Spilled = d.Str()
		}
	default:
		d.fail("bad value kind")
	}
	v.Contained = d.ObjectIDs()
}

// Submit asks the node agent to run a task, create an actor or call one.
type Submit struct{ Spec TaskSpec }

func (*Submit) Type() Type      { return TSubmit }
func (m *Submit) Encode(e *Enc) { e.Spec(&m.Spec) }
func (m *Submit) Decode(d *Dec) { d.Spec(&m.Spec) }

// Put stores an object whose ID the putting process made. A value InStore
// was written to the store file beforehand (after a ReqCreate).
type Put struct {
	ID    ObjectID
	Value Value
}

func (*Put) Type() Type { return TPut }
func (m *Put) Encode(e *Enc) {
	e.ObjectID(m.ID)
	e.Value(&m.Value)
}
func (m *Put) Decode(d *Dec) {
	m.ID = d.ObjectID()
	d.Value(&m.Value)
}

// Refs reports changes in how many references a process (or node) holds.
type Refs struct {
	IDs    []ObjectID
	Deltas []int32
}

func (*Refs) Type() Type { return TRefs }
func (m *Refs) Encode(e *Enc) {
	n := min(len(m.IDs), len(m.Deltas))
	e.Uvarint(uint64(n))
	for i := 0; i < n; i++ {
		e.ObjectID(m.IDs[i])
		e.Varint(int64(m.Deltas[i]))
	}
}
func (m *Refs) Decode(d *Dec) {
	n := d.Len(5)
	if n == 0 {
		return
	}
	m.IDs = make([]ObjectID, n)
	m.Deltas = make([]int32, n)
	for i := 0; i < n; i++ {
		m.IDs[i] = d.ObjectID()
		m.Deltas[i] = d.i32("delta")
	}
}

// Subscribe asks to be sent an Object message for each ID once it is ready.
type Subscribe struct{ IDs []ObjectID }

func (*Subscribe) Type() Type      { return TSubscribe }
func (m *Subscribe) Encode(e *Enc) { e.ObjectIDs(m.IDs) }
func (m *Subscribe) Decode(d *Dec) { m.IDs = d.ObjectIDs() }

// Object says an object is ready (Value) or failed (Err).
type Object struct {
	ID    ObjectID
	Value Value
	Err   *TaskError
}

func (*Object) Type() Type { return TObject }
func (m *Object) Encode(e *Enc) {
	e.ObjectID(m.ID)
	e.Value(&m.Value)
	e.TaskError(m.Err)
}
func (m *Object) Decode(d *Dec) {
	m.ID = d.ObjectID()
	d.Value(&m.Value)
	m.Err = d.TaskError()
}

// Cancel stops a task: pending ones never run, running ones see their
// context cancelled, and with Force their process is killed.
type Cancel struct {
	Task  TaskID
	Force bool
}

func (*Cancel) Type() Type { return TCancel }
func (m *Cancel) Encode(e *Enc) {
	e.TaskID(m.Task)
	e.Bool(m.Force)
}
func (m *Cancel) Decode(d *Dec) {
	m.Task = d.TaskID()
	m.Force = d.Bool()
}

// ArgValue is a resolved argument handed to a worker.
type ArgValue struct {
	ID    ObjectID // for ref arguments; zero for inline ones
	Value Value
}

// Exec hands a task to a worker, its arguments resolved.
type Exec struct {
	Spec    TaskSpec
	Attempt uint32
	Args    []ArgValue
	Env     map[string]string // e.g. CUDA_VISIBLE_DEVICES for dedicated processes
	Lease   uint64            // non-zero: run after the worker's earlier tasks of this lease
}

func (*Exec) Type() Type { return TExec }
func (m *Exec) Encode(e *Enc) {
	e.Spec(&m.Spec)
	e.Uvarint(uint64(m.Attempt))
	e.Uvarint(uint64(len(m.Args)))
	for i := range m.Args {
		e.ObjectID(m.Args[i].ID)
		e.Value(&m.Args[i].Value)
	}
	e.StrMap(m.Env)
	e.Uvarint(m.Lease)
}
func (m *Exec) Decode(d *Dec) {
	d.Spec(&m.Spec)
	m.Attempt = d.u32v("attempt")
	if n := d.Len(5); n > 0 {
		m.Args = make([]ArgValue, n)
		for i := range m.Args {
			m.Args[i].ID = d.ObjectID()
			d.Value(&m.Args[i].Value)
		}
	}
	m.Env = d.StrMap()
	m.Lease = d.Uvarint()
}

// Done reports a finished task: its return values, or its error.
type Done struct {
	Task    TaskID
	Attempt uint32
	Results []Value
	Err     *TaskError
	Micros  uint64 // how long the function ran, for the scheduler's estimates
}

func (*Done) Type() Type { return TDone }
func (m *Done) Encode(e *Enc) {
	e.TaskID(m.Task)
	e.Uvarint(uint64(m.Attempt))
	e.Uvarint(uint64(len(m.Results)))
	for i := range m.Results {
		e.Value(&m.Results[i])
	}
	e.TaskError(m.Err)
	e.Uvarint(m.Micros)
}
func (m *Done) Decode(d *Dec) {
	m.Task = d.TaskID()
	m.Attempt = d.u32v("attempt")
	if n := d.Len(3); n > 0 {
		m.Results = make([]Value, n)
		for i := range m.Results {
			d.Value(&m.Results[i])
		}
	}
	m.Err = d.TaskError()
	m.Micros = d.Uvarint()
}

// Req is a request that expects a Rep with the same ID. Op says what Body
// holds; see the Op constants.
type Req struct {
	ID   uint64
	Op   Op
	Body []byte
}

func (*Req) Type() Type { return TReq }
func (m *Req) Encode(e *Enc) {
	e.Uvarint(m.ID)
	e.U8(uint8(m.Op))
	e.Blob(m.Body)
}
func (m *Req) Decode(d *Dec) {
	m.ID = d.Uvarint()
	m.Op = Op(d.U8())
	m.Body = d.Bytes()
}

// Rep answers a Req. A non-empty Err is the failure, as text.
type Rep struct {
	ID   uint64
	Err  string
	Code uint8 // machine-readable failure kind, see the Code constants
	Body []byte
}

func (*Rep) Type() Type { return TRep }
func (m *Rep) Encode(e *Enc) {
	e.Uvarint(m.ID)
	e.Str(m.Err)
	e.U8(m.Code)
	e.Blob(m.Body)
}
func (m *Rep) Decode(d *Dec) {
	m.ID = d.Uvarint()
	m.Err = d.Str()
	m.Code = d.U8()
	m.Body = d.Bytes()
}

// Forward hands a task to another node agent to run. Its results go back to
// the agent of Spec.ID.Node in a Done.
type Forward struct {
	Spec    TaskSpec
	Attempt uint32
}

func (*Forward) Type() Type { return TForward }
func (m *Forward) Encode(e *Enc) {
	e.Spec(&m.Spec)
	e.Uvarint(uint64(m.Attempt))
}
func (m *Forward) Decode(d *Dec) {
	d.Spec(&m.Spec)
	m.Attempt = d.u32v("attempt")
}

// Free tells a node to drop its copies of objects.
type Free struct{ IDs []ObjectID }

func (*Free) Type() Type      { return TFree }
func (m *Free) Encode(e *Enc) { e.ObjectIDs(m.IDs) }
func (m *Free) Decode(d *Dec) { m.IDs = d.ObjectIDs() }

// NodeHello is a node agent's first message to the head.
type NodeHello struct {
	Addr      string // where other agents and drivers reach this node
	Hostname  string
	Pid       int64
	Resources Resources
	Labels    map[string]string
	Version   string
}

func (*NodeHello) Type() Type { return TNodeHello }
func (m *NodeHello) Encode(e *Enc) {
	e.Str(m.Addr)
	e.Str(m.Hostname)
	e.Varint(m.Pid)
	e.Resources(m.Resources)
	e.StrMap(m.Labels)
	e.Str(m.Version)
}
func (m *NodeHello) Decode(d *Dec) {
	m.Addr = d.Str()
	m.Hostname = d.Str()
	m.Pid = d.Varint()
	m.Resources = d.Resources()
	m.Labels = d.StrMap()
	m.Version = d.Str()
}

// NodeInfo is the head's view of one node.
type NodeInfo struct {
	ID        NodeID
	Addr      string
	Hostname  string
	Alive     bool
	Total     Resources
	Available Resources
	Labels    map[string]string
}

func (e *Enc) NodeInfo(n *NodeInfo) {
	e.Uvarint(uint64(n.ID))
	e.Str(n.Addr)
	e.Str(n.Hostname)
	e.Bool(n.Alive)
	e.Resources(n.Total)
	e.Resources(n.Available)
	e.StrMap(n.Labels)
}

func (d *Dec) NodeInfo(n *NodeInfo) {
	n.ID = NodeID(d.u32v("node"))
	n.Addr = d.Str()
	n.Hostname = d.Str()
	n.Alive = d.Bool()
	n.Total = d.Resources()
	n.Available = d.Resources()
	n.Labels = d.StrMap()
}

// Job is one driver program: the binary its workers run and what that
// binary registers. Workers of a job run the same binary on every node.
type Job struct {
	ID           uint64
	BinaryPath   string
	BinaryHash   string
	RegistryHash string
	Registry     []string
	Args         []string          // the driver's arguments, given to its workers too
	Env          map[string]string // extra environment for its workers
}

func (e *Enc) Job(j *Job) {
	e.Uvarint(j.ID)
	e.Str(j.BinaryPath)
	e.Str(j.BinaryHash)
	e.Str(j.RegistryHash)
	e.Strs(j.Registry)
	e.Strs(j.Args)
	e.StrMap(j.Env)
}

func (d *Dec) Job(j *Job) {
	j.ID = d.Uvarint()
	j.BinaryPath = d.Str()
	j.BinaryHash = d.Str()
	j.RegistryHash = d.Str()
	j.Registry = d.Strs()
	j.Args = d.Strs()
	j.Env = d.StrMap()
}

// View is the head's picture of the cluster, sent to every agent on change.
type View struct {
	Nodes []NodeInfo
	Jobs  []Job
}

func (*View) Type() Type { return TView }
func (m *View) Encode(e *Enc) {
	e.Uvarint(uint64(len(m.Nodes)))
	for i := range m.Nodes {
		e.NodeInfo(&m.Nodes[i])
	}
	e.Uvarint(uint64(len(m.Jobs)))
	for i := range m.Jobs {
		e.Job(&m.Jobs[i])
	}
}
func (m *View) Decode(d *Dec) {
	if n := d.Len(7); n > 0 { // a NodeInfo with every field empty is 7 bytes
		m.Nodes = make([]NodeInfo, n)
		for i := range m.Nodes {
			d.NodeInfo(&m.Nodes[i])
		}
	}
	if n := d.Len(6); n > 0 {
		m.Jobs = make([]Job, n)
		for i := range m.Jobs {
			d.Job(&m.Jobs[i])
		}
	}
}

// Load is a node's periodic report to the head.
type Load struct {
	Available Resources
	Tasks     uint64 // tasks queued or running
	Actors    uint64
	Objects   uint64
	StoreUsed uint64
}

func (*Load) Type() Type { return TLoad }
func (m *Load) Encode(e *Enc) {
	e.Resources(m.Available)
	e.Uvarint(m.Tasks)
	e.Uvarint(m.Actors)
	e.Uvarint(m.Objects)
	e.Uvarint(m.StoreUsed)
}
func (m *Load) Decode(d *Dec) {
	m.Available = d.Resources()
	m.Tasks = d.Uvarint()
	m.Actors = d.Uvarint()
	m.Objects = d.Uvarint()
	m.StoreUsed = d.Uvarint()
}

// KillActor ends an actor; NoRestart keeps it dead.
type KillActor struct {
	Actor     ActorID
	NoRestart bool
}

func (*KillActor) Type() Type { return TKillActor }
func (m *KillActor) Encode(e *Enc) {
	e.TaskID(m.Actor)
	e.Bool(m.NoRestart)
}
func (m *KillActor) Decode(d *Dec) {
	m.Actor = d.TaskID()
	m.NoRestart = d.Bool()
}

// Shutdown asks the receiver to stop: the head tells agents, agents tell workers.
type Shutdown struct{ Reason string }

func (*Shutdown) Type() Type      { return TShutdown }
func (m *Shutdown) Encode(e *Enc) { e.Str(m.Reason) }
func (m *Shutdown) Decode(d *Dec) { m.Reason = d.Str() }

// ActorDown tells an actor's owner (the node that created it) that the
// actor stopped: the owner restarts it (Restartable, within MaxRestarts)
// or records it dead for good.
type ActorDown struct {
	Actor       ActorID
	Restartable bool
	Err         *TaskError
}

func (*ActorDown) Type() Type { return TActorDown }
func (m *ActorDown) Encode(e *Enc) {
	e.TaskID(m.Actor)
	e.Bool(m.Restartable)
	e.TaskError(m.Err)
}
func (m *ActorDown) Decode(d *Dec) {
	m.Actor = d.TaskID()
	m.Restartable = d.Bool()
	m.Err = d.TaskError()
}

// Op names a request kind carried by Req.
type Op uint8

const (
	OpKVPut Op = iota + 1
	OpKVGet
	OpKVWait
	OpKVList
	OpKVDelete
	OpCreate      // reserve store space: body ObjectID + size; reply the offset in the arena
	OpPull        // read a chunk of a stored object: ObjectID, offset, length
	OpActorLookup // named actor: namespace, name -> actor ID, node
	OpActorPlace  // head: record an actor's node and name
	OpActorDead   // head: an actor is gone
	OpPGCreate    // head: reserve a placement group
	OpPGRemove    // head: release one
	OpPGWait      // head: wait until one is ready
	OpPGReserve   // head -> agent: hold bundle resources
	OpPGRelease   // head -> agent: drop them
	OpStatus      // cluster summary
	OpStop        // stop the cluster
	OpActorLocate // head: where an actor lives now
	OpJobRegister // head: a driver program starts
	OpJobEnd      // head: a driver program ended
	OpRelease     // agent: drop a reservation made by OpCreate
	OpActorMoving // head: an actor is restarting; locate waits for its new node
)

// Codes for Rep.Code.
const (
	CodeOK uint8 = iota
	CodeNotFound
	CodeExists
	CodeFull
	CodeTimeout
	CodeInvalid
	CodeUnavailable
	CodeInfeasible
)
