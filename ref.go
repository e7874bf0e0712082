package raygo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/codec"
	"github.com/raygo/raygo/runtime/wire"
)

// Ref is a typed reference to an object: a task's return value or a value
// stored with Put. Get it from any task, actor or the driver; pass it to
// tasks as an argument (the task receives the value); put it inside other
// values. The object lives while any Ref to it exists anywhere in the
// cluster. Refs are cheap to copy; copies share one handle.
type Ref[T any] struct {
	h   *handle
	err error // set when the task could not even be submitted
}

// handle is one process's hold on an object. When the last Ref sharing it
// is garbage collected, the process lets go of the object.
type handle struct {
	id wire.ObjectID
	c  *runtime.Client
}

func newHandle(c *runtime.Client, id wire.ObjectID) *handle {
	h := &handle{id: id, c: c}
	goruntime.AddCleanup(h, func(id wire.ObjectID) { c.Release(id) }, id)
	return h
}

// ID is the object's cluster-wide ID ("" for the zero Ref).
func (r Ref[T]) ID() string {
	if r.h == nil {
		return ""
	}
	return r.h.id.String()
}

func (r Ref[T]) String() string { return "Ref(" + r.ID() + ")" }

// Get waits for the object and returns its value. []byte and numeric
// slices stored in shared memory come back as read-only views of it, with
// no copy: writing to them faults, and their contents belong to the object
// only while r (or another Ref to it) is reachable somewhere (a freed
// object's memory is reused) and until Shutdown. Copy them to keep or
// change them.
func (r Ref[T]) Get(ctx context.Context) (T, error) {
	var zero T
	if r.h == nil {
		if r.err != nil {
			return zero, r.err
		}
		return zero, errors.New("raygo: Get of a zero Ref")
	}
	data, err := r.h.c.Get(ctx, r.h.id)
	if err != nil {
		return zero, convert(err)
	}
	v, err := codec.Decode[T](data, true)
	goruntime.KeepAlive(r.h)
	if err != nil {
		return zero, fmt.Errorf("raygo: object %s: %w", r.h.id, err)
	}
	return v, nil
}

// MarshalBinary encodes the reference, so Refs can travel inside values.
func (r Ref[T]) MarshalBinary() ([]byte, error) {
	if r.h == nil {
		return nil, nil
	}
	var e wire.Enc
	e.ObjectID(r.h.id)
	return e.Bytes(), nil
}

// UnmarshalBinary rebuilds a reference in this process, which then holds
// the object too.
func (r *Ref[T]) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		r.h = nil
		return nil
	}
	d := wire.NewDec(b)
	id := d.ObjectID()
	if d.Err() != nil {
		return fmt.Errorf("raygo: decode Ref: %w", d.Err())
	}
	c, err := client()
	if err != nil {
		return err
	}
	c.Acquire(id)
	r.h = newHandle(c, id)
	return nil
}

func (r Ref[T]) objectID() (wire.ObjectID, bool) {
	if r.h == nil {
		return wire.ObjectID{}, false
	}
	return r.h.id, true
}

func (r Ref[T]) arg(c *runtime.Client, keep *[]any) (wire.Arg, error) {
	if r.h == nil {
		return wire.Arg{}, errors.New("raygo: zero Ref passed as an argument")
	}
	*keep = append(*keep, r.h)
	return wire.Arg{IsRef: true, Ref: r.h.id}, nil
}

// Arg is a task argument of type T: a value (Val) or a Ref[T], whose value
// the task receives once it exists.
type Arg[T any] interface {
	arg(c *runtime.Client, keep *[]any) (wire.Arg, error)
}

type val[T any] struct{ v T }

// Val passes a value as a task argument. Large values (over the inline
// limit) and values holding Refs are stored as objects first.
func Val[T any](v T) Arg[T] { return val[T]{v} }

func (a val[T]) arg(c *runtime.Client, keep *[]any) (wire.Arg, error) {
	enc, err := codec.Encode(a.v)
	if err != nil {
		return wire.Arg{}, err
	}
	refs := containedRefs(a.v)
	if enc.Len() <= c.InlineMax() && len(refs) == 0 {
		return wire.Arg{Data: enc.Bytes()}, nil
	}
	id, err := c.Put(context.Background(), enc, refs)
	if err != nil {
		return wire.Arg{}, err
	}
	h := newHandle(c, id)
	*keep = append(*keep, h)
	return wire.Arg{IsRef: true, Ref: id}, nil
}

// Put stores v as an object and returns a Ref to it. The value is copied:
// later changes to v do not change the object.
func Put[T any](ctx context.Context, v T) (Ref[T], error) {
	c, err := client()
	if err != nil {
		return Ref[T]{}, err
	}
	enc, err := codec.Encode(v)
	if err != nil {
		return Ref[T]{}, fmt.Errorf("raygo: put: %w", err)
	}
	id, err := c.Put(ctx, enc, containedRefs(v))
	if err != nil {
		return Ref[T]{}, fmt.Errorf("raygo: put: %w", convert(err))
	}
	return Ref[T]{h: newHandle(c, id)}, nil
}

