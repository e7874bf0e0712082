//go:build cgo && unix

package nccl

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// The collectives on device buffers enqueue one NCCL call on the given
// stream and, with Wait, poll the stream until it is done. They run on
// the group's communicator, one at a time and in the same order on every
// rank, like the collectives on host slices.

// device enqueues f on the group's communicator and waits for stream
// unless c is NoWait.
func (b *Backend) device(ctx context.Context, stream Stream, c Completion, op string, f func(comm uintptr) error, format string, args ...any) error {
	return b.run(b.main, func(l *lane) error {
		if err := l.use(f); err != nil {
			return err
		}
		if c == NoWait {
			return nil
		}
		return l.wait(ctx, uintptr(stream), op)
	}, format, args...)
}

// AllreduceDevice sets recv to the reduction of every rank's send; send
// and recv may be the same buffer. op may be backend.Avg (NCCL 2.10 or
// later).
func (b *Backend) AllreduceDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, stream Stream, c Completion) error {
	ndt, nop, err := b.deviceKinds(send, recv, op)
	if err == nil && send.Count != recv.Count {
		err = fmt.Errorf("send holds %d elements and receive %d", send.Count, recv.Count)
	}
	if err != nil {
		return b.failf(err, "device allreduce of %d %v (%v)", send.Count, send.DType, op)
	}
	return b.device(ctx, stream, c, "device allreduce", func(comm uintptr) error {
		return b.lib.allReduce(send.Ptr, recv.Ptr, send.Count, ndt, nop, comm, uintptr(stream))
	}, "device allreduce of %d %v (%v)", send.Count, send.DType, op)
}

// ReduceDevice sets root's recv to the reduction of every rank's send;
// recv is not used on the other ranks.
func (b *Backend) ReduceDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, root int, stream Stream, c Completion) error {
	if b.rank != root {
		recv = DeviceBuffer{DType: send.DType}
	}
	ndt, nop, err := b.deviceKinds(send, recv, op)
	switch {
	case err != nil:
	case root < 0 || root >= b.size:
		err = fmt.Errorf("root %d is outside 0..%d", root, b.size-1)
	case b.rank == root && send.Count != recv.Count:
		err = fmt.Errorf("send holds %d elements and receive %d", send.Count, recv.Count)
	}
	if err != nil {
		return b.failf(err, "device reduce of %d %v (%v) to rank %d", send.Count, send.DType, op, root)
	}
	return b.device(ctx, stream, c, "device reduce", func(comm uintptr) error {
		return b.lib.reduce(send.Ptr, recv.Ptr, send.Count, ndt, nop, root, comm, uintptr(stream))
	}, "device reduce of %d %v (%v) to rank %d", send.Count, send.DType, op, root)
}

// BroadcastDevice copies root's buf into every other rank's buf.
func (b *Backend) BroadcastDevice(ctx context.Context, buf DeviceBuffer, root int, stream Stream, c Completion) error {
	ndt, _, err := b.deviceKinds(buf, buf, 0)
	if err == nil && (root < 0 || root >= b.size) {
		err = fmt.Errorf("root %d is outside 0..%d", root, b.size-1)
	}
	if err != nil {
		return b.failf(err, "device broadcast of %d %v from rank %d", buf.Count, buf.DType, root)
	}
	return b.device(ctx, stream, c, "device broadcast", func(comm uintptr) error {
		return b.lib.broadcast(buf.Ptr, buf.Ptr, buf.Count, ndt, root, comm, uintptr(stream))
	}, "device broadcast of %d %v from rank %d", buf.Count, buf.DType, root)
}

// AllgatherDevice sets block i of recv (Size()×send.Count elements) to
// rank i's send. send may be recv's own block (in place).
func (b *Backend) AllgatherDevice(ctx context.Context, send, recv DeviceBuffer, stream Stream, c Completion) error {
	ndt, _, err := b.deviceKinds(send, recv, 0)
	if err == nil && recv.Count != b.size*send.Count {
		err = fmt.Errorf("receive holds %d elements, want %d ranks × %d", recv.Count, b.size, send.Count)
	}
	if err != nil {
		return b.failf(err, "device allgather of %d %v", send.Count, send.DType)
	}
	return b.device(ctx, stream, c, "device allgather", func(comm uintptr) error {
		return b.lib.allGather(send.Ptr, recv.Ptr, send.Count, ndt, comm, uintptr(stream))
	}, "device allgather of %d %v", send.Count, send.DType)
}

// ReduceScatterDevice sets recv to block rank of the reduction of every
// rank's send (Size()×recv.Count elements). recv may be send's own block
// (in place).
func (b *Backend) ReduceScatterDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, stream Stream, c Completion) error {
	ndt, nop, err := b.deviceKinds(send, recv, op)
	if err == nil && send.Count != b.size*recv.Count {
		err = fmt.Errorf("send holds %d elements, want %d ranks × %d", send.Count, b.size, recv.Count)
	}
	if err != nil {
		return b.failf(err, "device reduce-scatter of %d %v (%v)", send.Count, send.DType, op)
	}
	return b.device(ctx, stream, c, "device reduce-scatter", func(comm uintptr) error {
		return b.lib.reduceScatter(send.Ptr, recv.Ptr, recv.Count, ndt, nop, comm, uintptr(stream))
	}, "device reduce-scatter of %d %v (%v)", send.Count, send.DType, op)
}

