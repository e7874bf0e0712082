package shm

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// Benchmarks of float32 sum allreduce, out of place, as MPI benchmarks
// measure it. busbw is algbw × 2(n-1)/n (nccl-tests); for two ranks they
// are equal, and equal to the MB/s that go test prints. The number of
// ranks is RAYGO_SHM_BENCH_RANKS (default 2).
//
//	go test -run '^$' -bench Allreduce ./collectives/shm/

var benchSizes = []int{4, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20}

// benchOptions are the backend options of the benchmarks: the slot size
// from RAYGO_SHM_BENCH_SLOT, if set. RAYGO_SHM_BENCH_LOCAL_MAX sets the
// largest allreduce reduced whole by every rank, RAYGO_SHM_BENCH_SPIN
// how long waits spin, and RAYGO_SHM_BENCH_NT=1 or 2 never or always
// writes large calls with non-temporal stores (see tune.go).
func benchOptions() map[string]string {
	if v, err := strconv.Atoi(os.Getenv("RAYGO_SHM_BENCH_LOCAL_MAX")); err == nil {
		localMax = v
	}
	if v, err := strconv.Atoi(os.Getenv("RAYGO_SHM_BENCH_NT")); err == nil {
		forceNT = v
	}
	if v, err := time.ParseDuration(os.Getenv("RAYGO_SHM_BENCH_SPIN")); err == nil {
		spinFor = v
	}
	if v := os.Getenv("RAYGO_SHM_BENCH_SLOT"); v != "" {
		return map[string]string{OptSlotBytes: v}
	}
	return nil
}

func benchRanks() int {
	if n, err := strconv.Atoi(os.Getenv("RAYGO_SHM_BENCH_RANKS")); err == nil && n > 0 {
		return n
	}
	return 2
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchBuffers(n int) (send, recv []byte) {
	send = make([]byte, n)
	for i := 0; i+4 <= n; i += 4 {
		binary.NativeEndian.PutUint32(send[i:], math.Float32bits(1))
	}
	return send, make([]byte, n)
}

func reportBusbw(b *testing.B, n, ranks int) {
	algbw := float64(n) * float64(b.N) / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(algbw*2*float64(ranks-1)/float64(ranks), "busbw-GB/s")
}

// BenchmarkAllreduce runs the ranks as goroutines of this process.
func BenchmarkAllreduce(b *testing.B) {
	ranks := benchRanks()
	bs, err := backendtest.Group(context.Background(), New, ranks, nil, benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, x := range bs {
			x.Close()
		}
	}()
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			ctx := context.Background()
			errc := make(chan error, ranks)
			start := make(chan struct{})
			for r := 1; r < ranks; r++ {
				go func() {
					send, recv := benchBuffers(n)
					<-start
					if err := bs[r].Barrier(ctx); err != nil {
						errc <- err
						return
					}
					for range b.N {
						if err := bs[r].Allreduce(ctx, send, recv, backend.F32, backend.Sum); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			send, recv := benchBuffers(n)
			close(start)
			if err := bs[0].Barrier(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ResetTimer()
			for range b.N {
				if err := bs[0].Allreduce(ctx, send, recv, backend.F32, backend.Sum); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for r := 1; r < ranks; r++ {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			reportBusbw(b, n, ranks)
		})
	}
}

// BenchmarkAllreduceProcs runs the other ranks as child processes, as a
// group of worker processes (or MPI) would.
func BenchmarkAllreduceProcs(b *testing.B) {
	ranks := benchRanks()
	dir := b.TempDir()
	group := fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmds := startRanks(b, "bench", dir, group, ranks, 0)
	ctx := context.Background()
	cfg := procConfig(dir, group, 0, ranks)
	cfg.Options = benchOptions()
	be, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	command := func(n, iters int) {
		var cmd [16]byte
		binary.LittleEndian.PutUint64(cmd[:], uint64(n))
		binary.LittleEndian.PutUint64(cmd[8:], uint64(iters))
		if err := be.Broadcast(ctx, cmd[:], 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			send, recv := benchBuffers(n)
			command(n, b.N)
			if err := be.Barrier(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n))
			b.ResetTimer()
			for range b.N {
				if err := be.Allreduce(ctx, send, recv, backend.F32, backend.Sum); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportBusbw(b, n, ranks)
		})
	}
	command(0, 0)
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			b.Errorf("rank %d: %v", i+1, err)
		}
	}
}

// benchChild is a rank of BenchmarkAllreduceProcs: it runs the
// allreduces rank 0 broadcasts until told to stop.
func benchChild(ctx context.Context, b backend.Backend) error {
	var send, recv []byte
	for {
		var cmd [16]byte
		if err := b.Broadcast(ctx, cmd[:], 0); err != nil {
			return err
		}
		n, iters := int(binary.LittleEndian.Uint64(cmd[:])), int(binary.LittleEndian.Uint64(cmd[8:]))
		if iters == 0 {
			return nil
		}
		if len(send) != n {
			send, recv = benchBuffers(n)
		}
		if err := b.Barrier(ctx); err != nil {
			return err
		}
		for range iters {
			if err := b.Allreduce(ctx, send, recv, backend.F32, backend.Sum); err != nil {
				return err
			}
		}
	}
}

// BenchmarkSendRecv streams messages from rank 0 to rank 1 through their
// ring, ranks as goroutines.
func BenchmarkSendRecv(b *testing.B) {
	bs, err := backendtest.Group(context.Background(), New, 2, nil, benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, x := range bs {
			x.Close()
		}
	}()
	for _, n := range []int{4, 64 << 10, 4 << 20} {
		b.Run(sizeName(n), func(b *testing.B) {
			ctx := context.Background()
			errc := make(chan error, 1)
			go func() {
				buf := make([]byte, n)
				for range b.N {
					if err := bs[1].Recv(ctx, buf, 0); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			buf := make([]byte, n)
			b.SetBytes(int64(n))
			for range b.N {
				if err := bs[0].Send(ctx, buf, 1); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}
