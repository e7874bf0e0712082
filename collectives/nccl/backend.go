//go:build cgo && unix

package nccl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/collectives/backend"
)

// Backend is one rank's NCCL communicator. It implements backend.Backend
// and the optional Reducer, Gatherer, Scatterer and AllToAller on host
// slices, staged through device memory, and offers the same collectives
// on device buffers (AllreduceDevice and the others).
//
// Calls on the group's communicator (every collective, on host slices or
// device buffers) run one at a time and in the same order on every rank.
// Send and Recv use a communicator of their own for each direction and
// peer, so they may run concurrently with each other.
//
// Every CUDA and NCCL call runs on a goroutine locked to its OS thread
// with this rank's device made current, since the current device belongs
// to the thread. A call waits by polling its stream (cudaStreamQuery) and
// the communicator's asynchronous error, so that it can return when ctx
// ends; it then aborts the communicator (ncclCommAbort), after which every
// call fails with ErrAborted.
//
// Goroutines of its own: New joins the communicator on one, which ends
// with ncclCommInitRank and aborts a communicator that arrives after New
// gave up; each pair's communicator is built on one, which ends when it is
// built; Close aborts on one when a call is blocked inside NCCL. Locks: a
// lane's mu before its cmu; pairs.mu is never held with a lane's lock.
type Backend struct {
	lib        *library
	group      string
	rank, size int
	dev        int
	opts       options
	main       *lane  // the group's communicator
	pairs      *pairs // Send and Recv; nil when OptP2P is false or size is 1
	closed     atomic.Bool
}

var (
	_ backend.Backend    = (*Backend)(nil)
	_ backend.Reducer    = (*Backend)(nil)
	_ backend.Gatherer   = (*Backend)(nil)
	_ backend.Scatterer  = (*Backend)(nil)
	_ backend.AllToAller = (*Backend)(nil)
)

// Probe loads NCCL and the CUDA runtime, as New would, and counts the
// visible devices.
func Probe() (Info, error) {
	lib, err := load()
	if err != nil {
		return Info{}, err
	}
	info := Info{NCCLPath: lib.ncclPath, CUDARTPath: lib.cudartPath, Version: lib.version}
	info.Devices, err = lib.deviceCount()
	return info, err
}

// New builds rank cfg.Rank's communicator: it loads the libraries, picks
// the device, shares rank 0's NCCL unique id through cfg.Rendezvous and
// joins the communicator (ncclCommInitRank), which returns once every
// rank has joined. If ctx ends first, New returns an error wrapping
// ctx.Err().
func New(ctx context.Context, cfg backend.Config) (*Backend, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	o, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	lib, err := load()
	if err != nil {
		return nil, err
	}
	b := &Backend{lib: lib, group: cfg.Group, rank: cfg.Rank, size: cfg.Size, opts: o}
	if err := b.start(ctx, cfg); err != nil {
		b.Close()
		return nil, fmt.Errorf("nccl: group %q rank %d: %w", cfg.Group, cfg.Rank, err)
	}
	return b, nil
}

func (b *Backend) start(ctx context.Context, cfg backend.Config) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := b.lib.deviceCount()
	if err == nil && n == 0 {
		err = errors.New("cudaGetDeviceCount found no device")
	}
	if err != nil {
		return fmt.Errorf("no usable CUDA device (CUDA_VISIBLE_DEVICES=%q): %w", os.Getenv("CUDA_VISIBLE_DEVICES"), err)
	}
	if b.opts.device >= 0 {
		if b.opts.device >= n {
			return fmt.Errorf("option %s=%d, but %d CUDA devices are visible", OptDevice, b.opts.device, n)
		}
		b.dev = b.opts.device
	} else {
		b.dev = localIndex(cfg.Members, cfg.Rank) % n
	}
	if err := b.lib.setDevice(b.dev); err != nil {
		return err
	}
	b.main = &lane{lib: b.lib, dev: b.dev, rank: b.rank, peer: -1, limit: b.opts.staging}
	if b.main.stream, err = b.lib.streamCreate(); err != nil {
		return err
	}

	var id [128]byte
	if b.rank == 0 {
		if id, err = b.lib.uniqueID(); err != nil {
			return err
		}
	}
	if b.size > 1 {
		var mine []byte
		if b.rank == 0 {
			mine = id[:]
		}
		v, err := cfg.Rendezvous.Broadcast(ctx, "nccl.id", 0, mine)
		if err != nil {
			return fmt.Errorf("sharing the NCCL unique id: %w", err)
		}
		if len(v) != len(id) {
			return fmt.Errorf("rank 0 shared an NCCL unique id of %d bytes, want %d", len(v), len(id))
		}
		copy(id[:], v)
		if b.opts.p2p {
			if b.pairs, err = sharePairIDs(ctx, b, cfg.Rendezvous); err != nil {
				return err
			}
		}
	}
	b.main.comm, err = b.initComm(ctx, id)
	return err
}

