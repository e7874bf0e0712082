package raygo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// Sentinel errors: each TaskError matches exactly one with errors.Is.
var (
	// ErrApplication: the function or method returned an error.
	ErrApplication = errors.New("raygo: task returned an error")
	// ErrPanic: the function or method panicked.
	ErrPanic = errors.New("raygo: task panicked")
	// ErrWorkerDied: the process running the task exited (after any retries).
	ErrWorkerDied = errors.New("raygo: worker process died")
	// ErrCancelled: the task was cancelled.
	ErrCancelled = errors.New("raygo: task cancelled")
	// ErrUpstream: an argument of the task failed; Cause says how.
	ErrUpstream = errors.New("raygo: task argument failed")
	// ErrUnschedulable: no node of the cluster can ever run the task.
	ErrUnschedulable = errors.New("raygo: task cannot be scheduled")
	// ErrNoFunction: the worker's binary lacks the function or actor type.
	ErrNoFunction = errors.New("raygo: function not registered in worker")
	// ErrObjectLost: an object the task or caller needs no longer exists.
	ErrObjectLost = errors.New("raygo: object lost")
	// ErrActorDied: the actor is dead (killed, crashed, or never created).
	ErrActorDied = errors.New("raygo: actor died")
	// ErrSystem: the runtime could not do what was asked.
	ErrSystem = errors.New("raygo: system error")
	// ErrActorNotFound: GetActor found no live actor of that name.
	ErrActorNotFound = errors.New("raygo: no such actor")
	// ErrNameTaken: a live actor already has that name in its namespace.
	ErrNameTaken = errors.New("raygo: actor name taken")
	// ErrClusterLost: this process lost its connection to the cluster (its
	// node agent stopped, or the cluster was shut down).
	ErrClusterLost = errors.New("raygo: lost the cluster")
	// ErrNotInitialized: Init has not been called, or Shutdown was.
	ErrNotInitialized = errors.New("raygo: not initialized (call raygo.Init first)")
)

// TaskError is a failure of a remote task or actor call, with where it
// happened. It wraps one of the sentinels above (its Kind) and, for an
// upstream failure, the TaskError of the argument that failed (Cause), so
// errors.Is and errors.As see through the whole chain.
type TaskError struct {
	Task       string // task ID
	Name       string // function or Class.Method
	Node       uint32 // node that ran it
	Pid        int    // process that ran it
	Attempt    int    // 0 for the first attempt
	Kind       error  // one of the sentinels
	Message    string // the remote error's text
	RemoteType string // Go type of the remote error value, for application errors
	Stack      string // the remote goroutine's stack, for panics
	Cause      *TaskError
}

func (e *TaskError) Error() string {
	var b strings.Builder
	where := fmt.Sprintf("node %d", e.Node)
	if e.Pid != 0 {
		where += fmt.Sprintf(", pid %d", e.Pid)
	}
	name := e.Name
	if name == "" {
		name = "task"
	}
	fmt.Fprintf(&b, "%s (%s) on %s: ", name, e.Task, where)
	switch e.Kind {
	case ErrPanic:
		b.WriteString("panic: ")
	case ErrCancelled:
		b.WriteString("cancelled: ")
	case ErrWorkerDied:
		b.WriteString("worker died: ")
	case ErrActorDied:
		b.WriteString("actor died: ")
	case ErrUnschedulable:
		b.WriteString("unschedulable: ")
	case ErrObjectLost:
		b.WriteString("object lost: ")
	case ErrNoFunction:
		b.WriteString("not registered: ")
	}
	b.WriteString(strings.TrimPrefix(e.Message, "panic: "))
	if e.Cause != nil {
		b.WriteString("\n  caused by: ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap exposes the kind and the upstream cause.
func (e *TaskError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func kindErr(k uint8) error {
	switch k {
	case wire.ErrKindApp:
		return ErrApplication
	case wire.ErrKindPanic:
		return ErrPanic
	case wire.ErrKindWorkerDied:
		return ErrWorkerDied
	case wire.ErrKindCancelled:
		return ErrCancelled
	case wire.ErrKindUpstream:
		return ErrUpstream
	case wire.ErrKindUnschedulable:
		return ErrUnschedulable
	case wire.ErrKindNoFunction:
		return ErrNoFunction
	case wire.ErrKindObjectLost:
		return ErrObjectLost
	case wire.ErrKindActorDied:
		return ErrActorDied
	}
	return ErrSystem
}

func fromWire(t *wire.TaskError) *TaskError {
	if t == nil {
		return nil
	}
	e := &TaskError{Task: t.Task.String(), Name: t.Name, Node: uint32(t.Node), Pid: int(t.Pid), Attempt: int(t.Attempt),
		Kind: kindErr(t.Kind), Message: t.Message, RemoteType: t.TypeName, Stack: t.Stack}
	if t.Task.IsZero() {
		e.Task = "-"
	}
	e.Cause = fromWire(t.Cause)
	return e
}

// convert turns runtime errors into the package's own.
func convert(err error) error {
	var re *runtime.RemoteError
	if errors.As(err, &re) {
		return fromWire(re.TaskError)
	}
	if errors.Is(err, runtime.ErrInfeasible) {
		return fmt.Errorf("%w: %v", ErrUnschedulable, err)
	}
	if errors.Is(err, runtime.ErrShutdown) {
		if strings.Contains(err.Error(), "lost") {
			return fmt.Errorf("%w: %v", ErrClusterLost, err)
		}
		return fmt.Errorf("%w: %v", ErrNotInitialized, err)
	}
	return err
}
