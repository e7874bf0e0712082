//go:build mpi

package mpi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"unsafe"

	"github.com/raygo/raygo/collectives/backend"
)

func init() { backend.Register(Name, newComm) }

// comm is one group's backend: a duplicate of MPI_COMM_WORLD, so that
// its messages never meet another group's.
type comm struct {
	c          commHandle
	group      string
	rank, size int
	maxCount   int

	mu     sync.Mutex
	broken error // set when a caller abandoned an operation in flight
	closed bool

	// Owned by the MPI thread: operations in flight on c, and whether c
	// is to be freed when they are done (Open MPI can crash completing
	// an operation on a freed communicator).
	inFlight     int
	freeWhenIdle bool
}

var (
	_ backend.Backend    = (*comm)(nil)
	_ backend.Reducer    = (*comm)(nil)
	_ backend.Gatherer   = (*comm)(nil)
	_ backend.Scatterer  = (*comm)(nil)
	_ backend.AllToAller = (*comm)(nil)
)

// nameRecord is what each rank shares when a communicator is made, to
// check that every rank made it for the same group: a hash of the group
// name, then its first 56 bytes (for the error).
func nameRecord(group string) []byte {
	h := fnv.New64a()
	h.Write([]byte(group))
	rec := make([]byte, 64)
	binary.LittleEndian.PutUint64(rec, h.Sum64())
	copy(rec[8:], group)
	return rec
}

func newComm(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	o, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	w, err := Init(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkWorld(&cfg, w, "MPI_COMM_WORLD"); err != nil {
		return nil, err
	}
	b := &comm{group: cfg.Group, rank: cfg.Rank, size: cfg.Size, maxCount: o.maxCount}

	// MPI_Comm_idup: a collective over the world, so every rank must make
	// its groups in the same order.
	slot := newCommSlot()
	c := &call{start: func() ([]request, error) {
		q := []request{requestNull()}
		return q, cCommIdup(slot, &q[0])
	}}
	err = eng.do(ctx, c, func(err error) error {
		return fmt.Errorf("mpi: group %q, rank %d: MPI_Comm_idup did not complete (the other ranks have not made the group): %w", cfg.Group, cfg.Rank, err)
	})
	if err != nil {
		// The slot stays allocated: MPI may still write into it.
		return nil, err
	}
	b.c = slot.get() // with MPI_COMM_WORLD's MPI_ERRORS_RETURN
	slot.free()

	// Every rank must have made this communicator for this group.
	mine := nameRecord(cfg.Group)
	names := make([]byte, len(mine)*b.size)
	if err := b.Allgather(ctx, mine, names); err != nil {
		b.Close()
		return nil, err
	}
	for r := 0; r < b.size; r++ {
		if rec := names[r*len(mine) : (r+1)*len(mine)]; !bytes.Equal(rec, mine) {
			b.Close()
			return nil, fmt.Errorf("mpi: group %q, rank %d: rank %d made group %q at the same point: ranks must make groups on the mpi backend in the same order, as MPI requires for communicators", cfg.Group, b.rank, r, bytes.TrimRight(rec[8:], "\x00"))
		}
	}
	return b, nil
}

// usable says why the backend cannot take a call, if it cannot.
func (b *comm) usable(op string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return fmt.Errorf("mpi: %s on rank %d of group %q: the backend is closed", op, b.rank, b.group)
	case b.broken != nil:
		return fmt.Errorf("mpi: %s on rank %d of group %q: unusable since an earlier call was abandoned: %w", op, b.rank, b.group, b.broken)
	}
	return nil
}

// ctxError makes the error for a call whose ctx ended first and marks
// the backend broken: the abandoned operation is still in flight in MPI.
func (b *comm) ctxError(op string) func(error) error {
	return func(err error) error {
		err = fmt.Errorf("mpi: %s on rank %d of group %q: stopped waiting (MPI cannot say which ranks have not arrived, and cannot cancel the operation, which stays in flight): %w", op, b.rank, b.group, err)
		b.mu.Lock()
		if b.broken == nil {
			b.broken = err
		}
		b.mu.Unlock()
		return err
	}
}

