package raygo

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"time"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

type argMaker interface {
	arg(c *runtime.Client, keep *[]any) (wire.Arg, error)
}

// submitTask sends a task and returns handles to its results. When it
// cannot even be sent, the handles hold the error.
func submitTask(fn string, opts []Option, nret int, args []argMaker) ([]*handle, error) {
	var o options
	o.apply(opts)
	spec := &wire.TaskSpec{Kind: wire.KindTask, Func: fn, NumReturns: uint32(nret)}
	o.fill(spec, false)
	return submit(spec, o.err, args)
}

func submit(spec *wire.TaskSpec, optErr error, args []argMaker) ([]*handle, error) {
	hs := make([]*handle, spec.NumReturns)
	c, err := client()
	if err != nil {
		return hs, err
	}
	if spec.ID.IsZero() {
		spec.ID = c.NewTaskID()
	}
	var keep []any
	err = optErr
	for i, a := range args {
		if err != nil {
			break
		}
		var wa wire.Arg
		wa, err = a.arg(c, &keep)
		if err != nil {
			err = fmt.Errorf("raygo: %s: argument %d: %w", displayName(spec), i+1, err)
		}
		spec.Args = append(spec.Args, wa)
	}
	ids := make([]wire.ObjectID, spec.NumReturns)
	for i := range ids {
		ids[i] = wire.ObjectID{Task: spec.ID, Index: uint32(i + 1)}
	}
	if err == nil {
		err = c.Submit(spec)
	}
	if err != nil {
		c.FailLocal(ids, &wire.TaskError{Kind: wire.ErrKindSystem, Task: spec.ID, Name: displayName(spec), Node: c.Node(), Message: err.Error()})
	}
	for i, id := range ids {
		hs[i] = newHandle(c, id)
	}
	goruntime.KeepAlive(keep)
	return hs, nil
}

func displayName(s *wire.TaskSpec) string {
	if s.Name != "" {
		return s.Name
	}
	if s.Method != "" {
		return s.Func + "." + s.Method
	}
	return s.Func
}

// ---- actors ----

// ActorType is an actor type registered with Actor0..Actor3, whose state
// is an S.
type ActorType[S any] interface {
	className() string
	stateType() *S
}

// Actor is a handle to a live actor whose state is an S. Handles can be
// passed to tasks and other actors (as arguments or inside values); every
// copy reaches the same actor.
type Actor[S any] struct {
	id      wire.ActorID
	class   string
	created Ref[string]
	err     error
}

// ID is the actor's cluster-wide ID.
func (h Actor[S]) ID() string { return h.id.String() }

// Class is the name of the actor's type.
func (h Actor[S]) Class() string { return h.class }

// Ready waits until the actor's constructor has run, and returns its error
// if it failed. Handles that came from GetActor or from another process
// return nil at once.
func (h Actor[S]) Ready(ctx context.Context) error {
	if h.err != nil {
		return h.err
	}
	if h.created.h == nil {
		return nil
	}
	_, err := h.created.Get(ctx)
	return err
}

// Kill ends the actor: calls in flight or queued fail with ErrActorDied,
// and so do later ones.
func (h Actor[S]) Kill(ctx context.Context) error {
	if h.err != nil {
		return h.err
	}
	c, err := client()
	if err != nil {
		return err
	}
	return convert(c.KillActor(h.id, true))
}

// MarshalBinary encodes the handle so it can travel inside values.
func (h Actor[S]) MarshalBinary() ([]byte, error) {
	var e wire.Enc
	e.TaskID(h.id)
	e.Str(h.class)
	return e.Bytes(), nil
}

// UnmarshalBinary rebuilds a handle.
func (h *Actor[S]) UnmarshalBinary(b []byte) error {
	d := wire.NewDec(b)
	h.id = d.TaskID()
	h.class = d.Str()
	if d.Err() != nil {
		return fmt.Errorf("raygo: decode actor handle: %w", d.Err())
	}
	return nil
}

func newActor[S any](class string, opts []Option, args []argMaker) Actor[S] {
	var o options
	o.apply(opts)
	spec := &wire.TaskSpec{Kind: wire.KindActorCreate, Func: class, NumReturns: 1}
	o.fill(spec, true)
	c, err := client()
	if err != nil {
		return Actor[S]{class: class, err: err}
	}
	if o.err == nil && spec.ActorName != "" {
		// Claim the name before anything runs, so a clash is reported here.
		spec.ID = c.NewTaskID()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Request(ctx, wire.OpActorPlace, encodeBody(func(e *wire.Enc) {
			e.TaskID(spec.ID)
			e.U32(0)
			e.Str(spec.Namespace)
			e.Str(spec.ActorName)
			e.Str(class)
		}))
		cancel()
		if errors.Is(err, runtime.ErrExists) {
			err = fmt.Errorf("%w: %v", ErrNameTaken, err)
		}
		if err != nil {
			return Actor[S]{id: spec.ID, class: class, err: fmt.Errorf("raygo: create actor %s: %w", class, convert(err))}
		}
	}
	hs, err := submit(spec, o.err, args)
	return Actor[S]{id: spec.ID, class: class, created: Ref[string]{h: hs[0], err: err}, err: err}
}

func submitCall(actor wire.ActorID, herr error, class, method string, opts []Option, args []argMaker) ([]*handle, error) {
	if herr != nil {
		return make([]*handle, 1), herr
	}
	if actor.IsZero() {
		return make([]*handle, 1), fmt.Errorf("raygo: call %s.%s on a zero Actor handle", class, method)
	}
	var o options
	o.apply(opts)
	spec := &wire.TaskSpec{Kind: wire.KindActorCall, Func: class, Method: method, Actor: actor, NumReturns: 1}
	o.fill(spec, true)
	spec.Resources = nil
	return submit(spec, o.err, args)
}

// GetActor finds a named actor of the given type in a namespace ("" means
// "default").
func GetActor[S any](ctx context.Context, class ActorType[S], name, namespace string) (Actor[S], error) {
	c, err := client()
	if err != nil {
		return Actor[S]{}, err
	}
	if namespace == "" {
		namespace = "default"
	}
	body, err := c.Request(ctx, wire.OpActorLookup, encodeBody(func(e *wire.Enc) { e.Str(namespace); e.Str(name) }))
	if errors.Is(err, runtime.ErrNotFound) {
		return Actor[S]{}, fmt.Errorf("raygo: get actor %q: %w: %v", name, ErrActorNotFound, err)
	}
	if err != nil {
		return Actor[S]{}, fmt.Errorf("raygo: get actor %q: %w", name, convert(err))
	}
	d := wire.NewDec(body)
	id := d.TaskID()
	cls := d.Str()
	if d.Err() != nil {
		return Actor[S]{}, fmt.Errorf("raygo: get actor %q: %w", name, d.Err())
	}
	if cls != "" && cls != class.className() {
		return Actor[S]{}, fmt.Errorf("raygo: actor %q in namespace %q is a %s, not a %s", name, namespace, cls, class.className())
	}
	return Actor[S]{id: id, class: class.className()}, nil
}

func errActorType(method string, self any) error {
	return fmt.Errorf("raygo: %s called on an actor holding %T", method, self)
}

func encodeBody(f func(e *wire.Enc)) []byte {
	var e wire.Enc
	f(&e)
	return e.Bytes()
}
