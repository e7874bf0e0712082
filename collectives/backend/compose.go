package backend

import (
	"context"
	"fmt"
)

// The functions below run an operation on b, using b's own method when it
// has one and building it from the required methods otherwise.

// DoReduce reduces every rank's send into root's recv.
func DoReduce(ctx context.Context, b Backend, rank int, send, recv []byte, dt DType, op Op, root int) error {
	if r, ok := b.(Reducer); ok {
		return r.Reduce(ctx, send, recv, dt, op, root)
	}
	tmp := recv
	if rank != root || len(recv) != len(send) {
		tmp = make([]byte, len(send))
	}
	return b.Allreduce(ctx, send, tmp, dt, op)
}

// DoGather gathers every rank's send into root's recv.
func DoGather(ctx context.Context, b Backend, rank, size int, send, recv []byte, root int) error {
	if g, ok := b.(Gatherer); ok {
		return g.Gather(ctx, send, recv, root)
	}
	if rank != root {
		return b.Send(ctx, send, root)
	}
	n := len(send)
	if len(recv) != n*size {
		return fmt.Errorf("collectives: gather: receive buffer holds %d bytes, want %d ranks × %d", len(recv), size, n)
	}
	copy(recv[root*n:], send)
	for i := 0; i < size; i++ {
		if i == root {
			continue
		}
		if err := b.Recv(ctx, recv[i*n:(i+1)*n], i); err != nil {
			return err
		}
	}
	return nil
}

// DoScatter sends block i of root's send to rank i's recv.
func DoScatter(ctx context.Context, b Backend, rank, size int, send, recv []byte, root int) error {
	if s, ok := b.(Scatterer); ok {
		return s.Scatter(ctx, send, recv, root)
	}
	if rank != root {
		return b.Recv(ctx, recv, root)
	}
	n := len(recv)
	if len(send) != n*size {
		return fmt.Errorf("collectives: scatter: send buffer holds %d bytes, want %d ranks × %d", len(send), size, n)
	}
	for i := 0; i < size; i++ {
		if i == root {
			continue
		}
		if err := b.Send(ctx, send[i*n:(i+1)*n], i); err != nil {
			return err
		}
	}
	copy(recv, send[root*n:(root+1)*n])
	return nil
}

// DoAllToAll exchanges blocks among all ranks: in step k a rank sends to
// rank+k and receives from rank-k, both at once.
func DoAllToAll(ctx context.Context, b Backend, rank, size int, send, recv []byte) error {
	if a, ok := b.(AllToAller); ok {
		return a.AllToAll(ctx, send, recv)
	}
	if len(send) != len(recv) || len(send)%size != 0 {
		return fmt.Errorf("collectives: alltoall: send holds %d bytes and receive %d; both must be the same multiple of %d ranks", len(send), len(recv), size)
	}
	n := len(send) / size
	copy(recv[rank*n:(rank+1)*n], send[rank*n:(rank+1)*n])
	for k := 1; k < size; k++ {
		to, from := (rank+k)%size, (rank-k+size)%size
		errc := make(chan error, 1)
		go func() { errc <- b.Send(ctx, send[to*n:(to+1)*n], to) }()
		rerr := b.Recv(ctx, recv[from*n:(from+1)*n], from)
		serr := <-errc
		if rerr != nil {
			return rerr
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}
