package collectives

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// Every operation below is collective: each rank of the group makes the
// same call, in the same order, with the same lengths, root and op. The
// out-of-place forms leave send untouched; the InPlace forms work on one
// buffer. A call blocks until this rank's part is done or ctx ends; a
// call that ran out of time returns an error wrapping a *WaitError that
// names the ranks that never reached it.

func checkOp(g *Group, name string, op Op) error {
	if !op.Valid() {
		return fmt.Errorf("collectives: group %q: %s with unknown reduction %v", g.name, name, op)
	}
	return nil
}

// backendOp is the reduction a backend runs: Avg sums, then the group
// divides.
func backendOp(op Op) Op {
	if op == Avg {
		return Sum
	}
	return op
}

func checkRoot(g *Group, name string, root int) error {
	if root < 0 || root >= g.size {
		return fmt.Errorf("collectives: group %q: %s with root %d (want 0 to %d)", g.name, name, root, g.size-1)
	}
	return nil
}

// disjoint fails when two buffers share part of their memory.
func disjoint(g *Group, name string, a, b []byte) error {
	if same, partial := overlap(a, b); same && len(a) > 0 || partial {
		return fmt.Errorf("collectives: group %q: %s: send and receive buffers overlap (use the InPlace form)", g.name, name)
	}
	return nil
}

