package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/raygo/raygo/runtime/wire"
)

// Errors a request can come back with, by wire.Rep code.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrTimeout     = errors.New("timed out")
	ErrUnavailable = errors.New("unavailable")
	ErrInvalid     = errors.New("invalid request")
	ErrStoreFull   = errors.New("object store full")
	ErrInfeasible  = errors.New("infeasible")
)

func codeErr(code uint8, msg string) error {
	var base error
	switch code {
	case wire.CodeNotFound:
		base = ErrNotFound
	case wire.CodeExists:
		base = ErrExists
	case wire.CodeTimeout:
		base = ErrTimeout
	case wire.CodeUnavailable:
		base = ErrUnavailable
	case wire.CodeInvalid:
		base = ErrInvalid
	case wire.CodeFull:
		base = ErrStoreFull
	case wire.CodeInfeasible:
		base = ErrInfeasible
	default:
		return errors.New(msg)
	}
	return &repError{msg: msg, base: base}
}

type repError struct {
	msg  string
	base error
}

func (e *repError) Error() string { return e.msg }
func (e *repError) Unwrap() error { return e.base }

func errCode(err error) uint8 {
	switch {
	case err == nil:
		return wire.CodeOK
	case errors.Is(err, ErrNotFound):
		return wire.CodeNotFound
	case errors.Is(err, ErrExists):
		return wire.CodeExists
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return wire.CodeTimeout
	case errors.Is(err, ErrUnavailable):
		return wire.CodeUnavailable
	case errors.Is(err, ErrStoreFull):
		return wire.CodeFull
	case errors.Is(err, ErrInvalid):
		return wire.CodeInvalid
	case errors.Is(err, ErrInfeasible):
		return wire.CodeInfeasible
	}
	return 255
}

// calls matches replies to requests sent on one connection. A reply is
// handed to a function, run on the connection's reading goroutine: it must
// not block (a send on a wire.Conn only queues).
type calls struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]func(*wire.Rep)
	closed  error
}

// start registers a request whose reply goes to the channel returned.
func (c *calls) start() (uint64, chan *wire.Rep, error) {
	ch := make(chan *wire.Rep, 1)
	id, err := c.startFunc(func(r *wire.Rep) { ch <- r })
	return id, ch, err
}

// startFunc registers a request whose reply is handed to done, once.
func (c *calls) startFunc(done func(*wire.Rep)) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return 0, c.closed
	}
	if c.pending == nil {
		c.pending = make(map[uint64]func(*wire.Rep))
	}
	c.next++
	c.pending[c.next] = done
	return c.next, nil
}

func (c *calls) cancel(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// deliver hands a reply to its waiter; false if nobody waits for it.
func (c *calls) deliver(r *wire.Rep) bool {
	c.mu.Lock()
	done, ok := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if ok {
		done(r)
	}
	return ok
}

// fail ends every pending call with err, and every later one.
func (c *calls) fail(err error) {
	c.mu.Lock()
	c.closed = err
	p := c.pending
	c.pending = nil
	c.mu.Unlock()
	for id, done := range p {
		done(&wire.Rep{ID: id, Err: err.Error(), Code: wire.CodeUnavailable})
	}
}

// send starts a request on conn without waiting for its reply, which goes
// to done.
func (c *calls) send(conn *wire.Conn, op wire.Op, body []byte, done func(*wire.Rep)) error {
	id, err := c.startFunc(done)
	if err != nil {
		return err
	}
	if err := conn.Send(&wire.Req{ID: id, Op: op, Body: body}); err != nil {
		c.cancel(id)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// repErr is the error a reply carries, nil for success.
func repErr(r *wire.Rep) error {
	if r.Err != "" || r.Code != wire.CodeOK {
		return codeErr(r.Code, r.Err)
	}
	return nil
}

// call sends a request on conn and waits for its reply.
func (c *calls) call(ctx context.Context, conn *wire.Conn, op wire.Op, body []byte) ([]byte, error) {
	id, ch, err := c.start()
	if err != nil {
		return nil, err
	}
	if err := conn.Send(&wire.Req{ID: id, Op: op, Body: body}); err != nil {
		c.cancel(id)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	select {
	case r := <-ch:
		if err := repErr(r); err != nil {
			return nil, err
		}
		return r.Body, nil
	case <-ctx.Done():
		c.cancel(id)
		return nil, ctx.Err()
	}
}

func encode(f func(e *wire.Enc)) []byte {
	var e wire.Enc
	f(&e)
	return e.Bytes()
}

func decodeBody(b []byte, f func(d *wire.Dec)) error {
	d := wire.NewDec(b)
	f(d)
	if d.Err() == nil && d.Remaining() != 0 {
		return fmt.Errorf("%w: %d trailing bytes in request", wire.ErrMalformed, d.Remaining())
	}
	return d.Err()
}

func reply(conn *wire.Conn, id uint64, body []byte, err error) {
	r := &wire.Rep{ID: id, Body: body}
	if err != nil {
		r.Err = err.Error()
		r.Code = errCode(err)
		r.Body = nil
	}
	conn.Send(r)
}
