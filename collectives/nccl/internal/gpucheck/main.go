// Command gpucheck checks the nccl backend against the real NCCL on the
// GPUs of one machine: one rank per visible GPU (on one GPU, a group of
// one), each rank a process of its own, meeting through a rendezvous
// directory. It checks
//
//   - the device-buffer path: every collective on cudaMalloc'd memory,
//     waiting and not, including bfloat16 and avg;
//   - the host-slice path: every operation of the backend (and Send/Recv
//     with two ranks or more) on every element type against a float64
//     reference;
//
// and prints an nccl-tests-style table of allreduce times for both paths.
// It exits 0 when every check passed, 1 when one failed, and 0 with a line
// starting "SKIP" when NCCL, the CUDA runtime or a GPU is missing. It is
// meant to be run by gpucheck.sh, which finds the libraries.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	"github.com/raygo/raygo/collectives/nccl"
)

const (
	envRank = "GPUCHECK_RANK"
	envSize = "GPUCHECK_SIZE"
	envDir  = "GPUCHECK_DIR"
)

var (
	ranks   = flag.Int("ranks", 0, "ranks (default: one per visible GPU)")
	timeout = flag.Duration("timeout", 4*time.Minute, "limit for the whole check")
	sizes   = flag.String("sizes", "4,1048576,67108864", "allreduce sizes to time, in bytes")
)

func main() {
	flag.Parse()
	if os.Getenv(envRank) != "" {
		os.Exit(rankMain())
	}
	os.Exit(parent())
}

func parent() int {
	info, err := nccl.Probe()
	var le *nccl.LoadError
	if errors.As(err, &le) || errors.Is(err, nccl.ErrNoCgo) {
		fmt.Printf("SKIP: %v\n", err)
		return 0
	}
	fmt.Printf("gpucheck: NCCL %v from %s\n", info.Version, info.NCCLPath)
	fmt.Printf("gpucheck: CUDA runtime from %s\n", info.CUDARTPath)
	if err != nil || info.Devices == 0 {
		fmt.Printf("SKIP: no usable GPU (%d visible, CUDA_VISIBLE_DEVICES=%q): %v\n", info.Devices, os.Getenv("CUDA_VISIBLE_DEVICES"), err)
		return 0
	}
	n := *ranks
	if n <= 0 {
		n = info.Devices
	}
	fmt.Printf("gpucheck: %d visible GPUs, %d ranks (one process each, rank r on device r mod %d)\n", info.Devices, n, info.Devices)

	dir, err := os.MkdirTemp("", "gpucheck-")
	if err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := false
	for r := 0; r < n; r++ {
		cmd := exec.CommandContext(ctx, exe, "-sizes", *sizes, "-timeout", timeout.String())
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", envRank, r), fmt.Sprintf("%s=%d", envSize, n), envDir+"="+dir)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			fmt.Printf("FAIL: starting rank %d: %v\n", r, err)
			return 1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				fmt.Printf("[rank %d] %s\n", r, sc.Text())
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil {
				mu.Lock()
				fmt.Printf("[rank %d] exited: %v\n", r, err)
				failed = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed || ctx.Err() != nil {
		fmt.Printf("RESULT: FAIL (%d ranks, NCCL %v, %.1f s)\n", n, info.Version, time.Since(start).Seconds())
		return 1
	}
	fmt.Printf("RESULT: PASS: every check passed on %d ranks, NCCL %v, in %.1f s\n", n, info.Version, time.Since(start).Seconds())
	return 0
}

func rankMain() int {
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	members := make([]backend.Member, size)
	host, _ := os.Hostname()
	for i := range members {
		members[i] = backend.Member{Rank: i, Node: host, Host: "127.0.0.1"}
	}
	t0 := time.Now()
	b, err := nccl.New(ctx, backend.Config{
		Group: "gpucheck", Rank: rank, Size: size, Members: members,
		Rendezvous: backend.DirRendezvous{Dir: os.Getenv(envDir), Rank: rank, Size: size},
	})
	if err != nil {
		fmt.Println("FAIL: building the communicator:", err)
		return 1
	}
	defer b.Close()
	fmt.Printf("communicator of %d ranks on device %d, NCCL %v, built in %v\n", size, b.Device(), b.Version(), time.Since(t0).Round(time.Millisecond))
	c := &checker{b: b, rank: rank, size: size, seed: 12345}
	for _, step := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"device allreduce", c.deviceAllreduce},
		{"device collectives", c.deviceCollectives},
		{"host operations", c.hostOps},
		{"timings", c.timings},
	} {
		t := time.Now()
		if err := step.f(ctx); err != nil {
			fmt.Printf("FAIL: %s: %v\n", step.name, err)
			return 1
		}
		fmt.Printf("PASS: %s (%v)\n", step.name, time.Since(t).Round(time.Millisecond))
	}
	return 0
}

