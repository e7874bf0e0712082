//go:build cgo && unix

package nccl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// The tests run against a fake NCCL and a fake CUDA runtime
// (testdata/fake), built with gcc when the tests start.
var fakes struct {
	nccl, cudart string
	noBroadcast  string // a fake NCCL without ncclBroadcast
	old          string // a copy of the fake NCCL, loaded apart (for FAKENCCL_VERSION)
	err          error  // why they could not be built
}

func TestMain(m *testing.M) {
	if os.Getenv(childRank) != "" {
		os.Exit(child())
	}
	dir, err := os.MkdirTemp("", "raygo-fakenccl-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakes.err = buildFakes(dir)
	code := m.Run()
	os.RemoveAll(dir)
	// A rank left waiting in the fake ncclCommInitRank on purpose
	// (TestInitContext, TestSendRecvErrors) ends with the process, before
	// it removes its file.
	left, _ := filepath.Glob(fmt.Sprintf("/dev/shm/fakenccl-%d-*", os.Getpid()))
	for _, f := range left {
		os.Remove(f)
	}
	os.Exit(code)
}

func buildFakes(dir string) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return err
	}
	fakes.nccl = filepath.Join(dir, "libnccl.so.2")
	fakes.cudart = filepath.Join(dir, "libcudart.so.12")
	fakes.noBroadcast = filepath.Join(dir, "nobroadcast", "libnccl.so.2")
	fakes.old = filepath.Join(dir, "old", "libnccl.so.2")
	for _, d := range []string{filepath.Dir(fakes.noBroadcast), filepath.Dir(fakes.old)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, c := range [][]string{
		{"-o", fakes.nccl, "testdata/fake/fakenccl.c", "-lpthread"},
		{"-o", fakes.old, "testdata/fake/fakenccl.c", "-lpthread"},
		{"-DFAKE_OMIT_BROADCAST", "-o", fakes.noBroadcast, "testdata/fake/fakenccl.c", "-lpthread"},
		{"-o", fakes.cudart, "testdata/fake/fakecudart.c"},
	} {
		args := append([]string{"-shared", "-fPIC", "-O2", "-Wall", "-Werror"}, c...)
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// useFakes points the loader at the fakes for this test.
func useFakes(t testing.TB) {
	t.Helper()
	if fakes.err != nil {
		t.Skipf("the fake NCCL could not be built: %v", fakes.err)
	}
	t.Setenv(EnvNCCLLibrary, fakes.nccl)
	t.Setenv(EnvCUDARTLibrary, fakes.cudart)
}

func factory(t testing.TB) backend.Factory {
	t.Helper()
	f, ok := backend.Lookup(Name)
	if !ok {
		t.Fatalf("%q is not registered", Name)
	}
	return f
}

// group builds every rank of a size-rank group in this process.
func group(t *testing.T, size int, nodes []string, opts map[string]string) []*Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := backendtest.Group(ctx, factory(t), size, nodes, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*Backend, size)
	for i, b := range bs {
		out[i] = b.(*Backend)
	}
	t.Cleanup(func() {
		for _, b := range out {
			b.Close()
		}
	})
	return out
}

// all runs f on every rank at once.
func all(t *testing.T, bs []*Backend, timeout time.Duration, f func(ctx context.Context, rank int, b *Backend) error) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx, i, b)
		}()
	}
	wg.Wait()
	return errs
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
}

func TestConformance(t *testing.T) {
	useFakes(t)
	backendtest.Run(t, factory(t), backendtest.Options{Sizes: []int{1, 2, 3, 4}})
}

// TestConformanceLarge covers world sizes 5 to 8, ranks spread over
// three nodes, with shorter messages.
func TestConformanceLarge(t *testing.T) {
	useFakes(t)
	backendtest.Run(t, factory(t), backendtest.Options{
		Sizes:   []int{5, 6, 7, 8},
		Lengths: []int{0, 7, 1000},
		Nodes: func(size int) []string {
			nodes := make([]string, size)
			for i := range nodes {
				nodes[i] = fmt.Sprintf("node%d", i%3)
			}
			return nodes
		},
	})
}