// deviceKinds checks two buffers and maps their element type and op to
// NCCL's; op 0 stands for an operation without a reduction.
func (b *Backend) deviceKinds(send, recv DeviceBuffer, op backend.Op) (ndt, nop int, err error) {
	if err := send.check("send"); err != nil {
		return 0, 0, err
	}
	if err := recv.check("receive"); err != nil {
		return 0, 0, err
	}
	if send.DType != recv.DType {
		return 0, 0, fmt.Errorf("send holds %v and receive %v", send.DType, recv.DType)
	}
	if op == 0 {
		ndt, err = ncclType(b.lib.version, b.lib.ncclPath, send.DType)
		return ndt, 0, err
	}
	return kinds(b.lib.version, b.lib.ncclPath, send.DType, op)
}

// Synchronize waits until the work on stream is done, as the device
// collectives do with Wait: if ctx ends first, or the group's
// communicator reports an asynchronous error, it aborts the communicator.
func (b *Backend) Synchronize(ctx context.Context, stream Stream) error {
	return b.run(b.main, func(l *lane) error {
		return l.wait(ctx, uintptr(stream), "synchronize")
	}, "synchronize")
}

// NewStream creates a CUDA stream on this rank's device.
func (b *Backend) NewStream() (Stream, error) {
	var s uintptr
	err := b.onDevice(func() (err error) {
		s, err = b.lib.streamCreate()
		return err
	})
	if err != nil {
		return 0, b.failf(err, "new stream")
	}
	return Stream(s), nil
}

// DestroyStream destroys a stream from NewStream.
func (b *Backend) DestroyStream(s Stream) error {
	if err := b.onDevice(func() error { return b.lib.streamDestroy(uintptr(s)) }); err != nil {
		return b.failf(err, "destroy stream")
	}
	return nil
}

// Alloc allocates count elements of dt on this rank's device
// (cudaMalloc). Free releases them.
func (b *Backend) Alloc(dt backend.DType, count int) (DeviceBuffer, error) {
	d := DeviceBuffer{Count: count, DType: dt}
	if !dt.Valid() || count < 0 {
		return DeviceBuffer{}, b.failf(fmt.Errorf("bad element type %v or count %d", dt, count), "alloc")
	}
	err := b.onDevice(func() (err error) {
		d.Ptr, err = b.lib.malloc(max(d.Bytes(), 1))
		return err
	})
	if err != nil {
		return DeviceBuffer{}, b.failf(err, "alloc of %d %v", count, dt)
	}
	return d, nil
}

// Free releases memory from Alloc. Like cudaFree, it first waits for the
// device's work to finish, that of every stream.
func (b *Backend) Free(d DeviceBuffer) error {
	if d.Ptr == 0 {
		return nil
	}
	if err := b.onDevice(func() error { return b.lib.free(d.Ptr) }); err != nil {
		return b.failf(err, "free")
	}
	return nil
}

// CopyToDevice copies src into dst (len(src) ≤ dst.Bytes()) on stream,
// after the stream's earlier work, and waits for the copy.
func (b *Backend) CopyToDevice(ctx context.Context, dst DeviceBuffer, src []byte, stream Stream) error {
	if len(src) > dst.Bytes() {
		return b.failf(fmt.Errorf("%d bytes do not fit in %d", len(src), dst.Bytes()), "copy to device")
	}
	err := b.onDevice(func() error {
		if err := poll(ctx, b.lib, uintptr(stream), nil); err != nil {
			return err
		}
		if err := b.lib.h2d(dst.Ptr, src, uintptr(stream)); err != nil {
			return err
		}
		return poll(ctx, b.lib, uintptr(stream), nil)
	})
	if err != nil {
		return b.failf(err, "copy of %d bytes to the device", len(src))
	}
	return nil
}

// CopyFromDevice copies the start of src into dst (len(dst) ≤
// src.Bytes()) on stream, after the stream's earlier work, and waits for
// the copy.
func (b *Backend) CopyFromDevice(ctx context.Context, dst []byte, src DeviceBuffer, stream Stream) error {
	if len(dst) > src.Bytes() {
		return b.failf(fmt.Errorf("%d bytes asked of %d", len(dst), src.Bytes()), "copy from device")
	}
	err := b.onDevice(func() error {
		if err := poll(ctx, b.lib, uintptr(stream), nil); err != nil {
			return err
		}
		if err := b.lib.d2h(dst, src.Ptr, uintptr(stream)); err != nil {
			return err
		}
		return poll(ctx, b.lib, uintptr(stream), nil)
	})
	if err != nil {
		return b.failf(err, "copy of %d bytes from the device", len(dst))
	}
	return nil
}
