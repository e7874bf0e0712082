//go:build cgo && unix

package nccl

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// The operations on host slices copy each chunk into the communicator's
// staging memory, run NCCL on it in place, wait for the stream, and copy
// the result back. A copy to or from pageable host memory waits for the
// stream's earlier work inside the CUDA runtime, where ctx cannot end the
// wait, so every copy is issued only once the stream is idle. Chunks are
// cut the same way on every rank, from the message size and
// OptStagingBytes.

// Allreduce sets recv to the reduction of every rank's send.
func (b *Backend) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	ndt, nop, err := kinds(b.lib.version, b.lib.ncclPath, dt, op)
	es := dt.Size()
	if err == nil && (len(send) != len(recv) || len(send)%es != 0) {
		err = fmt.Errorf("send holds %d bytes and receive %d; want the same multiple of %d", len(send), len(recv), es)
	}
	if err != nil {
		return b.failf(err, "allreduce of %d bytes of %v (%v)", len(send), dt, op)
	}
	if len(send) == 0 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(len(send), es, l.limit, 1)
		if err := l.grow(chunk); err != nil {
			return err
		}
		for off := 0; off < len(send); off += chunk {
			n := min(chunk, len(send)-off)
			if err := l.h2d(0, send[off:off+n]); err != nil {
				return err
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.allReduce(l.buf, l.buf, n/es, ndt, nop, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "allreduce"); err != nil {
				return err
			}
			if err := l.d2h(recv[off:off+n], 0); err != nil {
				return err
			}
			if err := l.sync(ctx, "allreduce"); err != nil {
				return err
			}
		}
		return nil
	}, "allreduce of %d bytes of %v (%v)", len(send), dt, op)
}

// Reduce sets root's recv to the reduction of every rank's send; recv is
// not used on the other ranks.
func (b *Backend) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	ndt, nop, err := kinds(b.lib.version, b.lib.ncclPath, dt, op)
	es := dt.Size()
	switch {
	case err != nil:
	case root < 0 || root >= b.size:
		err = fmt.Errorf("root %d is outside 0..%d", root, b.size-1)
	case len(send)%es != 0:
		err = fmt.Errorf("send holds %d bytes, not a multiple of %d", len(send), es)
	case b.rank == root && len(recv) != len(send):
		err = fmt.Errorf("send holds %d bytes and receive %d", len(send), len(recv))
	}
	if err != nil {
		return b.failf(err, "reduce of %d bytes of %v (%v) to rank %d", len(send), dt, op, root)
	}
	if len(send) == 0 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(len(send), es, l.limit, 1)
		if err := l.grow(chunk); err != nil {
			return err
		}
		for off := 0; off < len(send); off += chunk {
			n := min(chunk, len(send)-off)
			if err := l.h2d(0, send[off:off+n]); err != nil {
				return err
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.reduce(l.buf, l.buf, n/es, ndt, nop, root, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "reduce"); err != nil {
				return err
			}
			if b.rank == root {
				if err := l.d2h(recv[off:off+n], 0); err != nil {
					return err
				}
				if err := l.sync(ctx, "reduce"); err != nil {
					return err
				}
			}
		}
		return nil
	}, "reduce of %d bytes of %v (%v) to rank %d", len(send), dt, op, root)
}

// Broadcast copies root's buf into every other rank's buf.
func (b *Backend) Broadcast(ctx context.Context, buf []byte, root int) error {
	if root < 0 || root >= b.size {
		return b.failf(fmt.Errorf("root %d is outside 0..%d", root, b.size-1), "broadcast of %d bytes", len(buf))
	}
	if len(buf) == 0 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(len(buf), 1, l.limit, 1)
		if err := l.grow(chunk); err != nil {
			return err
		}
		for off := 0; off < len(buf); off += chunk {
			n := min(chunk, len(buf)-off)
			if b.rank == root {
				if err := l.h2d(0, buf[off:off+n]); err != nil {
					return err
				}
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.broadcast(l.buf, l.buf, n, ncclUint8, root, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "broadcast"); err != nil {
				return err
			}
			if b.rank != root {
				if err := l.d2h(buf[off:off+n], 0); err != nil {
					return err
				}
				if err := l.sync(ctx, "broadcast"); err != nil {
					return err
				}
			}
		}
		return nil
	}, "broadcast of %d bytes from rank %d", len(buf), root)
}

