package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/raygo/raygo/runtime/codec"
	"github.com/raygo/raygo/runtime/wire"
)

// Handler runs the user's code in a worker process. The root raygo package
// implements it over its registry of functions and actor types.
//
// Arguments are encoded values. For tasks, arguments held in the object
// store are read-only views of shared memory, valid until the call returns;
// actors get private copies, since they may keep what they are given.
type Handler interface {
	RunTask(ctx context.Context, spec *wire.TaskSpec, args [][]byte) ([]Result, error)
	NewActor(ctx context.Context, spec *wire.TaskSpec, args [][]byte) (any, error)
	CallActor(ctx context.Context, actor any, spec *wire.TaskSpec, args [][]byte) ([]Result, error)
}

// Result is one encoded return value and the refs it contains.
type Result struct {
	Enc       codec.Encoded
	Contained []wire.ObjectID
}

// NoFunctionError is what a Handler returns for a name it does not have.
type NoFunctionError struct{ Name string }

func (e *NoFunctionError) Error() string {
	return fmt.Sprintf("this worker's binary has no function or actor type registered as %q", e.Name)
}

// RemoteError is a task's failure as seen by a process that got one of its
// objects (or by a task whose argument failed).
type RemoteError struct {
	*wire.TaskError
	Object wire.ObjectID
}

func (e *RemoteError) Error() string { return e.TaskError.Message }

// PanicError wraps a panic raised by user code.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// executor runs tasks and actor calls in a worker process, each in its own
// goroutine; an actor's calls go through its mailbox, MaxConcurrency at a
// time, in arrival order.
type executor struct {
	c    *Client
	h    Handler
	base context.Context

	mu      sync.Mutex
	running map[wire.TaskID]context.CancelFunc
	actors  map[wire.ActorID]*actorBox
	leases  map[uint64]chan *wire.Exec
	idle    chan chan func() // parked task goroutines (see spawn)
}

// maxIdleRunners bounds the goroutines kept parked for the next tasks.
const maxIdleRunners = 64

// spawn runs f on a goroutine of its own: one parked by an earlier task
// when there is one. A new goroutine starts with a small stack that each
// task grows again (a few microseconds, as much as a small task's whole
// run); a reused one has grown it already.
func (x *executor) spawn(f func()) {
	select {
	case ch := <-x.idle:
		ch <- f
	default:
		go x.runner(f)
	}
}

func (x *executor) runner(f func()) {
	ch := make(chan func(), 1)
	for {
		f()
		select {
		case x.idle <- ch:
		default:
			return
		}
		f = <-ch
	}
}

type actorBox struct {
	id      wire.ActorID
	place   wire.Strategy // where the actor was created
	inst    any
	mailbox chan *wire.Exec
	quit    chan struct{}
}

// ServeWorker connects this process to the agent that started it and runs
// what it is sent until the agent lets it go. It returns why it stopped.
func ServeWorker(ctx context.Context, h Handler, prog Program) error {
	// A worker belongs to its node agent, which stops it (a shutdown
	// message, then SIGKILL; and the kernel kills it if the agent dies).
	// Signals meant for the job as a whole (Ctrl-C in a terminal, scancel
	// and the time limit, which Slurm sends to every process of the step)
	// must not kill it while the driver still finishes or checkpoints.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	secret, err := SecretFromEnv()
	if err != nil {
		return err
	}
	slot, _ := strconv.ParseUint(os.Getenv(EnvSlot), 10, 32)
	job, _ := strconv.ParseUint(os.Getenv(EnvJob), 10, 64)
	keepHeapFloor()
	if dir := os.Getenv(EnvCPUProfileDir); dir != "" {
		go profileCPU(dir)
	}
	c, err := connect(ctx, os.Getenv(EnvAgent), secret, wire.RoleWorker, prog, uint32(slot), job, h)
	if err != nil {
		return err
	}
	<-c.Done()
	return nil
}

// EnvCPUProfileDir, when set in the environment of a node agent, makes each
// worker process it starts write its CPU profile into that directory, for
// profiling benchmarks. Workers are often killed rather than left to exit,
// so the profile is cut into files of 2 seconds each, worker-PID-N.prof;
// `go tool pprof` merges them when given them all.
const EnvCPUProfileDir = "RAYGO_WORKER_CPUPROFILE_DIR"

func profileCPU(dir string) {
	for n := 0; ; n++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d-%d.prof", os.Getpid(), n)))
		if err != nil {
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return
		}
		time.Sleep(2 * time.Second)
		pprof.StopCPUProfile()
		f.Close()
	}
}

var workerClient struct {
	sync.Mutex
	c *Client
}

// SetWorkerClient makes c the client for code running in this worker.
func SetWorkerClient(c *Client) {
	workerClient.Lock()
	workerClient.c = c
	workerClient.Unlock()
}