// GetAll waits for every ref and returns their values in order. The first
// failure is returned.
func GetAll[T any](ctx context.Context, refs []Ref[T]) ([]T, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	c, err := client()
	if err != nil {
		return nil, err
	}
	// Subscribe to every object first, a batch at a time.
	ids := make([]wire.ObjectID, 0, min(len(refs), runtime.SubscribeBatch))
	for i, r := range refs {
		if r.h != nil {
			ids = append(ids, r.h.id)
		}
		if len(ids) == cap(ids) || i == len(refs)-1 {
			if err := c.Subscribe(ids); err != nil {
				return nil, convert(err)
			}
			ids = ids[:0]
		}
	}
	out := make([]T, len(refs))
	for i, r := range refs {
		v, err := r.Get(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Wait returns once k of refs are ready (or failed), or after timeout
// (timeout <= 0: no limit), or when ctx ends. ready and pending keep the
// order of refs. Only ctx ending is an error.
func Wait[T any](ctx context.Context, refs []Ref[T], k int, timeout time.Duration) (ready, pending []Ref[T], err error) {
	c, err := client()
	if err != nil {
		return nil, nil, err
	}
	if k > len(refs) {
		k = len(refs)
	}
	ids := make([]wire.ObjectID, 0, len(refs))
	chans := make([]<-chan struct{}, len(refs))
	for i, r := range refs {
		if r.h == nil {
			return nil, nil, fmt.Errorf("raygo: Wait: ref %d is the zero Ref", i)
		}
		ids = append(ids, r.h.id)
		chans[i] = c.ReadyChan(r.h.id)
	}
	if err := c.Subscribe(ids); err != nil {
		return nil, nil, convert(err)
	}
	isReady := func(i int) bool {
		select {
		case <-chans[i]:
			return true
		default:
			return false
		}
	}
	count := func() int {
		n := 0
		for i := range chans {
			if chans[i] == nil || isReady(i) {
				n++
			}
		}
		return n
	}
	if count() < k {
		wctx, cancel := context.WithCancel(ctx)
		if timeout > 0 {
			wctx, cancel = context.WithTimeout(ctx, timeout)
		}
		var mu sync.Mutex
		done := 0
		for i := range chans {
			if chans[i] == nil || isReady(i) {
				done++
			}
		}
		signal := make(chan struct{}, 1)
		for i := range chans {
			if chans[i] == nil || isReady(i) {
				continue
			}
			go func(ch <-chan struct{}) {
				select {
				case <-ch:
					mu.Lock()
					done++
					n := done
					mu.Unlock()
					if n >= k {
						select {
						case signal <- struct{}{}:
						default:
						}
					}
				case <-wctx.Done():
				}
			}(chans[i])
		}
		select {
		case <-signal:
		case <-wctx.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	for i, r := range refs {
		if chans[i] == nil || isReady(i) {
			if len(ready) < k || k <= 0 {
				ready = append(ready, r)
				continue
			}
		}
		pending = append(pending, r)
	}
	return ready, pending, nil
}

// Cancel stops the task that makes r: a pending task never runs; a running
// one sees its context cancelled; with force its worker process is killed
// (other tasks sharing that process fail with ErrWorkerDied and are
// retried). Getting r then returns an error matching ErrCancelled.
func Cancel[T any](r Ref[T], force bool) error {
	if r.h == nil {
		return errors.New("raygo: Cancel of a zero Ref")
	}
	return convert(r.h.c.Cancel(r.h.id.Task, force))
}

// ---- refs inside values ----

type objectIDer interface {
	objectID() (wire.ObjectID, bool)
}

var (
	idType      = reflect.TypeFor[objectIDer]()
	mayHoldRefs sync.Map // reflect.Type -> bool
)

// containedRefs finds the Refs inside a value, so the object holding them
// keeps them alive. Types that cannot hold a Ref are skipped at once.
func containedRefs(v any) []wire.ObjectID {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || !typeMayHold(rv.Type(), map[reflect.Type]bool{}) {
		return nil
	}
	var out []wire.ObjectID
	walk(rv, &out, map[uintptr]bool{})
	return out
}

func typeMayHold(t reflect.Type, seen map[reflect.Type]bool) bool {
	if v, ok := mayHoldRefs.Load(t); ok {
		return v.(bool)
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	r := false
	if t.Implements(idType) {
		r = true
	} else {
		switch t.Kind() {
		case reflect.Interface:
			r = true
		case reflect.Pointer, reflect.Slice, reflect.Array:
			r = typeMayHold(t.Elem(), seen)
		case reflect.Map:
			r = typeMayHold(t.Key(), seen) || typeMayHold(t.Elem(), seen)
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				if t.Field(i).IsExported() && typeMayHold(t.Field(i).Type, seen) {
					r = true
					break
				}
			}
		}
	}
	mayHoldRefs.Store(t, r)
	return r
}

func walk(v reflect.Value, out *[]wire.ObjectID, seen map[uintptr]bool) {
	if !v.IsValid() {
		return
	}
	if v.CanInterface() && v.Type().Implements(idType) {
		if id, ok := v.Interface().(objectIDer).objectID(); ok {
			*out = append(*out, id)
		}
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			walk(v.Elem(), out, seen)
		}
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		walk(v.Elem(), out, seen)
	case reflect.Slice, reflect.Array:
		if !typeMayHold(v.Type().Elem(), map[reflect.Type]bool{}) {
			return
		}
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), out, seen)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walk(it.Key(), out, seen)
			walk(it.Value(), out, seen)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if t.Field(i).IsExported() {
				walk(v.Field(i), out, seen)
			}
		}
	}
}