// initComm joins the group's communicator on a goroutine of its own, so
// that New can return when ctx ends; a communicator that is made after
// that is aborted.
func (b *Backend) initComm(ctx context.Context, id [128]byte) (uintptr, error) {
	type result struct {
		comm uintptr
		err  error
	}
	var mu sync.Mutex
	abandoned := false
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var r result
		if r.err = b.lib.setDevice(b.dev); r.err == nil {
			r.comm, r.err = b.lib.initRank(b.size, id, b.rank)
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if r.comm != 0 {
				b.lib.abort(r.comm)
			}
			return
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r.comm, r.err
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case r := <-done:
		return r.comm, r.err
	default:
	}
	abandoned = true
	return 0, fmt.Errorf("ncclCommInitRank of %d ranks did not finish before the context ended (NCCL does not say which ranks have not joined): %w", b.size, ctx.Err())
}

// Rank is this backend's rank in its group.
func (b *Backend) Rank() int { return b.rank }

// Size is the number of ranks in the group.
func (b *Backend) Size() int { return b.size }

// Device is the CUDA device (an index among the visible ones) this rank
// uses.
func (b *Backend) Device() int { return b.dev }

// Version is the loaded NCCL's version.
func (b *Backend) Version() Version { return b.lib.version }

// Close aborts the rank's communicators and frees their streams and
// staging memory. It does not wait for other ranks. A call in flight on
// another goroutine returns ErrAborted.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	var errs []error
	if b.pairs != nil {
		errs = append(errs, b.pairs.close())
	}
	if b.main != nil {
		errs = append(errs, b.main.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nccl: group %q rank %d: close: %w", b.group, b.rank, err)
	}
	return nil
}

// failf names the group, rank and call in err.
func (b *Backend) failf(err error, format string, args ...any) error {
	return fmt.Errorf("nccl: group %q rank %d: %s: %w", b.group, b.rank, fmt.Sprintf(format, args...), err)
}

// run runs f with l held, on a locked thread with the device set. The
// format and args name the call in an error.
func (b *Backend) run(l *lane, f func(l *lane) error, format string, args ...any) error {
	if b.closed.Load() {
		return b.failf(ErrClosed, format, args...)
	}
	err := l.do(f)
	if err != nil {
		return b.failf(err, format, args...)
	}
	return nil
}

// onDevice runs f on a locked thread with the device set.
func (b *Backend) onDevice(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.lib.setDevice(b.dev); err != nil {
		return err
	}
	return f()
}

// lane is a communicator with its stream and its staging memory.
type lane struct {
	lib   *library
	dev   int
	rank  int // this rank in the group
	peer  int // the other rank of a pair's communicator; -1 for the group's
	limit int // staging bound (OptStagingBytes)

	// mu is held by the call using the lane; it guards what follows.
	mu       sync.Mutex
	stream   uintptr
	buf      uintptr // staging memory on the device
	capacity int
	released bool
	// releaseLater asks the call in flight to free the lane when it ends.
	releaseLater atomic.Bool

	// cmu is held across every NCCL call on comm (and by abort), so that
	// Close cannot free the communicator under a call. Order: mu, then cmu.
	cmu  sync.Mutex
	comm uintptr // 0 once aborted
	why  error   // why it was aborted
}