type checker struct {
	b          *nccl.Backend
	rank, size int
	seed       uint64
}

// fill is rank's float32 input: small integers, so that every sum is
// exact whatever the order NCCL adds in.
func fill(rank, n int) []byte {
	buf := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(rank+1+i%7)))
	}
	return buf
}

func (c *checker) wantSum(i int) float32 {
	s := 0
	for r := 0; r < c.size; r++ {
		s += r + 1 + i%7
	}
	return float32(s)
}

func (c *checker) checkSum(got []byte) error {
	for i := 0; i < len(got)/4; i++ {
		if g := math.Float32frombits(binary.LittleEndian.Uint32(got[4*i:])); g != c.wantSum(i) {
			return fmt.Errorf("element %d of %d: got %v, want %v", i, len(got)/4, g, c.wantSum(i))
		}
	}
	return nil
}

// deviceAllreduce is the real NCCL allreduce on device memory, in place
// and out of place, on a stream of its own, waiting and not.
func (c *checker) deviceAllreduce(ctx context.Context) error {
	b := c.b
	s, err := b.NewStream()
	if err != nil {
		return err
	}
	defer b.DestroyStream(s)
	for _, n := range []int{1, 1000, 1 << 20, 16 << 20} {
		send, err := b.Alloc(backend.F32, n)
		if err != nil {
			return err
		}
		recv, err := b.Alloc(backend.F32, n)
		if err != nil {
			b.Free(send)
			return err
		}
		err = func() error {
			if err := b.CopyToDevice(ctx, send, fill(c.rank, n), s); err != nil {
				return err
			}
			if err := b.AllreduceDevice(ctx, send, recv, backend.Sum, s, nccl.Wait); err != nil {
				return err
			}
			if err := b.AllreduceDevice(ctx, send, send, backend.Sum, s, nccl.NoWait); err != nil {
				return err
			}
			if err := b.Synchronize(ctx, s); err != nil {
				return err
			}
			got := make([]byte, 4*n)
			for _, d := range []nccl.DeviceBuffer{recv, send} {
				if err := b.CopyFromDevice(ctx, got, d, s); err != nil {
					return err
				}
				if err := c.checkSum(got); err != nil {
					return fmt.Errorf("%d float32: %w", n, err)
				}
			}
			return nil
		}()
		b.Free(send)
		b.Free(recv)
		if err != nil {
			return err
		}
		fmt.Printf("  device allreduce of %d float32 (sum, out of place and in place): ok\n", n)
	}
	return nil
}