// Allreduce sets recv, on every rank, to the element-wise reduction of
// every rank's send. len(recv) must equal len(send).
func Allreduce[T Elem](ctx context.Context, g *Group, send, recv []T, op Op, opts ...CallOption) error {
	if len(send) != len(recv) {
		return fmt.Errorf("collectives: group %q: allreduce of %d elements into %d", g.name, len(send), len(recv))
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if same, _ := overlap(sb, rb); !same {
		if err := disjoint(g, "allreduce", sb, rb); err != nil {
			return err
		}
	}
	return allreduce(ctx, g, sb, rb, DTypeOf[T](), op, opts)
}

// AllreduceInPlace replaces buf, on every rank, with the element-wise
// reduction of every rank's buf.
func AllreduceInPlace[T Elem](ctx context.Context, g *Group, buf []T, op Op, opts ...CallOption) error {
	b := bytesOf(buf)
	return allreduce(ctx, g, b, b, DTypeOf[T](), op, opts)
}

func allreduce(ctx context.Context, g *Group, sb, rb []byte, dt DType, op Op, opts []CallOption) error {
	if err := checkOp(g, "allreduce", op); err != nil {
		return err
	}
	err := g.collective(ctx, "allreduce", opts, func(b backend.Backend) error {
		return b.Allreduce(ctx, sb, rb, dt, backendOp(op))
	})
	if err == nil && op == Avg {
		backend.Scale(dt, rb, g.size)
	}
	return err
}

// Reduce sets root's recv to the element-wise reduction of every rank's
// send; recv is not used on other ranks (nil is fine there).
func Reduce[T Elem](ctx context.Context, g *Group, send, recv []T, op Op, root int, opts ...CallOption) error {
	if err := checkOp(g, "reduce", op); err != nil {
		return err
	}
	if err := checkRoot(g, "reduce", root); err != nil {
		return err
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if g.rank == root {
		if len(send) != len(recv) {
			return fmt.Errorf("collectives: group %q: reduce of %d elements into %d", g.name, len(send), len(recv))
		}
		if same, _ := overlap(sb, rb); !same {
			if err := disjoint(g, "reduce", sb, rb); err != nil {
				return err
			}
		}
	} else {
		rb = nil
	}
	dt := DTypeOf[T]()
	err := g.collective(ctx, "reduce", opts, func(b backend.Backend) error {
		return backend.DoReduce(ctx, b, g.rank, sb, rb, dt, backendOp(op), root)
	})
	if err == nil && op == Avg && g.rank == root {
		backend.Scale(dt, rb, g.size)
	}
	return err
}

// ReduceInPlace reduces every rank's buf into root's buf; other ranks'
// buf is left as it was.
func ReduceInPlace[T Elem](ctx context.Context, g *Group, buf []T, op Op, root int, opts ...CallOption) error {
	if g.rank == root {
		return Reduce(ctx, g, buf, buf, op, root, opts...)
	}
	return Reduce(ctx, g, buf, nil, op, root, opts...)
}

// Broadcast copies root's buf into every other rank's buf.
func Broadcast[T Elem](ctx context.Context, g *Group, buf []T, root int, opts ...CallOption) error {
	if err := checkRoot(g, "broadcast", root); err != nil {
		return err
	}
	b := bytesOf(buf)
	return g.collective(ctx, "broadcast", opts, func(be backend.Backend) error {
		return be.Broadcast(ctx, b, root)
	})
}

// Allgather sets block i of recv (len(send) elements each) to rank i's
// send, on every rank. len(recv) must be Size()*len(send).
func Allgather[T Elem](ctx context.Context, g *Group, send, recv []T, opts ...CallOption) error {
	if len(recv) != g.size*len(send) {
		return fmt.Errorf("collectives: group %q: allgather of %d elements per rank needs %d×%d = %d to receive, got %d", g.name, len(send), g.size, len(send), g.size*len(send), len(recv))
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if err := disjoint(g, "allgather", sb, rb); err != nil {
		return err
	}
	return g.collective(ctx, "allgather", opts, func(b backend.Backend) error {
		return b.Allgather(ctx, sb, rb)
	})
}

// AllgatherInPlace fills every block of buf (Size() equal blocks) from the
// rank whose block it is: each rank's own block is its contribution.
func AllgatherInPlace[T Elem](ctx context.Context, g *Group, buf []T, opts ...CallOption) error {
	if len(buf)%g.size != 0 {
		return fmt.Errorf("collectives: group %q: allgather in place over %d elements, not a multiple of %d ranks", g.name, len(buf), g.size)
	}
	n := len(buf) / g.size
	mine := append([]T(nil), buf[g.rank*n:(g.rank+1)*n]...)
	return Allgather(ctx, g, mine, buf, opts...)
}

// ReduceScatter reduces every rank's send element-wise and gives rank i
// block i of the result: len(send) must be Size()*len(recv).
func ReduceScatter[T Elem](ctx context.Context, g *Group, send, recv []T, op Op, opts ...CallOption) error {
	if err := checkOp(g, "reducescatter", op); err != nil {
		return err
	}
	if len(send) != g.size*len(recv) {
		return fmt.Errorf("collectives: group %q: reduce-scatter of %d elements needs %d ranks × %d received, got %d", g.name, len(send), g.size, len(send)/max(g.size, 1), len(recv))
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if err := disjoint(g, "reducescatter", sb, rb); err != nil {
		return err
	}
	dt := DTypeOf[T]()
	err := g.collective(ctx, "reducescatter", opts, func(b backend.Backend) error {
		return b.ReduceScatter(ctx, sb, rb, dt, backendOp(op))
	})
	if err == nil && op == Avg {
		backend.Scale(dt, rb, g.size)
	}
	return err
}

// ReduceScatterInPlace reduces buf (Size() equal blocks) across ranks and
// returns this rank's block of the result, which is also left in
// buf[:len(buf)/Size()].
func ReduceScatterInPlace[T Elem](ctx context.Context, g *Group, buf []T, op Op, opts ...CallOption) ([]T, error) {
	if len(buf)%g.size != 0 {
		return nil, fmt.Errorf("collectives: group %q: reduce-scatter in place over %d elements, not a multiple of %d ranks", g.name, len(buf), g.size)
	}
	out := make([]T, len(buf)/g.size)
	if err := ReduceScatter(ctx, g, buf, out, op, opts...); err != nil {
		return nil, err
	}
	copy(buf, out)
	return buf[:len(out)], nil
}

// Barrier returns once every rank has called it.
func Barrier(ctx context.Context, g *Group, opts ...CallOption) error {
	return g.collective(ctx, "barrier", opts, func(b backend.Backend) error { return b.Barrier(ctx) })
}

// AllToAll sends block j of send (Size() equal blocks) to rank j, which
// receives it as block i of its recv, where i is the sender's rank.
func AllToAll[T Elem](ctx context.Context, g *Group, send, recv []T, opts ...CallOption) error {
	if len(send) != len(recv) || len(send)%g.size != 0 {
		return fmt.Errorf("collectives: group %q: all-to-all with %d elements to send and %d to receive; both must be the same multiple of %d ranks", g.name, len(send), len(recv), g.size)
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if err := disjoint(g, "alltoall", sb, rb); err != nil {
		return err
	}
	return g.collective(ctx, "alltoall", opts, func(b backend.Backend) error {
		return backend.DoAllToAll(ctx, b, g.rank, g.size, sb, rb)
	})
}

// Gather collects every rank's send into root's recv, block i from rank i;
// len(recv) must be Size()*len(send) at root and is not used elsewhere.
func Gather[T Elem](ctx context.Context, g *Group, send, recv []T, root int, opts ...CallOption) error {
	if err := checkRoot(g, "gather", root); err != nil {
		return err
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if g.rank == root {
		if len(recv) != g.size*len(send) {
			return fmt.Errorf("collectives: group %q: gather of %d elements per rank needs %d to receive at root, got %d", g.name, len(send), g.size*len(send), len(recv))
		}
		if err := disjoint(g, "gather", sb, rb); err != nil {
			return err
		}
	} else {
		rb = nil
	}
	return g.collective(ctx, "gather", opts, func(b backend.Backend) error {
		return backend.DoGather(ctx, b, g.rank, g.size, sb, rb, root)
	})
}

// Scatter sends block i of root's send (len Size()*len(recv); not used
// elsewhere) to rank i's recv.
func Scatter[T Elem](ctx context.Context, g *Group, send, recv []T, root int, opts ...CallOption) error {
	if err := checkRoot(g, "scatter", root); err != nil {
		return err
	}
	sb, rb := bytesOf(send), bytesOf(recv)
	if g.rank == root {
		if len(send) != g.size*len(recv) {
			return fmt.Errorf("collectives: group %q: scatter of %d elements per rank needs %d to send at root, got %d", g.name, len(recv), g.size*len(recv), len(send))
		}
		if err := disjoint(g, "scatter", sb, rb); err != nil {
			return err
		}
	} else {
		sb = nil
	}
	return g.collective(ctx, "scatter", opts, func(b backend.Backend) error {
		return backend.DoScatter(ctx, b, g.rank, g.size, sb, rb, root)
	})
}

// Send delivers buf to rank peer, whose matching Recv must take exactly
// len(buf) elements. Messages between two ranks arrive in the order sent.
// Send and Recv are not collective and may run beside each other.
func Send[T Elem](ctx context.Context, g *Group, buf []T, peer int, opts ...CallOption) error {
	b := bytesOf(buf)
	return g.p2p(ctx, "send", peer, opts, func(be backend.Backend) error { return be.Send(ctx, b, peer) })
}

// Recv fills buf with the next message from rank peer.
func Recv[T Elem](ctx context.Context, g *Group, buf []T, peer int, opts ...CallOption) error {
	b := bytesOf(buf)
	return g.p2p(ctx, "recv", peer, opts, func(be backend.Backend) error { return be.Recv(ctx, b, peer) })
}