// WorkerClient is this worker process's client, or nil outside workers.
func WorkerClient() *Client {
	workerClient.Lock()
	defer workerClient.Unlock()
	return workerClient.c
}

func (x *executor) exec(m *wire.Exec) {
	for k, v := range m.Env {
		if os.Getenv(k) != v {
			os.Setenv(k, v)
		}
	}
	switch m.Spec.Kind {
	case wire.KindTask:
		if m.Lease != 0 {
			x.mu.Lock()
			q := x.leases[m.Lease]
			if q == nil {
				q = make(chan *wire.Exec, 2*maxLease)
				x.leases[m.Lease] = q
				go x.runLease(m.Lease, q)
			}
			q <- m
			x.mu.Unlock()
			return
		}
		x.spawn(func() { x.runTask(m) })
	case wire.KindActorCreate:
		go x.create(m)
	case wire.KindActorCall:
		x.mu.Lock()
		box := x.actors[m.Spec.Actor]
		x.mu.Unlock()
		if box == nil {
			x.finish(m, nil, &wire.TaskError{Kind: wire.ErrKindActorDied, Message: fmt.Sprintf("actor %s is not in this worker (killed?)", m.Spec.Actor)})
			return
		}
		select {
		case box.mailbox <- m:
		case <-box.quit:
			x.finish(m, nil, &wire.TaskError{Kind: wire.ErrKindActorDied, Message: fmt.Sprintf("actor %s was killed", m.Spec.Actor)})
		}
	}
}

func (x *executor) runTask(m *wire.Exec) {
	x.run(m, false, func(ctx context.Context, args [][]byte) ([]Result, error) {
		return x.h.RunTask(ctx, &m.Spec, args)
	})
}

// leaseStall is how long a leased task runs before the next task of its
// lease starts beside it.
const leaseStall = 20 * time.Millisecond

// runLease runs a lease's tasks one after another, in arrival order.
func (x *executor) runLease(id uint64, q chan *wire.Exec) {
	stall := time.NewTimer(leaseStall)
	defer stall.Stop()
	for {
		var m *wire.Exec
		select {
		case m = <-q:
		default:
			x.mu.Lock()
			if len(q) == 0 {
				delete(x.leases, id)
				x.mu.Unlock()
				return
			}
			x.mu.Unlock()
			continue
		}
		done := make(chan struct{})
		x.spawn(func() {
			x.runTask(m)
			close(done)
		})
		stall.Reset(leaseStall)
		select {
		case <-done:
		case <-stall.C:
		}
	}
}

func (x *executor) create(m *wire.Exec) {
	var inst any
	x.run(m, true, func(ctx context.Context, args [][]byte) ([]Result, error) {
		var err error
		inst, err = x.h.NewActor(ctx, &m.Spec, args)
		if err != nil {
			return nil, err
		}
		enc, err := codec.Encode(m.Spec.ID.String())
		if err != nil {
			return nil, err
		}
		n := int(m.Spec.MaxConcurrency)
		if n < 1 {
			n = 1
		}
		box := &actorBox{id: m.Spec.ID, place: m.Spec.Strategy, inst: inst, mailbox: make(chan *wire.Exec, 1024), quit: make(chan struct{})}
		x.mu.Lock()
		x.actors[m.Spec.ID] = box
		x.mu.Unlock()
		for i := 0; i < n; i++ {
			go x.serveActor(box)
		}
		if m.Spec.NumReturns == 0 {
			return nil, nil // a restart: the creation's result exists already
		}
		return []Result{{Enc: enc}}, nil
	})
}

func (x *executor) serveActor(box *actorBox) {
	for {
		select {
		case m := <-box.mailbox:
			x.run(m, true, func(ctx context.Context, args [][]byte) ([]Result, error) {
				return x.h.CallActor(ctx, box.inst, &m.Spec, args)
			})
		case <-box.quit:
			return
		}
	}
}

func (x *executor) killActor(id wire.ActorID) {
	x.mu.Lock()
	box := x.actors[id]
	delete(x.actors, id)
	x.mu.Unlock()
	if box != nil {
		close(box.quit)
	}
}

