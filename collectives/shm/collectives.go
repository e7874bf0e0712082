package shm

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// Collective calls move through the two stages in steps. Step g (counted
// from 1, identical on every rank) uses stage g&1: its producers write
// their slots and publish arrive = g; its consumers wait for that, read,
// and publish release = g. A rank writes stage g&1 only after every rank
// has released step g-2 (acquire), so one stage is written while the
// other is read. Allreduce and Reduce add a middle phase: each rank
// reduces its share of the step and publishes reduced = g.

// An allreduce (or reduce) of n bytes with n×size <= localMax, or n <=
// localMin, is reduced whole by every rank from the others' slots rather
// than shared out: one wait instead of two, for size-1 times the
// reduction work. Measured with 2 ranks, it was faster at 4 and 16 KiB
// and as fast at 64 KiB. Variables so that benchmarks can move them.
var (
	localMax = 32 << 10
	localMin = 1 << 10
)

// A call describes a collective call, so that ranks can check that they
// agree on it (see checkCall).
type call struct {
	kind kind
	dt   backend.DType
	op   backend.Op
	root int // -1 when the call has none
	n    int // the length that must agree across ranks, in bytes
}

type kind uint8

const (
	kAllreduce kind = iota + 1
	kReduce
	kBroadcast
	kAllgather
	kReduceScatter
	kGather
	kScatter
	kAllToAll
	kBarrier
)

var kindNames = [...]string{"", "allreduce", "reduce", "broadcast", "allgather", "reducescatter", "gather", "scatter", "alltoall", "barrier"}

func (k kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("call(%d)", uint8(k))
}

func (c call) words() (uint64, uint64) {
	return uint64(c.kind) | uint64(c.dt)<<8 | uint64(c.op)<<16 | uint64(uint32(c.root+1))<<32, uint64(c.n)
}

func callFrom(w0, w1 uint64) call {
	return call{kind: kind(w0), dt: backend.DType(w0 >> 8), op: backend.Op(w0 >> 16), root: int(uint32(w0>>32)) - 1, n: int(w1)}
}

func (c call) String() string {
	s := fmt.Sprintf("%v of %d bytes", c.kind, c.n)
	if c.dt != 0 {
		s += fmt.Sprintf(" of %v (%v)", c.dt, c.op)
	}
	if c.root >= 0 {
		s += fmt.Sprintf(" with root %d", c.root)
	}
	return s
}

// publish records c as this rank's call at step g and marks the step's
// data written. The caller has acquired the stage.
func (b *Backend) publish(g uint64, c call) {
	w0, w1 := c.words()
	d := b.desc[b.rank][g&1]
	d[0].Store(w0)
	d[1].Store(w1)
	b.ctr[kArrive][b.rank].Store(g)
}

// checkCall compares the calls the producers published for step g with
// this rank's.
func (b *Backend) checkCall(g uint64, c call, producers []int) error {
	w0, w1 := c.words()
	for _, p := range producers {
		d := b.desc[p][g&1]
		if v0, v1 := d[0].Load(), d[1].Load(); v0 != w0 || v1 != w1 {
			return b.errorf(c.kind.String(), "%w: rank %d called %v, this rank %v", ErrMismatch, p, callFrom(v0, v1), c)
		}
	}
	return nil
}

// pipeline runs a call of the given steps with one phase: produce(i, st)
// writes this rank's part of step i into stage st, consume(i, st) reads
// step i. Step i+1 is produced before step i is consumed.
func (b *Backend) pipeline(ctx context.Context, c call, steps int, producers []int, produces, consumes bool, produce, consume func(i, st int)) error {
	op := c.kind.String()
	g0 := b.step + 1
	b.step += uint64(steps)
	put := func(i int) error {
		g := g0 + uint64(i)
		if err := b.acquire(ctx, op, g); err != nil {
			return err
		}
		produce(i, int(g&1))
		b.publish(g, c)
		return nil
	}
	if produces && steps > 0 {
		if err := put(0); err != nil {
			return err
		}
	}
	for i := 0; i < steps; i++ {
		g := g0 + uint64(i)
		if produces && i+1 < steps {
			if err := put(i + 1); err != nil {
				return err
			}
		}
		if consumes {
			if err := b.await(ctx, op, b.ctr[kArrive], g, producers); err != nil {
				return err
			}
			if i == 0 {
				if err := b.checkCall(g, c, producers); err != nil {
					return err
				}
			}
			consume(i, int(g&1))
		}
		b.ctr[kRelease][b.rank].Store(g)
	}
	return nil
}

func (b *Backend) checkReduce(op string, dt backend.DType, rop backend.Op) error {
	if !dt.Valid() {
		return b.errorf(op, "invalid element type %v", dt)
	}
	if !rop.Valid() {
		return b.errorf(op, "invalid reduction %v", rop)
	}
	return nil
}