// TestChunked stages through 64 bytes, so that every operation moves in
// many chunks, some of them short.
func TestChunked(t *testing.T) {
	useFakes(t)
	backendtest.Run(t, factory(t), backendtest.Options{
		Sizes:   []int{1, 2, 3},
		Lengths: []int{0, 1, 7, 333},
		Backend: map[string]string{OptStagingBytes: "64"},
	})
}

func TestProbe(t *testing.T) {
	useFakes(t)
	info, err := Probe()
	if err != nil {
		t.Fatal(err)
	}
	if info.NCCLPath != fakes.nccl || info.CUDARTPath != fakes.cudart || info.Version != (Version{2, 21, 5}) || info.Devices != 2 {
		t.Fatalf("got %+v", info)
	}
}

func TestDeviceChoice(t *testing.T) {
	useFakes(t) // two devices
	bs := group(t, 5, []string{"a", "a", "b", "a", "b"}, nil)
	for i, want := range []int{0, 1, 0, 0, 1} {
		if got := bs[i].Device(); got != want {
			t.Errorf("rank %d: device %d, want %d", i, got, want)
		}
	}
	bs = group(t, 2, nil, map[string]string{OptDevice: "1"})
	for i, b := range bs {
		if b.Device() != 1 {
			t.Errorf("rank %d: device %d with %s=1", i, b.Device(), OptDevice)
		}
	}
	_, err := backendtest.Group(context.Background(), factory(t), 1, nil, map[string]string{OptDevice: "2"})
	if err == nil || !strings.Contains(err.Error(), "2 CUDA devices are visible") {
		t.Fatalf("device 2 of 2: %v", err)
	}
}

func TestNoDevice(t *testing.T) {
	useFakes(t)
	t.Setenv("FAKECUDA_DEVICES", "0")
	_, err := backendtest.Group(context.Background(), factory(t), 1, nil, nil)
	var ce *CUDAError
	if !errors.As(err, &ce) || ce.Call != "cudaGetDeviceCount" || !strings.Contains(err.Error(), "no usable CUDA device") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	useFakes(t)
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	for _, c := range []struct {
		name, nccl, cudart string
		library, path, sym string
	}{
		{"nccl missing", missing, fakes.cudart, "NCCL", missing, ""},
		{"cudart missing", fakes.nccl, missing, "CUDA runtime", missing, ""},
		{"symbol missing", fakes.noBroadcast, fakes.cudart, "NCCL", fakes.noBroadcast, "ncclBroadcast"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvNCCLLibrary, c.nccl)
			t.Setenv(EnvCUDARTLibrary, c.cudart)
			_, err := New(context.Background(), backend.Config{Group: "g", Size: 1})
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v", err)
			}
			if le.Library != c.library || le.Path != c.path || le.Symbol != c.sym {
				t.Fatalf("got %+v", le)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.sym) {
				t.Fatalf("%v does not name %s and %q", err, c.path, c.sym)
			}
			if _, err := Probe(); !errors.As(err, &le) {
				t.Fatalf("Probe: %v", err)
			}
		})
	}
}

func TestInitFailure(t *testing.T) {
	useFakes(t)
	t.Setenv("FAKENCCL_FAIL_INIT_RANK", "1")
	rv := backendtest.NewMemRendezvous(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b *Backend
			b, errs[r] = New(context.Background(), backend.Config{Group: "g", Rank: r, Size: 2, Rendezvous: rv.ForRank(r)})
			if b != nil {
				b.Close()
			}
		}()
	}
	wg.Wait()
	var ne *NCCLError
	if !errors.As(errs[1], &ne) || ne.Result != 2 || !strings.Contains(errs[1].Error(), "ncclCommInitRank (rank 1 of 2)") || !strings.Contains(errs[1].Error(), "unhandled system error") {
		t.Errorf("rank 1: %v", errs[1])
	}
	if !errors.As(errs[0], &ne) || ne.Result != 6 || !strings.Contains(errs[0].Error(), `group "g" rank 0`) {
		t.Errorf("rank 0: %v", errs[0])
	}
}

