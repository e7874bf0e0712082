package nccl_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/nccl"
)

// A group of one rank (a rendezvous is needed from two ranks on) sums a
// float32 vector that lives on the GPU, on a stream of its own.
func Example() {
	ctx := context.Background()
	b, err := nccl.New(ctx, backend.Config{Group: "example", Rank: 0, Size: 1})
	if err != nil {
		fmt.Println(err) // no NCCL, CUDA runtime or GPU here
		return
	}
	defer b.Close()

	host := make([]byte, 4*1024)
	for i := 0; i < 1024; i++ {
		binary.LittleEndian.PutUint32(host[4*i:], math.Float32bits(float32(i)))
	}
	buf, err := b.Alloc(backend.F32, 1024)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Free(buf)
	stream, err := b.NewStream()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.DestroyStream(stream)

	if err := b.CopyToDevice(ctx, buf, host, stream); err != nil {
		fmt.Println(err)
		return
	}
	// Enqueue without waiting, then wait for the stream.
	if err := b.AllreduceDevice(ctx, buf, buf, backend.Sum, stream, nccl.NoWait); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Synchronize(ctx, stream); err != nil {
		fmt.Println(err)
		return
	}
	if err := b.CopyFromDevice(ctx, host, buf, stream); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(math.Float32frombits(binary.LittleEndian.Uint32(host[4*1023:])))
}
