//go:build !(cgo && unix)

package nccl

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// Backend stands in for the NCCL backend in a build without cgo: New and
// every method return ErrNoCgo.
type Backend struct{}

// Probe returns ErrNoCgo.
func Probe() (Info, error) { return Info{}, ErrNoCgo }

// New returns ErrNoCgo.
func New(ctx context.Context, cfg backend.Config) (*Backend, error) {
	return nil, fmt.Errorf("nccl: group %q rank %d: %w", cfg.Group, cfg.Rank, ErrNoCgo)
}

func (b *Backend) Rank() int        { return 0 }
func (b *Backend) Size() int        { return 0 }
func (b *Backend) Device() int      { return -1 }
func (b *Backend) Version() Version { return Version{} }
func (b *Backend) Close() error     { return nil }

func (b *Backend) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	return ErrNoCgo
}
func (b *Backend) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	return ErrNoCgo
}
func (b *Backend) Broadcast(ctx context.Context, buf []byte, root int) error { return ErrNoCgo }
func (b *Backend) Allgather(ctx context.Context, send, recv []byte) error    { return ErrNoCgo }
func (b *Backend) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	return ErrNoCgo
}
func (b *Backend) Barrier(ctx context.Context) error                              { return ErrNoCgo }
func (b *Backend) Send(ctx context.Context, buf []byte, peer int) error           { return ErrNoCgo }
func (b *Backend) Recv(ctx context.Context, buf []byte, peer int) error           { return ErrNoCgo }
func (b *Backend) Gather(ctx context.Context, send, recv []byte, root int) error  { return ErrNoCgo }
func (b *Backend) Scatter(ctx context.Context, send, recv []byte, root int) error { return ErrNoCgo }
func (b *Backend) AllToAll(ctx context.Context, send, recv []byte) error          { return ErrNoCgo }

func (b *Backend) AllreduceDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, stream Stream, c Completion) error {
	return ErrNoCgo
}
func (b *Backend) ReduceDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, root int, stream Stream, c Completion) error {
	return ErrNoCgo
}
func (b *Backend) BroadcastDevice(ctx context.Context, buf DeviceBuffer, root int, stream Stream, c Completion) error {
	return ErrNoCgo
}
func (b *Backend) AllgatherDevice(ctx context.Context, send, recv DeviceBuffer, stream Stream, c Completion) error {
	return ErrNoCgo
}
func (b *Backend) ReduceScatterDevice(ctx context.Context, send, recv DeviceBuffer, op backend.Op, stream Stream, c Completion) error {
	return ErrNoCgo
}
func (b *Backend) Synchronize(ctx context.Context, stream Stream) error { return ErrNoCgo }
func (b *Backend) NewStream() (Stream, error)                           { return 0, ErrNoCgo }
func (b *Backend) DestroyStream(s Stream) error                         { return ErrNoCgo }
func (b *Backend) Alloc(dt backend.DType, count int) (DeviceBuffer, error) {
	return DeviceBuffer{}, ErrNoCgo
}
func (b *Backend) Free(d DeviceBuffer) error { return ErrNoCgo }
func (b *Backend) CopyToDevice(ctx context.Context, dst DeviceBuffer, src []byte, stream Stream) error {
	return ErrNoCgo
}
func (b *Backend) CopyFromDevice(ctx context.Context, dst []byte, src DeviceBuffer, stream Stream) error {
	return ErrNoCgo
}

var (
	_ backend.Backend    = (*Backend)(nil)
	_ backend.Reducer    = (*Backend)(nil)
	_ backend.Gatherer   = (*Backend)(nil)
	_ backend.Scatterer  = (*Backend)(nil)
	_ backend.AllToAller = (*Backend)(nil)
)