// wrap names the group and rank in an MPI failure.
func (b *comm) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("mpi: %s on rank %d of group %q: %w", op, b.rank, b.group, err)
}

// run hands a call to the MPI thread and waits for it.
func (b *comm) run(ctx context.Context, op string, c *call) error {
	c.owner = b
	if err := b.usable(op); err != nil {
		c.pin.Unpin()
		return err
	}
	return b.wrap(op, eng.do(ctx, c, b.ctxError(op)))
}

// ptr pins buf for c and returns its address; nil for an empty buf.
func (c *call) ptr(buf []byte) unsafe.Pointer {
	if len(buf) == 0 {
		return nil
	}
	c.pin.Pin(&buf[0])
	return unsafe.Pointer(&buf[0])
}

// chunks calls f for each run of at most max elements of n (once, with
// zero elements, when n is 0).
func chunks(n, max int, f func(off, cnt int) error) error {
	if n == 0 {
		return f(0, 0)
	}
	for off := 0; off < n; off += max {
		if err := f(off, min(max, n-off)); err != nil {
			return err
		}
	}
	return nil
}

func add(p unsafe.Pointer, off int) unsafe.Pointer {
	if p == nil {
		return nil
	}
	return unsafe.Add(p, off)
}

func same(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func checkReduce(op string, n int, dt backend.DType, o backend.Op) error {
	switch {
	case !dt.Valid():
		return fmt.Errorf("mpi: %s: unknown element type %v", op, dt)
	case o < backend.Sum || o > backend.Max:
		return fmt.Errorf("mpi: %s: reduction %v is not one the backend takes (sum, prod, min, max)", op, o)
	case n%dt.Size() != 0:
		return fmt.Errorf("mpi: %s: %d bytes are not a whole number of %v elements", op, n, dt)
	}
	return nil
}

func checkCount(op string, n int) error {
	if n > math.MaxInt32 {
		return fmt.Errorf("mpi: %s: %d bytes per rank is more than one MPI call takes (%d)", op, n, math.MaxInt32)
	}
	return nil
}

// Allreduce reduces with MPI_Iallreduce, in runs of at most mpi.max_count
// elements; send and recv the same slice is MPI_IN_PLACE.
func (b *comm) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if err := checkReduce("allreduce", len(send), dt, op); err != nil {
		return err
	}
	if len(send) != len(recv) {
		return fmt.Errorf("mpi: allreduce: send holds %d bytes and receive %d", len(send), len(recv))
	}
	es := dt.Size()
	c := &call{}
	sp, rp := c.ptr(send), c.ptr(recv)
	inPlace := len(send) == 0 || same(send, recv)
	c.start = func() (q []request, err error) {
		err = chunks(len(send)/es, b.maxCount, func(off, cnt int) error {
			q = append(q, requestNull())
			return cIallreduce(add(sp, off*es), add(rp, off*es), inPlace, cnt, uint8(dt), uint8(op), b.c, &q[len(q)-1])
		})
		return q, err
	}
	return b.run(ctx, "allreduce", c)
}

// Reduce reduces to root with MPI_Ireduce; recv is used at root only.
func (b *comm) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	if err := checkReduce("reduce", len(send), dt, op); err != nil {
		return err
	}
	if err := b.checkRoot("reduce", root); err != nil {
		return err
	}
	if b.rank == root && len(recv) != len(send) {
		return fmt.Errorf("mpi: reduce: root's send holds %d bytes and receive %d", len(send), len(recv))
	}
	es := dt.Size()
	c := &call{}
	sp := c.ptr(send)
	var rp unsafe.Pointer
	inPlace := false
	if b.rank == root {
		rp = c.ptr(recv)
		inPlace = len(send) == 0 || same(send, recv)
	}
	c.start = func() (q []request, err error) {
		err = chunks(len(send)/es, b.maxCount, func(off, cnt int) error {
			q = append(q, requestNull())
			return cIreduce(add(sp, off*es), add(rp, off*es), inPlace, cnt, uint8(dt), uint8(op), root, b.c, &q[len(q)-1])
		})
		return q, err
	}
	return b.run(ctx, "reduce", c)
}