// TestInitContext: a rank that waits in ncclCommInitRank for a rank that
// never comes returns when ctx ends.
func TestInitContext(t *testing.T) {
	useFakes(t)
	t.Setenv("FAKENCCL_INIT_TIMEOUT_MS", "2000") // the abandoned init ends too
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rv := backend.DirRendezvous{Dir: t.TempDir(), Rank: 0, Size: 2}
	start := time.Now()
	_, err := New(ctx, backend.Config{Group: "g", Rank: 0, Size: 2, Rendezvous: rv, Options: map[string]string{OptP2P: "false"}})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "ncclCommInitRank") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("returned after %v", d)
	}
}

func TestAsyncError(t *testing.T) {
	useFakes(t)
	t.Setenv("FAKENCCL_ASYNC_ERROR_AT", "3")
	t.Setenv("FAKENCCL_ASYNC_ERROR_RANK", "0")
	bs := group(t, 2, nil, map[string]string{OptP2P: "false"})
	errs := all(t, bs, 20*time.Second, func(ctx context.Context, rank int, b *Backend) error {
		for i := 0; i < 2; i++ {
			if err := b.Barrier(ctx); err != nil {
				return err
			}
		}
		buf := make([]byte, 64)
		return b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
	})
	var ne *NCCLError
	if !errors.As(errs[0], &ne) || ne.Result != 2 || !errors.Is(errs[0], ErrAborted) || !strings.Contains(errs[0].Error(), "asynchronous error") {
		t.Errorf("rank 0: %v", errs[0])
	}
	// Rank 1 learns of rank 0's abort as a remote error, not by waiting.
	if !errors.As(errs[1], &ne) || ne.Result != 6 || errors.Is(errs[1], context.DeadlineExceeded) {
		t.Errorf("rank 1: %v", errs[1])
	}
	if err := bs[0].Barrier(context.Background()); !errors.Is(err, ErrAborted) {
		t.Errorf("after the abort: %v", err)
	}
}

func TestContextAbort(t *testing.T) {
	useFakes(t)
	bs := group(t, 2, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	buf := make([]byte, 40)
	err := bs[1].Allreduce(ctx, buf, buf, backend.F64, backend.Max)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "allreduce") {
		t.Fatalf("got %v", err)
	}
	if err := bs[1].Barrier(context.Background()); !errors.Is(err, ErrAborted) {
		t.Fatalf("after the abort: %v", err)
	}
	// Rank 0's own communicator is still whole, though its peer is gone:
	// it learns of that through the remote abort.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bs[0].Barrier(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("rank 0: %v", err)
	}
}