// Allreduce sets recv to the reduction of every rank's send.
func (b *Backend) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) (err error) {
	if err := b.enter("allreduce"); err != nil {
		return err
	}
	defer b.exit(&err)
	if err := b.checkReduce("allreduce", dt, op); err != nil {
		return err
	}
	if len(send) != len(recv) || len(send)%dt.Size() != 0 {
		return b.errorf("allreduce", "send holds %d bytes and receive %d; both must be the same multiple of %d (%v)", len(send), len(recv), dt.Size(), dt)
	}
	return b.reduce(ctx, call{kAllreduce, dt, op, -1, len(send)}, send, recv)
}

// Reduce sets root's recv to the reduction of every rank's send. recv is
// not used on other ranks.
func (b *Backend) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) (err error) {
	if err := b.enter("reduce"); err != nil {
		return err
	}
	defer b.exit(&err)
	if err := b.checkReduce("reduce", dt, op); err != nil {
		return err
	}
	if root < 0 || root >= b.size {
		return b.errorf("reduce", "root %d of %d ranks", root, b.size)
	}
	if len(send)%dt.Size() != 0 || b.rank == root && len(recv) != len(send) {
		return b.errorf("reduce", "send holds %d bytes and receive %d; both must be the same multiple of %d (%v)", len(send), len(recv), dt.Size(), dt)
	}
	return b.reduce(ctx, call{kReduce, dt, op, root, len(send)}, send, recv)
}

func (b *Backend) reduce(ctx context.Context, c call, send, recv []byte) error {
	n := len(send)
	if n == 0 {
		return nil
	}
	if b.size == 1 {
		copy(recv, send)
		return nil
	}
	if (n*b.size <= localMax || n <= localMin) && n <= b.geo.slot {
		return b.reduceLocal(ctx, c, send, recv)
	}
	return b.reduceTuned(ctx, c, send, recv)
}

// reduceLocal: every rank copies its data into its slot, and each rank
// that needs the result reduces all slots itself.
func (b *Backend) reduceLocal(ctx context.Context, c call, send, recv []byte) error {
	n := len(send)
	op := c.kind.String()
	g := b.step + 1
	b.step = g
	st := int(g & 1)
	if err := b.acquire(ctx, op, g); err != nil {
		return err
	}
	copy(b.slots[st][b.rank][:n], send)
	b.publish(g, c)
	if c.root < 0 || c.root == b.rank {
		if err := b.await(ctx, op, b.ctr[kArrive], g, b.others); err != nil {
			return err
		}
		if err := b.checkCall(g, c, b.others); err != nil {
			return err
		}
		srcs := b.srcs
		for j := range srcs {
			srcs[j] = b.slots[st][j][:n]
		}
		srcs[b.rank] = send
		b.combine(c.dt, c.op, recv, nil, srcs)
	}
	b.ctr[kRelease][b.rank].Store(g)
	return nil
}

// shares splits a chunk of l bytes into b.size shares of whole cache
// lines (the last ones may be short or empty) and returns share j.
func (b *Backend) share(l, j int) (lo, hi int) {
	sh := ((l+b.size-1)/b.size + 63) &^ 63
	return min(j*sh, l), min((j+1)*sh, l)
}

// reduceShared reduces in chunks of one slot. For each chunk, every rank
// copies the shares of the others into its slot; each rank reduces its
// own share from its send and the others' slots, writing the result to
// its recv and to its slot; then every rank copies the others' results.
func (b *Backend) reduceShared(ctx context.Context, c call, send, recv []byte) error {
	n, C := len(send), b.geo.slot
	op := c.kind.String()
	steps := (n + C - 1) / C
	g0 := b.step + 1
	b.step += uint64(steps)
	wantAll := c.root < 0 || c.root == b.rank
	put := func(i int) error {
		g := g0 + uint64(i)
		if err := b.acquire(ctx, op, g); err != nil {
			return err
		}
		base := i * C
		l := min(C, n-base)
		slot := b.slots[g&1][b.rank]
		for j := range b.size {
			if j != b.rank {
				lo, hi := b.share(l, j)
				stageCopy(slot[lo:hi], send[base+lo:base+hi], b.nt)
			}
		}
		b.publish(g, c)
		return nil
	}
	if err := put(0); err != nil {
		return err
	}
	for i := 0; i < steps; i++ {
		g := g0 + uint64(i)
		st := int(g & 1)
		base := i * C
		l := min(C, n-base)
		if err := b.await(ctx, op, b.ctr[kArrive], g, b.others); err != nil {
			return err
		}
		if i == 0 {
			if err := b.checkCall(g, c, b.others); err != nil {
				return err
			}
		}
		if lo, hi := b.share(l, b.rank); lo < hi {
			srcs := b.srcs
			for j := range srcs {
				srcs[j] = b.slots[st][j][lo:hi]
			}
			srcs[b.rank] = send[base+lo : base+hi]
			mine := b.slots[st][b.rank][lo:hi]
			if wantAll {
				b.combine(c.dt, c.op, recv[base+lo:base+hi], mine, srcs)
			} else {
				b.combine(c.dt, c.op, mine, nil, srcs)
			}
		}
		b.ctr[kReduced][b.rank].Store(g)
		if i+1 < steps {
			if err := put(i + 1); err != nil {
				return err
			}
		}
		if wantAll {
			if err := b.await(ctx, op, b.ctr[kReduced], g, b.others); err != nil {
				return err
			}
			for _, j := range b.others {
				lo, hi := b.share(l, j)
				copy(recv[base+lo:base+hi], b.slots[st][j][lo:hi])
			}
		}
		b.ctr[kRelease][b.rank].Store(g)
	}
	return nil
}