// ReduceScatter uses MPI_Ireduce_scatter_block.
func (b *comm) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if err := checkReduce("reducescatter", len(recv), dt, op); err != nil {
		return err
	}
	if len(send) != b.size*len(recv) {
		return fmt.Errorf("mpi: reducescatter: send holds %d bytes, want %d ranks × %d", len(send), b.size, len(recv))
	}
	n := len(recv) / dt.Size()
	if n > math.MaxInt32 {
		return checkCount("reducescatter", len(recv))
	}
	c := &call{}
	sp, rp := c.ptr(send), c.ptr(recv)
	c.start = func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIreduceScatter(sp, rp, n, uint8(dt), uint8(op), b.c, &q[0])
	}
	return b.run(ctx, "reducescatter", c)
}

// Broadcast uses MPI_Ibcast, in runs of at most mpi.max_count bytes.
func (b *comm) Broadcast(ctx context.Context, buf []byte, root int) error {
	if err := b.checkRoot("broadcast", root); err != nil {
		return err
	}
	c := &call{}
	p := c.ptr(buf)
	c.start = func() (q []request, err error) {
		err = chunks(len(buf), b.maxCount, func(off, cnt int) error {
			q = append(q, requestNull())
			return cIbcast(add(p, off), cnt, root, b.c, &q[len(q)-1])
		})
		return q, err
	}
	return b.run(ctx, "broadcast", c)
}

// Allgather uses MPI_Iallgather.
func (b *comm) Allgather(ctx context.Context, send, recv []byte) error {
	if len(recv) != b.size*len(send) {
		return fmt.Errorf("mpi: allgather: receive holds %d bytes, want %d ranks × %d", len(recv), b.size, len(send))
	}
	if err := checkCount("allgather", len(send)); err != nil {
		return err
	}
	c := &call{}
	sp, rp := c.ptr(send), c.ptr(recv)
	c.start = func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIallgather(sp, rp, len(send), b.c, &q[0])
	}
	return b.run(ctx, "allgather", c)
}

// Gather uses MPI_Igather; recv is used at root only.
func (b *comm) Gather(ctx context.Context, send, recv []byte, root int) error {
	if err := b.checkRoot("gather", root); err != nil {
		return err
	}
	if b.rank == root && len(recv) != b.size*len(send) {
		return fmt.Errorf("mpi: gather: receive holds %d bytes, want %d ranks × %d", len(recv), b.size, len(send))
	}
	if err := checkCount("gather", len(send)); err != nil {
		return err
	}
	c := &call{}
	sp := c.ptr(send)
	var rp unsafe.Pointer
	if b.rank == root {
		rp = c.ptr(recv)
	}
	c.start = func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIgather(sp, rp, len(send), root, b.c, &q[0])
	}
	return b.run(ctx, "gather", c)
}

// Scatter uses MPI_Iscatter; send is used at root only.
func (b *comm) Scatter(ctx context.Context, send, recv []byte, root int) error {
	if err := b.checkRoot("scatter", root); err != nil {
		return err
	}
	if b.rank == root && len(send) != b.size*len(recv) {
		return fmt.Errorf("mpi: scatter: send holds %d bytes, want %d ranks × %d", len(send), b.size, len(recv))
	}
	if err := checkCount("scatter", len(recv)); err != nil {
		return err
	}
	c := &call{}
	rp := c.ptr(recv)
	var sp unsafe.Pointer
	if b.rank == root {
		sp = c.ptr(send)
	}
	c.start = func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIscatter(sp, rp, len(recv), root, b.c, &q[0])
	}
	return b.run(ctx, "scatter", c)
}