func (x *executor) cancel(id wire.TaskID) {
	x.mu.Lock()
	cancel := x.running[id]
	x.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// run executes one task or call and reports it to the agent.
func (x *executor) run(m *wire.Exec, private bool, f func(context.Context, [][]byte) ([]Result, error)) {
	ctx, cancel := context.WithCancel(x.base)
	defer cancel()
	ctx = withTask(ctx, x.taskInfo(m))
	x.mu.Lock()
	x.running[m.Spec.ID] = cancel
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.running, m.Spec.ID)
		x.mu.Unlock()
	}()

	args := make([][]byte, len(m.Args))
	for i := range m.Args {
		v := &m.Args[i].Value
		if !v.InStore {
			args[i] = v.Data
			continue
		}
		b, err := x.c.view(v)
		if err != nil {
			x.finish(m, nil, &wire.TaskError{Kind: wire.ErrKindObjectLost, Message: fmt.Sprintf("argument %d (%s): %v", i, m.Args[i].ID, err)})
			return
		}
		args[i] = b
		if private && v.Spilled == "" {
			args[i] = append([]byte(nil), args[i]...)
		}
	}
	start := time.Now()
	results, err := call(ctx, args, f)
	micros := uint64(max(time.Since(start).Microseconds(), 1))
	if err != nil {
		x.finishTimed(m, nil, x.taskError(ctx, err), micros)
		return
	}
	vals := make([]wire.Value, len(results))
	for i, r := range results {
		oid := wire.ObjectID{Task: m.Spec.ID, Index: uint32(i + 1)}
		v, _, err := x.c.store(ctx, oid, r.Enc)
		if err != nil {
			for j := 0; j < i; j++ {
				if vals[j].InStore {
					x.c.Request(context.Background(), wire.OpRelease, encode(func(e *wire.Enc) {
						e.ObjectID(wire.ObjectID{Task: m.Spec.ID, Index: uint32(j + 1)})
					}))
				}
			}
			x.finish(m, nil, &wire.TaskError{Kind: wire.ErrKindSystem, Message: fmt.Sprintf("return value %d: %v", i+1, err)})
			return
		}
		v.Contained = r.Contained
		vals[i] = v
	}
	x.finishTimed(m, vals, nil, micros)
}

func call(ctx context.Context, args [][]byte, f func(context.Context, [][]byte) ([]Result, error)) (res []Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	return f(ctx, args)
}

func (x *executor) taskError(ctx context.Context, err error) *wire.TaskError {
	t := &wire.TaskError{Kind: wire.ErrKindApp, Message: err.Error(), TypeName: fmt.Sprintf("%T", err)}
	var pe *PanicError
	var nf *NoFunctionError
	var re *RemoteError
	switch {
	case errors.As(err, &pe):
		t.Kind, t.Stack, t.TypeName = wire.ErrKindPanic, pe.Stack, ""
	case errors.As(err, &nf):
		t.Kind = wire.ErrKindNoFunction
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		t.Kind = wire.ErrKindCancelled
	case errors.As(err, &re):
		t.Cause = re.TaskError
	}
	return t
}

func (x *executor) finish(m *wire.Exec, vals []wire.Value, terr *wire.TaskError) {
	x.finishTimed(m, vals, terr, 0)
}

func (x *executor) finishTimed(m *wire.Exec, vals []wire.Value, terr *wire.TaskError, micros uint64) {
	if terr != nil {
		terr.Task, terr.Name, terr.Node, terr.Pid, terr.Attempt = m.Spec.ID, displayName(&m.Spec), x.c.node, int64(os.Getpid()), m.Attempt
	}
	d := &wire.Done{Task: m.Spec.ID, Attempt: m.Attempt, Results: vals, Err: terr, Micros: micros}
	x.c.mu.Lock()
	x.c.sendLocked(d)
	x.c.mu.Unlock()
}

type taskKey struct{}

// TaskInfo says what a running task is: its ID, the actor it belongs to
// (zero for plain tasks), and the placement group bundle it (or its
// actor) was placed in.
type TaskInfo struct {
	ID     wire.TaskID
	Actor  wire.ActorID
	Group  uint64 // placement group; 0 when none
	Bundle int32  // bundle index; -1 when none or any
}

func (x *executor) taskInfo(m *wire.Exec) TaskInfo {
	ti := TaskInfo{ID: m.Spec.ID, Group: m.Spec.Strategy.Group, Bundle: m.Spec.Strategy.Bundle}
	if m.Spec.Strategy.Kind != wire.StrategyPlacementGroup {
		ti.Group, ti.Bundle = 0, -1
	}
	switch m.Spec.Kind {
	case wire.KindActorCreate:
		ti.Actor = m.Spec.ID
	case wire.KindActorCall:
		ti.Actor = m.Spec.Actor
		x.mu.Lock()
		box := x.actors[m.Spec.Actor]
		x.mu.Unlock()
		ti.Group, ti.Bundle = 0, -1
		if box != nil && box.place.Kind == wire.StrategyPlacementGroup {
			ti.Group, ti.Bundle = box.place.Group, box.place.Bundle
		}
	}
	return ti
}

func withTask(ctx context.Context, ti TaskInfo) context.Context {
	return context.WithValue(ctx, taskKey{}, ti)
}

// TaskFromContext is the ID of the task whose context this is.
func TaskFromContext(ctx context.Context) (wire.TaskID, bool) {
	ti, ok := ctx.Value(taskKey{}).(TaskInfo)
	return ti.ID, ok
}

// TaskInfoFromContext describes the task whose context this is.
func TaskInfoFromContext(ctx context.Context) (TaskInfo, bool) {
	ti, ok := ctx.Value(taskKey{}).(TaskInfo)
	return ti, ok
}