// Broadcast copies root's buf into every other rank's buf, a whole stage
// at a time.
func (b *Backend) Broadcast(ctx context.Context, buf []byte, root int) (err error) {
	if err := b.enter("broadcast"); err != nil {
		return err
	}
	defer b.exit(&err)
	if root < 0 || root >= b.size {
		return b.errorf("broadcast", "root %d of %d ranks", root, b.size)
	}
	n := len(buf)
	if n == 0 || b.size == 1 {
		return nil
	}
	piece := len(b.stage[0])
	nt := b.ntFor(n)
	return b.pipeline(ctx, call{kBroadcast, 0, 0, root, n}, (n+piece-1)/piece, b.single[root], b.rank == root, b.rank != root,
		func(i, st int) {
			lo := i * piece
			stageCopy(b.stage[st], buf[lo:min(lo+piece, n)], nt)
		},
		func(i, st int) {
			lo := i * piece
			copy(buf[lo:min(lo+piece, n)], b.stage[st])
		})
}

// Allgather sets block i of recv to rank i's send.
func (b *Backend) Allgather(ctx context.Context, send, recv []byte) (err error) {
	if err := b.enter("allgather"); err != nil {
		return err
	}
	defer b.exit(&err)
	n := len(send)
	if len(recv) != b.size*n {
		return b.errorf("allgather", "receive buffer holds %d bytes, want %d ranks × %d", len(recv), b.size, n)
	}
	copy(recv[b.rank*n:], send)
	if n == 0 || b.size == 1 {
		return nil
	}
	C := b.geo.slot
	nt := b.ntFor(n)
	return b.pipeline(ctx, call{kAllgather, 0, 0, -1, n}, (n+C-1)/C, b.others, true, true,
		func(i, st int) {
			lo := i * C
			stageCopy(b.slots[st][b.rank], send[lo:min(lo+C, n)], nt)
		},
		func(i, st int) {
			lo := i * C
			hi := min(lo+C, n)
			for _, p := range b.others {
				copy(recv[p*n+lo:p*n+hi], b.slots[st][p])
			}
		})
}

// piece is how many bytes of each of b.size blocks one slot holds.
func (b *Backend) piece() int { return (b.geo.slot / b.size) &^ 63 }

// ReduceScatter sets recv to block rank of the reduction of every rank's
// send: each rank copies the blocks of the others into its slot, and
// reduces its own block from everyone's slots.
func (b *Backend) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) (err error) {
	if err := b.enter("reducescatter"); err != nil {
		return err
	}
	defer b.exit(&err)
	if err := b.checkReduce("reducescatter", dt, op); err != nil {
		return err
	}
	m := len(recv)
	if len(send) != b.size*m || m%dt.Size() != 0 {
		return b.errorf("reducescatter", "send holds %d bytes and receive %d; want %d ranks × receive, a multiple of %d (%v)", len(send), m, b.size, dt.Size(), dt)
	}
	if m == 0 {
		return nil
	}
	if b.size == 1 {
		copy(recv, send)
		return nil
	}
	q := b.piece()
	nt := b.ntFor(len(send))
	return b.pipeline(ctx, call{kReduceScatter, dt, op, -1, m}, (m+q-1)/q, b.others, true, true,
		func(i, st int) {
			lo := i * q
			l := min(q, m-lo)
			slot := b.slots[st][b.rank]
			for _, j := range b.others {
				stageCopy(slot[j*q:j*q+l], send[j*m+lo:j*m+lo+l], nt)
			}
		},
		func(i, st int) {
			lo := i * q
			l := min(q, m-lo)
			srcs := b.srcs
			for j := range srcs {
				srcs[j] = b.slots[st][j][b.rank*q : b.rank*q+l]
			}
			srcs[b.rank] = send[b.rank*m+lo : b.rank*m+lo+l]
			b.combine(dt, op, recv[lo:lo+l], nil, srcs)
		})
}