// deviceCollectives checks every device collective and reduction on a few
// element types against the float64 reference, on the default stream.
func (c *checker) deviceCollectives(ctx context.Context) error {
	b, size, rank := c.b, c.size, c.rank
	const n = 4099
	for _, dt := range []backend.DType{backend.F32, backend.BF16, backend.F16, backend.I32} {
		es := dt.Size()
		d, err := b.Alloc(dt, n*size)
		if err != nil {
			return err
		}
		one := nccl.DeviceBuffer{Ptr: d.Ptr + uintptr(rank*n*es), Count: n, DType: dt}
		got := make([]byte, n*size*es)
		check := func() error {
			for _, op := range []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max} {
				in := backendtest.Data(dt, op, rank, n, c.seed)
				if err := b.CopyToDevice(ctx, one, in, 0); err != nil {
					return err
				}
				if err := b.AllreduceDevice(ctx, one, one, op, 0, nccl.Wait); err != nil {
					return err
				}
				if err := b.CopyFromDevice(ctx, got[:n*es], one, 0); err != nil {
					return err
				}
				if err := backendtest.Check(dt, op, size, got[:n*es], backendtest.Expect(dt, op, size, n, c.seed)); err != nil {
					return fmt.Errorf("allreduce %v: %w", op, err)
				}
				// reduce-scatter in place
				all := backendtest.Data(dt, op, rank, n*size, c.seed)
				if err := b.CopyToDevice(ctx, d, all, 0); err != nil {
					return err
				}
				if err := b.ReduceScatterDevice(ctx, d, one, op, 0, nccl.Wait); err != nil {
					return err
				}
				if err := b.CopyFromDevice(ctx, got[:n*es], one, 0); err != nil {
					return err
				}
				want := backendtest.Expect(dt, op, size, n*size, c.seed)
				if err := backendtest.Check(dt, op, size, got[:n*es], want[rank*n:(rank+1)*n]); err != nil {
					return fmt.Errorf("reduce-scatter %v: %w", op, err)
				}
				// reduce to the last rank
				if err := b.CopyToDevice(ctx, one, in, 0); err != nil {
					return err
				}
				root := size - 1
				if err := b.ReduceDevice(ctx, one, one, op, root, 0, nccl.Wait); err != nil {
					return err
				}
				if rank == root {
					if err := b.CopyFromDevice(ctx, got[:n*es], one, 0); err != nil {
						return err
					}
					if err := backendtest.Check(dt, op, size, got[:n*es], backendtest.Expect(dt, op, size, n, c.seed)); err != nil {
						return fmt.Errorf("reduce %v: %w", op, err)
					}
				}
			}
			// allgather in place, then broadcast from rank 0
			mine := backendtest.Data(dt, backend.Sum, rank, n, c.seed)
			if err := b.CopyToDevice(ctx, one, mine, 0); err != nil {
				return err
			}
			if err := b.AllgatherDevice(ctx, one, d, 0, nccl.Wait); err != nil {
				return err
			}
			if err := b.CopyFromDevice(ctx, got, d, 0); err != nil {
				return err
			}
			for r := 0; r < size; r++ {
				if !bytes.Equal(got[r*n*es:(r+1)*n*es], backendtest.Data(dt, backend.Sum, r, n, c.seed)) {
					return fmt.Errorf("allgather: block %d differs", r)
				}
			}
			if err := b.BroadcastDevice(ctx, one, 0, 0, nccl.Wait); err != nil {
				return err
			}
			if err := b.CopyFromDevice(ctx, got[:n*es], one, 0); err != nil {
				return err
			}
			if !bytes.Equal(got[:n*es], backendtest.Data(dt, backend.Sum, 0, n, c.seed)) {
				return fmt.Errorf("broadcast differs")
			}
			return nil
		}
		err = check()
		b.Free(d)
		if err != nil {
			return fmt.Errorf("%v: %w", dt, err)
		}
		fmt.Printf("  device allreduce, reduce-scatter, reduce (sum, prod, min, max), allgather, broadcast of %d %v: ok\n", n, dt)
	}
	// avg, NCCL 2.10 and later
	if b.Version().AtLeast(2, 10) {
		d, err := b.Alloc(backend.F32, 1000)
		if err != nil {
			return err
		}
		defer b.Free(d)
		if err := b.CopyToDevice(ctx, d, fill(rank, 1000), 0); err != nil {
			return err
		}
		if err := b.AllreduceDevice(ctx, d, d, backend.Avg, 0, nccl.Wait); err != nil {
			return err
		}
		got := make([]byte, 4000)
		if err := b.CopyFromDevice(ctx, got, d, 0); err != nil {
			return err
		}
		for i := 0; i < 1000; i++ {
			g := math.Float32frombits(binary.LittleEndian.Uint32(got[4*i:]))
			if w := c.wantSum(i) / float32(size); math.Abs(float64(g-w)) > 1e-5*float64(w) {
				return fmt.Errorf("avg: element %d: got %v, want %v", i, g, w)
			}
		}
		fmt.Println("  device allreduce avg of 1000 float32: ok")
	}
	return nil
}