// Allgather sets block i of recv to rank i's send.
func (b *Backend) Allgather(ctx context.Context, send, recv []byte) error {
	s := len(send)
	if len(recv) != b.size*s {
		return b.failf(fmt.Errorf("receive holds %d bytes, want %d ranks × %d", len(recv), b.size, s), "allgather of %d bytes", s)
	}
	if s == 0 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(s, 1, l.limit, b.size)
		if err := l.grow(b.size * chunk); err != nil {
			return err
		}
		for off := 0; off < s; off += chunk {
			n := min(chunk, s-off)
			if err := l.h2d(b.rank*n, send[off:off+n]); err != nil {
				return err
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.allGather(l.buf+uintptr(b.rank*n), l.buf, n, ncclUint8, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "allgather"); err != nil {
				return err
			}
			for r := 0; r < b.size; r++ {
				if err := l.d2h(recv[r*s+off:r*s+off+n], r*n); err != nil {
					return err
				}
			}
			if err := l.sync(ctx, "allgather"); err != nil {
				return err
			}
		}
		return nil
	}, "allgather of %d bytes", s)
}

// ReduceScatter sets recv to block rank of the reduction of every rank's
// send.
func (b *Backend) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	ndt, nop, err := kinds(b.lib.version, b.lib.ncclPath, dt, op)
	es, rb := dt.Size(), len(recv)
	if err == nil && (len(send) != b.size*rb || rb%es != 0) {
		err = fmt.Errorf("send holds %d bytes and receive %d; want %d ranks × receive, a multiple of %d", len(send), rb, b.size, es)
	}
	if err != nil {
		return b.failf(err, "reduce-scatter of %d bytes of %v (%v)", len(send), dt, op)
	}
	if rb == 0 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(rb, es, l.limit, b.size)
		if err := l.grow(b.size * chunk); err != nil {
			return err
		}
		for off := 0; off < rb; off += chunk {
			n := min(chunk, rb-off)
			for r := 0; r < b.size; r++ {
				if err := l.h2d(r*n, send[r*rb+off:r*rb+off+n]); err != nil {
					return err
				}
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.reduceScatter(l.buf, l.buf+uintptr(b.rank*n), n/es, ndt, nop, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "reduce-scatter"); err != nil {
				return err
			}
			if err := l.d2h(recv[off:off+n], b.rank*n); err != nil {
				return err
			}
			if err := l.sync(ctx, "reduce-scatter"); err != nil {
				return err
			}
		}
		return nil
	}, "reduce-scatter of %d bytes of %v (%v)", len(send), dt, op)
}

// Barrier returns once every rank has called it: an allreduce of one
// element on the device.
func (b *Backend) Barrier(ctx context.Context) error {
	return b.run(b.main, func(l *lane) error {
		if err := l.grow(4); err != nil {
			return err
		}
		if err := l.use(func(comm uintptr) error {
			return b.lib.allReduce(l.buf, l.buf, 1, ncclInt32, ncclSum, comm, l.stream)
		}); err != nil {
			return err
		}
		return l.sync(ctx, "barrier")
	}, "barrier")
}

// Gather sets block i of root's recv to rank i's send, with a group of
// ncclSend and ncclRecv calls.
func (b *Backend) Gather(ctx context.Context, send, recv []byte, root int) error {
	s := len(send)
	var err error
	switch {
	case root < 0 || root >= b.size:
		err = fmt.Errorf("root %d is outside 0..%d", root, b.size-1)
	case b.rank == root && len(recv) != b.size*s:
		err = fmt.Errorf("receive holds %d bytes, want %d ranks × %d", len(recv), b.size, s)
	}
	if err != nil {
		return b.failf(err, "gather of %d bytes to rank %d", s, root)
	}
	if b.rank == root {
		copy(recv[root*s:], send)
	}
	if s == 0 || b.size == 1 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(s, 1, l.limit, b.size)
		if err := l.grow(b.size * chunk); err != nil {
			return err
		}
		for off := 0; off < s; off += chunk {
			n := min(chunk, s-off)
			if b.rank != root {
				if err := l.h2d(0, send[off:off+n]); err != nil {
					return err
				}
				if err := l.use(func(comm uintptr) error {
					return b.lib.send(l.buf, n, ncclUint8, root, comm, l.stream)
				}); err != nil {
					return err
				}
				if err := l.sync(ctx, "gather"); err != nil {
					return err
				}
				continue
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.group(func() error {
					for r := 0; r < b.size; r++ {
						if r != root {
							if err := b.lib.recv(l.buf+uintptr(r*n), n, ncclUint8, r, comm, l.stream); err != nil {
								return err
							}
						}
					}
					return nil
				})
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "gather"); err != nil {
				return err
			}
			for r := 0; r < b.size; r++ {
				if r != root {
					if err := l.d2h(recv[r*s+off:r*s+off+n], r*n); err != nil {
						return err
					}
				}
			}
			if err := l.sync(ctx, "gather"); err != nil {
				return err
			}
		}
		return nil
	}, "gather of %d bytes to rank %d", s, root)
}