// Gather sets block i of root's recv to rank i's send.
func (b *Backend) Gather(ctx context.Context, send, recv []byte, root int) (err error) {
	if err := b.enter("gather"); err != nil {
		return err
	}
	defer b.exit(&err)
	n := len(send)
	if root < 0 || root >= b.size {
		return b.errorf("gather", "root %d of %d ranks", root, b.size)
	}
	if b.rank == root && len(recv) != b.size*n {
		return b.errorf("gather", "receive buffer holds %d bytes, want %d ranks × %d", len(recv), b.size, n)
	}
	if b.rank == root {
		copy(recv[root*n:], send)
	}
	if n == 0 || b.size == 1 {
		return nil
	}
	C := b.geo.slot
	nt := b.ntFor(n)
	return b.pipeline(ctx, call{kGather, 0, 0, root, n}, (n+C-1)/C, b.others, b.rank != root, b.rank == root,
		func(i, st int) {
			lo := i * C
			stageCopy(b.slots[st][b.rank], send[lo:min(lo+C, n)], nt)
		},
		func(i, st int) {
			lo := i * C
			hi := min(lo+C, n)
			for _, p := range b.others {
				copy(recv[p*n+lo:p*n+hi], b.slots[st][p])
			}
		})
}

// Scatter sets every rank's recv to its block of root's send; root
// writes each rank's block into that rank's slot.
func (b *Backend) Scatter(ctx context.Context, send, recv []byte, root int) (err error) {
	if err := b.enter("scatter"); err != nil {
		return err
	}
	defer b.exit(&err)
	n := len(recv)
	if root < 0 || root >= b.size {
		return b.errorf("scatter", "root %d of %d ranks", root, b.size)
	}
	if b.rank == root && len(send) != b.size*n {
		return b.errorf("scatter", "send buffer holds %d bytes, want %d ranks × %d", len(send), b.size, n)
	}
	if b.rank == root {
		copy(recv, send[root*n:(root+1)*n])
	}
	if n == 0 || b.size == 1 {
		return nil
	}
	C := b.geo.slot
	nt := b.ntFor(len(send))
	return b.pipeline(ctx, call{kScatter, 0, 0, root, n}, (n+C-1)/C, b.single[root], b.rank == root, b.rank != root,
		func(i, st int) {
			lo := i * C
			hi := min(lo+C, n)
			for _, j := range b.others {
				stageCopy(b.slots[st][j], send[j*n+lo:j*n+hi], nt)
			}
		},
		func(i, st int) {
			lo := i * C
			copy(recv[lo:min(lo+C, n)], b.slots[st][b.rank])
		})
}

// AllToAll sends block j of send to rank j, which receives it as block
// rank of its recv: each rank copies the others' blocks into its slot.
func (b *Backend) AllToAll(ctx context.Context, send, recv []byte) (err error) {
	if err := b.enter("alltoall"); err != nil {
		return err
	}
	defer b.exit(&err)
	if len(send) != len(recv) || len(send)%b.size != 0 {
		return b.errorf("alltoall", "send holds %d bytes and receive %d; both must be the same multiple of %d ranks", len(send), len(recv), b.size)
	}
	m := len(send) / b.size
	copy(recv[b.rank*m:(b.rank+1)*m], send[b.rank*m:(b.rank+1)*m])
	if m == 0 || b.size == 1 {
		return nil
	}
	q := b.piece()
	nt := b.ntFor(len(send))
	return b.pipeline(ctx, call{kAllToAll, 0, 0, -1, m}, (m+q-1)/q, b.others, true, true,
		func(i, st int) {
			lo := i * q
			l := min(q, m-lo)
			slot := b.slots[st][b.rank]
			for _, j := range b.others {
				stageCopy(slot[j*q:j*q+l], send[j*m+lo:j*m+lo+l], nt)
			}
		},
		func(i, st int) {
			lo := i * q
			l := min(q, m-lo)
			for _, p := range b.others {
				copy(recv[p*m+lo:p*m+lo+l], b.slots[st][p][b.rank*q:b.rank*q+l])
			}
		})
}

// Barrier returns once every rank has called it.
func (b *Backend) Barrier(ctx context.Context) (err error) {
	if err := b.enter("barrier"); err != nil {
		return err
	}
	defer b.exit(&err)
	if b.size == 1 {
		return nil
	}
	g := b.step + 1
	b.step = g
	c := call{kBarrier, 0, 0, -1, 0}
	if err := b.acquire(ctx, "barrier", g); err != nil {
		return err
	}
	b.publish(g, c)
	if err := b.await(ctx, "barrier", b.ctr[kArrive], g, b.others); err != nil {
		return err
	}
	if err := b.checkCall(g, c, b.others); err != nil {
		return err
	}
	b.ctr[kRelease][b.rank].Store(g)
	return nil
}
