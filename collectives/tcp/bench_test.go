package tcp

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// Benchmarks report nccl-tests' figures: algbw is bytes / time, busbw
// scales it by 2(n-1)/n for allreduce, (n-1)/n for allgather and
// reduce-scatter, and 1 for broadcast.
//
//	go test -run '^$' -bench 'Allreduce' ./collectives/tcp/
//
// TCPBENCH_RANKS (default 2), TCPBENCH_SIZES (bytes, comma-separated,
// K and M suffixes allowed) and TCPBENCH_OPTS (key=value,...) change
// the setup.

var benchSizes = []int{4, 4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20}

func benchConfig(b *testing.B) (ranks int, sizes []int, opts map[string]string) {
	ranks = 2
	if v := os.Getenv("TCPBENCH_RANKS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		ranks = n
	}
	sizes = benchSizes
	if v := os.Getenv("TCPBENCH_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := parseBytes(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	if v := os.Getenv("TCPBENCH_OPTS"); v != "" {
		opts = map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			opts[k] = val
		}
	}
	return ranks, sizes, opts
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func busFactor(op, n int) float64 {
	switch op {
	case cmdAllreduce:
		return 2 * float64(n-1) / float64(n)
	case cmdAllgather, cmdReduceScatter:
		return float64(n-1) / float64(n)
	}
	return 1
}

func report(b *testing.B, op, ranks, bytes int) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	algbw := float64(bytes) / sec / 1e9
	b.ReportMetric(sec*1e6, "µs/op")
	b.ReportMetric(algbw, "algbw_GB/s")
	b.ReportMetric(algbw*busFactor(op, ranks), "busbw_GB/s")
}

// BenchmarkAllreduceProcs runs float32 allreduce with every rank in its
// own process, as MPI ranks are.
func BenchmarkAllreduceProcs(b *testing.B) { benchProcs(b, cmdAllreduce) }

// BenchmarkBroadcastProcs, BenchmarkAllgatherProcs and
// BenchmarkReduceScatterProcs do the same for the other pipelined
// operations (bytes is the whole receive buffer).
func BenchmarkBroadcastProcs(b *testing.B)     { benchProcs(b, cmdBroadcast) }
func BenchmarkAllgatherProcs(b *testing.B)     { benchProcs(b, cmdAllgather) }
func BenchmarkReduceScatterProcs(b *testing.B) { benchProcs(b, cmdReduceScatter) }

func benchProcs(b *testing.B, op int) {
	ranks, sizes, opts := benchConfig(b)
	g := startProcs(b, ranks, "serve", opts)
	defer g.stop(b)
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("ranks=%d/bytes=%s", ranks, sizeName(n)), func(b *testing.B) {
			// Warm up connections and buffers outside the timing.
			if err := g.do(ctx, command{op, n, 2}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := g.do(ctx, command{op, n, b.N}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			report(b, op, ranks, n)
		})
	}
}

// BenchmarkAllreduce runs float32 allreduce with every rank a goroutine
// of this process.
func BenchmarkAllreduce(b *testing.B) {
	ranks, sizes, opts := benchConfig(b)
	ctx := context.Background()
	bs, err := backendtest.Group(ctx, New, ranks, nil, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, x := range bs {
			x.Close()
		}
	}()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("ranks=%d/bytes=%s", ranks, sizeName(n)), func(b *testing.B) {
			bufs := make([][2][]byte, ranks)
			for i := range bufs {
				bufs[i] = [2][]byte{make([]byte, n), make([]byte, n)}
			}
			iter := func(iters int) error {
				errs := make([]error, ranks)
				var wg sync.WaitGroup
				for r := range ranks {
					wg.Go(func() {
						for i := 0; i < iters && errs[r] == nil; i++ {
							errs[r] = bs[r].Allreduce(ctx, bufs[r][0], bufs[r][1], backend.F32, backend.Sum)
						}
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				return nil
			}
			if err := iter(2); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := iter(b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			report(b, cmdAllreduce, ranks, n)
		})
	}
}

var _ = time.Second