// Scatter sets rank i's recv to block i of root's send, with a group of
// ncclSend and ncclRecv calls.
func (b *Backend) Scatter(ctx context.Context, send, recv []byte, root int) error {
	s := len(recv)
	var err error
	switch {
	case root < 0 || root >= b.size:
		err = fmt.Errorf("root %d is outside 0..%d", root, b.size-1)
	case b.rank == root && len(send) != b.size*s:
		err = fmt.Errorf("send holds %d bytes, want %d ranks × %d", len(send), b.size, s)
	}
	if err != nil {
		return b.failf(err, "scatter of %d bytes from rank %d", s, root)
	}
	if b.rank == root {
		copy(recv, send[root*s:(root+1)*s])
	}
	if s == 0 || b.size == 1 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(s, 1, l.limit, b.size)
		if err := l.grow(b.size * chunk); err != nil {
			return err
		}
		for off := 0; off < s; off += chunk {
			n := min(chunk, s-off)
			if b.rank != root {
				if err := l.use(func(comm uintptr) error {
					return b.lib.recv(l.buf, n, ncclUint8, root, comm, l.stream)
				}); err != nil {
					return err
				}
				if err := l.sync(ctx, "scatter"); err != nil {
					return err
				}
				if err := l.d2h(recv[off:off+n], 0); err != nil {
					return err
				}
				if err := l.sync(ctx, "scatter"); err != nil {
					return err
				}
				continue
			}
			for r := 0; r < b.size; r++ {
				if r != root {
					if err := l.h2d(r*n, send[r*s+off:r*s+off+n]); err != nil {
						return err
					}
				}
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.group(func() error {
					for r := 0; r < b.size; r++ {
						if r != root {
							if err := b.lib.send(l.buf+uintptr(r*n), n, ncclUint8, r, comm, l.stream); err != nil {
								return err
							}
						}
					}
					return nil
				})
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "scatter"); err != nil {
				return err
			}
		}
		return nil
	}, "scatter of %d bytes from rank %d", s, root)
}

// AllToAll sends block j of send to rank j, which puts it in block rank of
// its recv, with a group of ncclSend and ncclRecv calls.
func (b *Backend) AllToAll(ctx context.Context, send, recv []byte) error {
	if len(send) != len(recv) || len(send)%b.size != 0 {
		return b.failf(fmt.Errorf("send holds %d bytes and receive %d; both must be the same multiple of %d ranks", len(send), len(recv), b.size),
			"all-to-all of %d bytes", len(send))
	}
	blk := len(send) / b.size
	copy(recv[b.rank*blk:(b.rank+1)*blk], send[b.rank*blk:(b.rank+1)*blk])
	if blk == 0 || b.size == 1 {
		return nil
	}
	return b.run(b.main, func(l *lane) error {
		chunk := chunkOf(blk, 1, l.limit, 2*b.size)
		if err := l.grow(2 * b.size * chunk); err != nil {
			return err
		}
		for off := 0; off < blk; off += chunk {
			n := min(chunk, blk-off)
			for r := 0; r < b.size; r++ {
				if r != b.rank {
					if err := l.h2d(r*n, send[r*blk+off:r*blk+off+n]); err != nil {
						return err
					}
				}
			}
			in := l.buf + uintptr(b.size*n)
			if err := l.use(func(comm uintptr) error {
				return b.lib.group(func() error {
					for r := 0; r < b.size; r++ {
						if r == b.rank {
							continue
						}
						if err := b.lib.send(l.buf+uintptr(r*n), n, ncclUint8, r, comm, l.stream); err != nil {
							return err
						}
						if err := b.lib.recv(in+uintptr(r*n), n, ncclUint8, r, comm, l.stream); err != nil {
							return err
						}
					}
					return nil
				})
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "all-to-all"); err != nil {
				return err
			}
			for r := 0; r < b.size; r++ {
				if r != b.rank {
					if err := l.d2h(recv[r*blk+off:r*blk+off+n], (b.size+r)*n); err != nil {
						return err
					}
				}
			}
			if err := l.sync(ctx, "all-to-all"); err != nil {
				return err
			}
		}
		return nil
	}, "all-to-all of %d bytes", len(send))
}