// hostOps runs every operation of the backend on host slices, staged
// through the device, for every element type.
func (c *checker) hostOps(ctx context.Context) error {
	b, size, rank := c.b, c.size, c.rank
	for _, dt := range backend.DTypes {
		es := dt.Size()
		for _, n := range []int{0, 1, 7, 65539} {
			for _, op := range []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max} {
				send := backendtest.Data(dt, op, rank, n, c.seed)
				recv := make([]byte, len(send))
				if err := b.Allreduce(ctx, send, recv, dt, op); err != nil {
					return err
				}
				if err := backendtest.Check(dt, op, size, recv, backendtest.Expect(dt, op, size, n, c.seed)); err != nil {
					return fmt.Errorf("allreduce %v %v n=%d: %w", dt, op, n, err)
				}
				if err := b.Reduce(ctx, send, recv, dt, op, size-1); err != nil {
					return err
				}
				if rank == size-1 {
					if err := backendtest.Check(dt, op, size, recv, backendtest.Expect(dt, op, size, n, c.seed)); err != nil {
						return fmt.Errorf("reduce %v %v n=%d: %w", dt, op, n, err)
					}
				}
				all := backendtest.Data(dt, op, rank, n*size, c.seed)
				if err := b.ReduceScatter(ctx, all, recv, dt, op); err != nil {
					return err
				}
				want := backendtest.Expect(dt, op, size, n*size, c.seed)
				if err := backendtest.Check(dt, op, size, recv, want[rank*n:(rank+1)*n]); err != nil {
					return fmt.Errorf("reduce-scatter %v %v n=%d: %w", dt, op, n, err)
				}
			}
			mine := backendtest.Data(dt, backend.Sum, rank, n, c.seed)
			block := func(r int) []byte { return backendtest.Data(dt, backend.Sum, r, n, c.seed) }
			buf := append([]byte(nil), mine...)
			if err := b.Broadcast(ctx, buf, size-1); err != nil {
				return err
			}
			if !bytes.Equal(buf, block(size-1)) {
				return fmt.Errorf("broadcast %v n=%d differs", dt, n)
			}
			gathered := make([]byte, size*len(mine))
			if err := b.Allgather(ctx, mine, gathered); err != nil {
				return err
			}
			for r := 0; r < size; r++ {
				if !bytes.Equal(gathered[r*n*es:(r+1)*n*es], block(r)) {
					return fmt.Errorf("allgather %v n=%d: block %d differs", dt, n, r)
				}
			}
			clear(gathered)
			if err := b.Gather(ctx, mine, gathered, 0); err != nil {
				return err
			}
			if rank == 0 {
				for r := 0; r < size; r++ {
					if !bytes.Equal(gathered[r*n*es:(r+1)*n*es], block(r)) {
						return fmt.Errorf("gather %v n=%d: block %d differs", dt, n, r)
					}
				}
			}
			all := backendtest.Data(dt, backend.Sum, 0, n*size, c.seed)
			if err := b.Scatter(ctx, all, buf, 0); err != nil {
				return err
			}
			if !bytes.Equal(buf, all[rank*n*es:(rank+1)*n*es]) {
				return fmt.Errorf("scatter %v n=%d differs", dt, n)
			}
			send := backendtest.Data(dt, backend.Sum, rank, n*size, c.seed)
			out := make([]byte, len(send))
			if err := b.AllToAll(ctx, send, out); err != nil {
				return err
			}
			for r := 0; r < size; r++ {
				if !bytes.Equal(out[r*n*es:(r+1)*n*es], backendtest.Data(dt, backend.Sum, r, n*size, c.seed)[rank*n*es:(rank+1)*n*es]) {
					return fmt.Errorf("all-to-all %v n=%d: block from %d differs", dt, n, r)
				}
			}
		}
	}
	for i := 0; i < 10; i++ {
		if err := b.Barrier(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("  host allreduce, reduce, reduce-scatter (sum, prod, min, max), broadcast, allgather, gather, scatter, all-to-all of 0, 1, 7 and 65539 elements of every type, and barrier: ok\n")
	if size == 1 {
		fmt.Println("  host send/recv: not run (one rank)")
		return nil
	}
	next, prev := (rank+1)%size, (rank+size-1)%size
	for _, n := range []int{0, 1, 3 << 20} {
		msg := func(from int) []byte { return backendtest.Data(backend.U8, backend.Sum, from, n, c.seed) }
		errc := make(chan error, 1)
		go func() { errc <- b.Send(ctx, msg(rank), next) }()
		got := make([]byte, n)
		if err := b.Recv(ctx, got, prev); err != nil {
			return err
		}
		if err := <-errc; err != nil {
			return err
		}
		if !bytes.Equal(got, msg(prev)) {
			return fmt.Errorf("message of %d bytes from %d differs", n, prev)
		}
	}
	fmt.Println("  host send/recv ring of 0, 1 and 3 MiB bytes, both directions in flight: ok")
	return nil
}

// timings prints an nccl-tests-style table for float32 sum allreduce on
// device memory (in place, NoWait, one Synchronize per batch) and on host
// slices (staged through the device).
func (c *checker) timings(ctx context.Context) error {
	b := c.b
	var list []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 4 {
			return fmt.Errorf("bad size %q", f)
		}
		list = append(list, n/4*4)
	}
	s, err := b.NewStream()
	if err != nil {
		return err
	}
	defer b.DestroyStream(s)
	if c.rank == 0 {
		fmt.Printf("  %-6s %12s %12s %10s %10s\n", "path", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s")
	}
	factor := 2 * float64(c.size-1) / float64(c.size)
	report := func(path string, bytes int, d time.Duration, iters int) {
		if c.rank != 0 {
			return
		}
		us := float64(d.Microseconds()) / float64(iters)
		alg := float64(bytes) / (us * 1e3)
		fmt.Printf("  %-6s %12d %12.1f %10.2f %10.2f\n", path, bytes, us, alg, alg*factor)
	}
	for _, nb := range list {
		iters := 200
		if nb >= 16<<20 {
			iters = 20
		}
		d, err := b.Alloc(backend.F32, nb/4)
		if err != nil {
			return err
		}
		run := func(k int) error {
			for i := 0; i < k; i++ {
				if err := b.AllreduceDevice(ctx, d, d, backend.Sum, s, nccl.NoWait); err != nil {
					return err
				}
			}
			return b.Synchronize(ctx, s)
		}
		if err := run(5); err != nil {
			b.Free(d)
			return err
		}
		if err := b.Barrier(ctx); err != nil {
			b.Free(d)
			return err
		}
		t := time.Now()
		err = run(iters)
		el := time.Since(t)
		b.Free(d)
		if err != nil {
			return err
		}
		report("device", nb, el, iters)

		host := make([]byte, nb)
		hiters := max(iters/4, 5)
		if err := b.Allreduce(ctx, host, host, backend.F32, backend.Sum); err != nil {
			return err
		}
		if err := b.Barrier(ctx); err != nil {
			return err
		}
		t = time.Now()
		for i := 0; i < hiters; i++ {
			if err := b.Allreduce(ctx, host, host, backend.F32, backend.Sum); err != nil {
				return err
			}
		}
		report("host", nb, time.Since(t), hiters)
	}
	return nil
}