// AllToAll uses MPI_Ialltoall.
func (b *comm) AllToAll(ctx context.Context, send, recv []byte) error {
	if len(send) != len(recv) || len(send)%b.size != 0 {
		return fmt.Errorf("mpi: alltoall: send holds %d bytes and receive %d; both must be the same multiple of %d ranks", len(send), len(recv), b.size)
	}
	n := len(send) / b.size
	if err := checkCount("alltoall", n); err != nil {
		return err
	}
	c := &call{}
	sp, rp := c.ptr(send), c.ptr(recv)
	c.start = func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIalltoall(sp, rp, n, b.c, &q[0])
	}
	return b.run(ctx, "alltoall", c)
}

// Barrier uses MPI_Ibarrier.
func (b *comm) Barrier(ctx context.Context) error {
	c := &call{start: func() ([]request, error) {
		q := []request{requestNull()}
		return q, cIbarrier(b.c, &q[0])
	}}
	return b.run(ctx, "barrier", c)
}

// Send uses MPI_Isend, in runs of at most mpi.max_count bytes (the
// receiver must use the same max_count).
func (b *comm) Send(ctx context.Context, buf []byte, peer int) error {
	if err := b.checkPeer("send", peer); err != nil {
		return err
	}
	c := &call{}
	p := c.ptr(buf)
	c.start = func() (q []request, err error) {
		err = chunks(len(buf), b.maxCount, func(off, cnt int) error {
			q = append(q, requestNull())
			return cIsend(add(p, off), cnt, peer, b.c, &q[len(q)-1])
		})
		return q, err
	}
	return b.runPeer(ctx, "send", peer, c)
}

// Recv uses MPI_Irecv and checks that the message filled buf.
func (b *comm) Recv(ctx context.Context, buf []byte, peer int) error {
	if err := b.checkPeer("recv", peer); err != nil {
		return err
	}
	c := &call{}
	p := c.ptr(buf)
	var want []int
	c.start = func() (q []request, err error) {
		err = chunks(len(buf), b.maxCount, func(off, cnt int) error {
			q = append(q, requestNull())
			want = append(want, cnt)
			return cIrecv(add(p, off), cnt, peer, b.c, &q[len(q)-1])
		})
		return q, err
	}
	c.received = func(i, n int) error {
		if n != want[i] {
			return fmt.Errorf("rank %d sent %d bytes, want %d", peer, n, want[i])
		}
		return nil
	}
	return b.runPeer(ctx, "recv", peer, c)
}

// runPeer is run for point-to-point calls, which know the rank they wait
// for.
func (b *comm) runPeer(ctx context.Context, op string, peer int, c *call) error {
	c.owner = b
	if err := b.usable(op); err != nil {
		c.pin.Unpin()
		return err
	}
	err := eng.do(ctx, c, func(err error) error {
		b.ctxError(op)(err)
		return &backend.WaitError{Op: "mpi " + op + " in group " + b.group, Rank: b.rank, Missing: []int{peer}, Err: err}
	})
	if _, ok := err.(*backend.WaitError); ok || err == nil {
		return err
	}
	return b.wrap(op, err)
}

func (b *comm) checkRoot(op string, root int) error {
	if root < 0 || root >= b.size {
		return fmt.Errorf("mpi: %s: root %d is not a rank of group %q (0..%d)", op, root, b.group, b.size-1)
	}
	return nil
}

func (b *comm) checkPeer(op string, peer int) error {
	if peer < 0 || peer >= b.size || peer == b.rank {
		return fmt.Errorf("mpi: %s: peer %d is not another rank of group %q (size %d, this is rank %d)", op, peer, b.group, b.size, b.rank)
	}
	return nil
}

// Close frees the communicator, at once or, while operations abandoned
// on it are still in flight, once they complete.
func (b *comm) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	c := &call{start: func() ([]request, error) {
		if b.inFlight > 0 {
			b.freeWhenIdle = true
			return nil, nil
		}
		return nil, cCommFree(b.c)
	}}
	return b.wrap("close", eng.do(context.Background(), c, func(err error) error { return err }))
}