// do runs f with the lane held, on a locked thread with the device set.
func (l *lane) do(f func(l *lane) error) error {
	l.mu.Lock()
	err := func() error {
		if l.released {
			return ErrClosed
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := l.lib.setDevice(l.dev); err != nil {
			return err
		}
		return f(l)
	}()
	l.mu.Unlock()
	if l.releaseLater.Load() && l.mu.TryLock() {
		l.release()
		l.mu.Unlock()
	}
	return err
}

// grow makes the staging memory hold at least n bytes.
func (l *lane) grow(n int) error {
	if n <= l.capacity {
		return nil
	}
	size := max(n, min(2*l.capacity, l.limit))
	if l.buf != 0 {
		if err := l.lib.free(l.buf); err != nil {
			return err
		}
		l.buf, l.capacity = 0, 0
	}
	p, err := l.lib.malloc(size)
	if err != nil {
		return err
	}
	l.buf, l.capacity = p, size
	return nil
}

func (l *lane) h2d(off int, src []byte) error { return l.lib.h2d(l.buf+uintptr(off), src, l.stream) }
func (l *lane) d2h(dst []byte, off int) error { return l.lib.d2h(dst, l.buf+uintptr(off), l.stream) }

// use runs f, which enqueues work on the communicator, with cmu held.
// Enqueuing usually returns at once, but NCCL may connect to peers first
// (the first send or receive between two ranks, and from NCCL 2.22 the
// first collective of each kind), and that wait, inside NCCL, does not end
// with ctx.
func (l *lane) use(f func(comm uintptr) error) error {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	if l.comm == 0 {
		return l.why
	}
	return f(l.comm)
}

// sync waits for the lane's stream.
func (l *lane) sync(ctx context.Context, op string) error { return l.wait(ctx, l.stream, op) }

// wait polls stream s until its work is done. It aborts the communicator
// when ctx ends or the communicator reports an asynchronous error.
func (l *lane) wait(ctx context.Context, s uintptr, op string) error {
	err := poll(ctx, l.lib, s, l.checkAsync)
	switch {
	case err == nil:
		l.cmu.Lock()
		defer l.cmu.Unlock()
		return l.why // the communicator may have been aborted meanwhile
	case ctx.Err() != nil && err == ctx.Err():
		l.abort(err)
		if l.peer >= 0 {
			return &backend.WaitError{Op: op, Rank: l.rank, Missing: []int{l.peer}, Err: err}
		}
		return fmt.Errorf("%s did not finish before the context ended (NCCL does not say which ranks have not arrived): %w; %w", op, err, ErrAborted)
	}
	return err
}

// checkAsync returns the communicator's asynchronous error, after
// aborting it, or why it was aborted.
func (l *lane) checkAsync() error {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	if l.comm == 0 {
		return l.why
	}
	if err := l.lib.asyncError(l.comm); err != nil {
		l.abortLocked(err)
		return fmt.Errorf("%w; %w", err, ErrAborted)
	}
	return nil
}

func (l *lane) abort(why error) error {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	return l.abortLocked(why)
}

func (l *lane) abortLocked(why error) error {
	if l.comm == 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := l.lib.setDevice(l.dev)
	if err == nil {
		err = l.lib.abort(l.comm)
	}
	l.comm = 0
	l.why = fmt.Errorf("%w (%w)", ErrAborted, why)
	return err
}

// close aborts the communicator and frees the lane now, or when the call
// in flight ends. A call blocked inside NCCL (see use) holds cmu; the
// abort then waits for it on a goroutine of its own.
func (l *lane) close() error {
	var err error
	if l.cmu.TryLock() {
		err = l.abortLocked(ErrClosed)
		l.cmu.Unlock()
	} else {
		go l.abort(ErrClosed)
	}
	l.releaseLater.Store(true)
	if l.mu.TryLock() {
		err = errors.Join(err, l.release())
		l.mu.Unlock()
	}
	return err
}

// release frees the staging memory and the stream; l.mu is held.
func (l *lane) release() error {
	if l.released {
		return nil
	}
	l.released = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := l.lib.setDevice(l.dev); err != nil {
		return err
	}
	var errs []error
	if l.buf != 0 {
		errs = append(errs, l.lib.free(l.buf))
		l.buf, l.capacity = 0, 0
	}
	if l.stream != 0 {
		errs = append(errs, l.lib.streamDestroy(l.stream))
		l.stream = 0
	}
	return errors.Join(errs...)
}

// poll waits until stream s has no work left, running check (if not nil)
// between queries. It returns ctx.Err() itself when ctx ends.
func poll(ctx context.Context, lib *library, s uintptr, check func() error) error {
	for i := 0; ; i++ {
		switch r := lib.streamQuery(s); r {
		case cudaSuccess:
			return nil
		case cudaErrorNotReady:
		default:
			return lib.cudaErr("cudaStreamQuery", r)
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		pause(i)
	}
}

// pause backs off between stream queries: a GPU collective often takes
// tens of microseconds, so the first queries come back to back; then the
// thread yields, then sleeps, briefly for the first few milliseconds.
func pause(i int) {
	switch {
	case i < 50:
	case i < 200:
		runtime.Gosched()
	case i < 300:
		time.Sleep(20 * time.Microsecond)
	default:
		time.Sleep(200 * time.Microsecond)
	}
}