func TestCloseInFlight(t *testing.T) {
	useFakes(t)
	bs := group(t, 2, nil, nil)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4)
		errc <- bs[1].Allreduce(context.Background(), buf, buf, backend.I32, backend.Sum)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := bs[1].Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrAborted) || !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight did not return after Close")
	}
	if err := bs[1].Barrier(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestSendRecvErrors(t *testing.T) {
	useFakes(t)
	t.Setenv("FAKENCCL_INIT_TIMEOUT_MS", "1000")

	t.Run("peer never receives", func(t *testing.T) {
		bs := group(t, 2, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := bs[0].Send(ctx, make([]byte, 10), 1)
		var we *backend.WaitError
		if !errors.As(err, &we) || fmt.Sprint(we.Missing) != "[1]" || we.Rank != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("peer stops receiving", func(t *testing.T) {
		bs := group(t, 2, nil, nil)
		// Build the pair with one message, then send more than the
		// fake's 64 KiB of buffering with no receive.
		errs := all(t, bs, 10*time.Second, func(ctx context.Context, rank int, b *Backend) error {
			if rank == 0 {
				return b.Send(ctx, []byte{1}, 1)
			}
			return b.Recv(ctx, make([]byte, 1), 0)
		})
		noErrors(t, errs)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := bs[0].Send(ctx, make([]byte, 200<<10), 1)
		var we *backend.WaitError
		if !errors.As(err, &we) || fmt.Sprint(we.Missing) != "[1]" || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("length mismatch", func(t *testing.T) {
		bs := group(t, 2, nil, nil)
		errs := all(t, bs, 10*time.Second, func(ctx context.Context, rank int, b *Backend) error {
			if rank == 0 {
				return b.Send(ctx, make([]byte, 100<<10), 1)
			}
			return b.Recv(ctx, make([]byte, 12), 0)
		})
		if errs[1] == nil || !strings.Contains(errs[1].Error(), "rank 0 sent a message of 102400 bytes") || !strings.Contains(errs[1].Error(), "receive of 12 bytes from rank 0") {
			t.Errorf("receiver: %v", errs[1])
		}
		if errs[0] == nil || errors.Is(errs[0], context.DeadlineExceeded) {
			t.Errorf("sender: %v", errs[0])
		}
	})

	t.Run("bad peers", func(t *testing.T) {
		bs := group(t, 2, nil, map[string]string{OptP2P: "false"})
		ctx := context.Background()
		for _, c := range []struct {
			err  error
			want string
		}{
			{bs[0].Send(ctx, nil, 1), "nccl.p2p=false"},
			{bs[0].Recv(ctx, nil, 0), "is this rank"},
			{bs[0].Send(ctx, nil, 2), "outside 0..1"},
		} {
			if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
				t.Errorf("got %v, want %q", c.err, c.want)
			}
		}
	})
}

// TestSendRecvBothWays sends in both directions at once, the pattern that
// deadlocks on one communicator, with messages larger than the fake's
// buffering.
func TestSendRecvBothWays(t *testing.T) {
	useFakes(t)
	bs := group(t, 3, nil, map[string]string{OptStagingBytes: "4096"})
	const n = 300 << 10
	msg := func(from, to int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + from*3 + to)
		}
		return b
	}
	errs := all(t, bs, 30*time.Second, func(ctx context.Context, rank int, b *Backend) error {
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(bs))
		for peer := range bs {
			if peer == rank {
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := 0; i < 2; i++ {
					if err := b.Send(ctx, msg(rank, peer), peer); err != nil {
						errs <- err
					}
				}
			}()
			go func() {
				defer wg.Done()
				got := make([]byte, n)
				for i := 0; i < 2; i++ {
					if err := b.Recv(ctx, got, peer); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, msg(peer, rank)) {
						errs <- fmt.Errorf("message %d from %d differs", i, peer)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	})
	noErrors(t, errs)
}

func TestVersionGate(t *testing.T) {
	useFakes(t)
	t.Setenv(EnvNCCLLibrary, fakes.old)
	t.Setenv("FAKENCCL_VERSION", "2804")
	bs := group(t, 1, nil, nil)
	b := bs[0]
	if b.Version() != (Version{2, 8, 4}) {
		t.Fatalf("version %v", b.Version())
	}
	ctx := context.Background()
	buf := make([]byte, 8)
	if err := b.Allreduce(ctx, buf, buf, backend.BF16, backend.Sum); err == nil || !strings.Contains(err.Error(), "bfloat16 needs NCCL 2.10 or later; "+fakes.old+" is NCCL 2.8.4") {
		t.Fatalf("bfloat16: %v", err)
	}
	if err := b.Allreduce(ctx, buf, buf, backend.F16, backend.Sum); err != nil {
		t.Fatalf("float16: %v", err)
	}
	d, err := b.Alloc(backend.F32, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free(d)
	if err := b.AllreduceDevice(ctx, d, d, backend.Avg, 0, Wait); err == nil || !strings.Contains(err.Error(), "avg needs NCCL 2.10") {
		t.Fatalf("avg: %v", err)
	}
}

// TestDeviceBuffers runs the collectives on device buffers, on a stream
// of the caller's, waiting and not.
func TestDeviceBuffers(t *testing.T) {
	useFakes(t)
	const size, n = 3, 1001
	bs := group(t, size, nil, nil)
	seed := uint64(time.Now().UnixNano())
	errs := all(t, bs, 30*time.Second, func(ctx context.Context, rank int, b *Backend) error {
		s, err := b.NewStream()
		if err != nil {
			return err
		}
		defer b.DestroyStream(s)
		for _, dt := range []backend.DType{backend.F32, backend.BF16, backend.I64} {
			for _, op := range []backend.Op{backend.Sum, backend.Max, backend.Avg} {
				if op == backend.Avg && dt == backend.BF16 {
					continue // the reference averages in float64, NCCL in the type
				}
				in := backendtest.Data(dt, op, rank, n, seed)
				send, err := b.Alloc(dt, n)
				if err != nil {
					return err
				}
				recv, err := b.Alloc(dt, n)
				if err != nil {
					return err
				}
				if err := b.CopyToDevice(ctx, send, in, s); err != nil {
					return err
				}
				// Out of place and waiting, then in place on the
				// caller's stream without waiting.
				if err := b.AllreduceDevice(ctx, send, recv, op, s, Wait); err != nil {
					return err
				}
				if err := b.AllreduceDevice(ctx, send, send, op, s, NoWait); err != nil {
					return err
				}
				if err := b.Synchronize(ctx, s); err != nil {
					return err
				}
				want := backendtest.Expect(dt, op, size, n, seed)
				for _, d := range []DeviceBuffer{recv, send} {
					got := make([]byte, len(in))
					if err := b.CopyFromDevice(ctx, got, d, s); err != nil {
						return err
					}
					if err := backendtest.Check(dt, op, size, got, want); err != nil {
						return fmt.Errorf("allreduce %v %v: %w", dt, op, err)
					}
				}
				b.Free(send)
				b.Free(recv)
			}
		}

		dt := backend.F64
		in := backendtest.Data(dt, backend.Sum, rank, n*size, seed)
		d, err := b.Alloc(dt, n*size)
		if err != nil {
			return err
		}
		defer b.Free(d)
		one := DeviceBuffer{Ptr: d.Ptr + uintptr(rank*n*8), Count: n, DType: dt}
		got := make([]byte, len(in))

		// reduce-scatter in place: block rank of the sum lands in place
		if err := b.CopyToDevice(ctx, d, in, s); err != nil {
			return err
		}
		if err := b.ReduceScatterDevice(ctx, d, one, backend.Sum, s, Wait); err != nil {
			return err
		}
		if err := b.CopyFromDevice(ctx, got, d, s); err != nil {
			return err
		}
		want := backendtest.Expect(dt, backend.Sum, size, n*size, seed)
		if err := backendtest.Check(dt, backend.Sum, size, got[rank*n*8:(rank+1)*n*8], want[rank*n:(rank+1)*n]); err != nil {
			return fmt.Errorf("reduce-scatter: %w", err)
		}

		// allgather in place
		mine := backendtest.Data(dt, backend.Sum, rank, n, seed)
		if err := b.CopyToDevice(ctx, one, mine, s); err != nil {
			return err
		}
		if err := b.AllgatherDevice(ctx, one, d, s, Wait); err != nil {
			return err
		}
		if err := b.CopyFromDevice(ctx, got, d, s); err != nil {
			return err
		}
		for r := 0; r < size; r++ {
			if !bytes.Equal(got[r*n*8:(r+1)*n*8], backendtest.Data(dt, backend.Sum, r, n, seed)) {
				return fmt.Errorf("allgather: block %d differs", r)
			}
		}

		// broadcast from the last rank
		if err := b.CopyToDevice(ctx, one, mine, s); err != nil {
			return err
		}
		if err := b.BroadcastDevice(ctx, one, size-1, s, Wait); err != nil {
			return err
		}
		if err := b.CopyFromDevice(ctx, got[:n*8], one, s); err != nil {
			return err
		}
		if !bytes.Equal(got[:n*8], backendtest.Data(dt, backend.Sum, size-1, n, seed)) {
			return fmt.Errorf("broadcast differs")
		}

		// reduce (min) to rank 1
		in = backendtest.Data(dt, backend.Min, rank, n, seed)
		if err := b.CopyToDevice(ctx, one, in, s); err != nil {
			return err
		}
		out := DeviceBuffer{Ptr: d.Ptr, Count: n, DType: dt}
		if rank == 1 {
			out = DeviceBuffer{Ptr: d.Ptr + uintptr(((rank+1)%size)*n*8), Count: n, DType: dt}
		}
		if err := b.ReduceDevice(ctx, one, out, backend.Min, 1, s, Wait); err != nil {
			return err
		}
		if rank == 1 {
			if err := b.CopyFromDevice(ctx, got[:n*8], out, s); err != nil {
				return err
			}
			if err := backendtest.Check(dt, backend.Min, size, got[:n*8], backendtest.Expect(dt, backend.Min, size, n, seed)); err != nil {
				return fmt.Errorf("reduce: %w", err)
			}
		}
		return nil
	})
	noErrors(t, errs)
}

func TestDeviceArgumentErrors(t *testing.T) {
	useFakes(t)
	b := group(t, 2, nil, nil)[0]
	ctx := context.Background()
	f32 := DeviceBuffer{Ptr: 1 << 20, Count: 4, DType: backend.F32}
	for _, c := range []struct {
		err  error
		want string
	}{
		{b.AllreduceDevice(ctx, f32, DeviceBuffer{Ptr: 1, Count: 5, DType: backend.F32}, backend.Sum, 0, Wait), "send holds 4 elements and receive 5"},
		{b.AllreduceDevice(ctx, f32, DeviceBuffer{Ptr: 1, Count: 4, DType: backend.F64}, backend.Sum, 0, Wait), "send holds float32 and receive float64"},
		{b.AllreduceDevice(ctx, DeviceBuffer{Count: 4, DType: backend.F32}, f32, backend.Sum, 0, Wait), "at address 0"},
		{b.AllgatherDevice(ctx, f32, f32, 0, Wait), "want 2 ranks × 4"},
		{b.ReduceScatterDevice(ctx, f32, f32, backend.Sum, 0, Wait), "want 2 ranks × 4"},
		{b.BroadcastDevice(ctx, f32, 2, 0, Wait), "root 2 is outside 0..1"},
		{b.ReduceDevice(ctx, f32, f32, backend.Sum, -1, 0, Wait), "root -1 is outside 0..1"},
		{b.Allreduce(ctx, make([]byte, 6), make([]byte, 6), backend.F32, backend.Sum), "multiple of 4"},
		{b.Allgather(ctx, make([]byte, 3), make([]byte, 5)), "want 2 ranks × 3"},
		{b.ReduceScatter(ctx, make([]byte, 8), make([]byte, 8), backend.F32, backend.Sum), "want 2 ranks"},
		{b.Gather(ctx, make([]byte, 3), make([]byte, 5), 0), "want 2 ranks × 3"},
		{b.Scatter(ctx, make([]byte, 5), make([]byte, 3), 0), "want 2 ranks × 3"},
		{b.AllToAll(ctx, make([]byte, 3), make([]byte, 3)), "multiple of 2 ranks"},
		{b.Broadcast(ctx, make([]byte, 3), 5), "root 5"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || !strings.Contains(c.err.Error(), `group "test" rank 0`) {
			t.Errorf("got %v, want %q", c.err, c.want)
		}
	}
}

// The multi-process test runs each rank in a process of its own: the test
// binary again, told its rank by the environment.
const (
	childRank = "RAYGO_NCCL_TEST_RANK"
	childSize = "RAYGO_NCCL_TEST_SIZE"
	childDir  = "RAYGO_NCCL_TEST_DIR"
	childSeed = "RAYGO_NCCL_TEST_SEED"
)

func TestMultiProcess(t *testing.T) {
	useFakes(t)
	const size = 3
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	var wg sync.WaitGroup
	outs := make([][]byte, size)
	errs := make([]error, size)
	for r := 0; r < size; r++ {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", childRank, r), fmt.Sprintf("%s=%d", childSize, size),
			childDir+"="+dir, fmt.Sprintf("%s=%d", childSeed, seed))
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[r], errs[r] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for r := range errs {
		if errs[r] != nil || !bytes.Contains(outs[r], []byte("rank ok")) {
			t.Errorf("rank %d: %v\n%s", r, errs[r], outs[r])
		}
	}
}

// child is one rank of TestMultiProcess.
func child() int {
	var rank, size int
	var seed uint64
	fmt.Sscan(os.Getenv(childRank), &rank)
	fmt.Sscan(os.Getenv(childSize), &size)
	fmt.Sscan(os.Getenv(childSeed), &seed)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := childRun(ctx, rank, size, seed); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
		return 1
	}
	fmt.Println("rank ok")
	return 0
}

func childRun(ctx context.Context, rank, size int, seed uint64) error {
	members := make([]backend.Member, size)
	for i := range members {
		members[i] = backend.Member{Rank: i, Node: "node0", Host: "127.0.0.1", Pid: os.Getpid()}
	}
	rv := backend.DirRendezvous{Dir: os.Getenv(childDir), Rank: rank, Size: size}
	b, err := New(ctx, backend.Config{Group: "mp", Rank: rank, Size: size, Members: members, Rendezvous: rv})
	if err != nil {
		return err
	}
	defer b.Close()
	if b.Device() != rank%2 {
		return fmt.Errorf("device %d, want %d", b.Device(), rank%2)
	}
	const n = 70001
	for _, c := range []struct {
		dt backend.DType
		op backend.Op
	}{{backend.F32, backend.Sum}, {backend.BF16, backend.Max}, {backend.I64, backend.Prod}, {backend.F16, backend.Min}} {
		send := backendtest.Data(c.dt, c.op, rank, n, seed)
		recv := make([]byte, len(send))
		if err := b.Allreduce(ctx, send, recv, c.dt, c.op); err != nil {
			return err
		}
		if err := backendtest.Check(c.dt, c.op, size, recv, backendtest.Expect(c.dt, c.op, size, n, seed)); err != nil {
			return fmt.Errorf("allreduce %v %v: %w", c.dt, c.op, err)
		}
	}
	dt := backend.F64
	send := backendtest.Data(dt, backend.Sum, rank, n*size, seed)
	recv := make([]byte, n*8)
	if err := b.ReduceScatter(ctx, send, recv, dt, backend.Sum); err != nil {
		return err
	}
	want := backendtest.Expect(dt, backend.Sum, size, n*size, seed)
	if err := backendtest.Check(dt, backend.Sum, size, recv, want[rank*n:(rank+1)*n]); err != nil {
		return fmt.Errorf("reduce-scatter: %w", err)
	}
	mine := backendtest.Data(dt, backend.Sum, rank, n, seed)
	gathered := make([]byte, size*len(mine))
	if err := b.Allgather(ctx, mine, gathered); err != nil {
		return err
	}
	for r := 0; r < size; r++ {
		if !bytes.Equal(gathered[r*n*8:(r+1)*n*8], backendtest.Data(dt, backend.Sum, r, n, seed)) {
			return fmt.Errorf("allgather: block %d differs", r)
		}
	}
	buf := append([]byte(nil), mine...)
	if err := b.Broadcast(ctx, buf, 2); err != nil {
		return err
	}
	if !bytes.Equal(buf, backendtest.Data(dt, backend.Sum, 2, n, seed)) {
		return fmt.Errorf("broadcast differs")
	}
	out := make([]byte, len(send))
	if err := b.AllToAll(ctx, send, out); err != nil {
		return err
	}
	for r := 0; r < size; r++ {
		if !bytes.Equal(out[r*n*8:(r+1)*n*8], backendtest.Data(dt, backend.Sum, r, n*size, seed)[rank*n*8:(rank+1)*n*8]) {
			return fmt.Errorf("all-to-all: block from %d differs", r)
		}
	}
	// a ring of sends, both directions of each pair in flight at once
	next, prev := (rank+1)%size, (rank+size-1)%size
	errc := make(chan error, 1)
	go func() { errc <- b.Send(ctx, mine, next) }()
	got := make([]byte, len(mine))
	if err := b.Recv(ctx, got, prev); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, backendtest.Data(dt, backend.Sum, prev, n, seed)) {
		return fmt.Errorf("message from %d differs", prev)
	}
	return b.Barrier(ctx)
}

// BenchmarkAllreduceFake measures the host path's own cost (staging,
// polling, cgo) against the fake NCCL, two ranks in this process.
func BenchmarkAllreduceFake(b *testing.B) {
	useFakes(b)
	for _, size := range []int{4, 64 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			bs, err := backendtest.Group(context.Background(), factory(b), 2, nil, map[string]string{OptP2P: "false"})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				for _, x := range bs {
					x.Close()
				}
			}()
			bufs := [][]byte{make([]byte, size), make([]byte, size)}
			b.SetBytes(int64(size))
			b.ResetTimer()
			err = backendtest.All(context.Background(), bs, time.Minute, func(ctx context.Context, rank int, x backend.Backend) error {
				for i := 0; i < b.N; i++ {
					if err := x.Allreduce(ctx, bufs[rank], bufs[rank], backend.F32, backend.Sum); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
