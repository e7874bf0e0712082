package shm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

func TestConformance(t *testing.T) {
	o := backendtest.Options{}
	if testing.Short() || raceEnabled {
		// Every dtype at 2 and 3 ranks, two at the other sizes.
		o.Sizes = []int{2, 3}
		t.Run("short", func(t *testing.T) {
			backendtest.Run(t, New, backendtest.Options{Sizes: []int{1, 4, 5, 6, 7, 8}, Lengths: []int{0, 1, 7, 1000, 5003},
				DTypes: []backend.DType{backend.F32, backend.BF16}})
		})
	}
	backendtest.Run(t, New, o)
}

// TestNonTemporal runs the calls that can write the stages with
// non-temporal stores that way (see tune.go).
func TestNonTemporal(t *testing.T) {
	forceNT = 2
	defer func() { forceNT = 0 }()
	backendtest.Run(t, New, backendtest.Options{Sizes: []int{2, 3}, Lengths: []int{0, 7, 9001, 65539},
		DTypes: []backend.DType{backend.F32, backend.F64, backend.I32, backend.I64, backend.U8, backend.BF16}})
}

func TestTuner(t *testing.T) {
	var tu tuner
	var seq []int
	for range 1 + 2*trials {
		m, timed := tu.pick(tu.best())
		if timed {
			tu.record(m, time.Duration(2-m)*time.Millisecond, 1<<20) // mode 1 is faster
		}
		seq = append(seq, m)
	}
	if fmt.Sprint(seq) != "[0 0 1 0 1 0 1]" {
		t.Fatalf("first modes %v, want a warm-up then alternating", seq)
	}
	explored := 0
	for range 4 * exploreEvery {
		m, _ := tu.pick(tu.best())
		if m == 0 {
			explored++
		}
		tu.record(m, time.Duration(2-m)*time.Millisecond, 1<<20)
	}
	if tu.best() != 1 || explored != 4 {
		t.Fatalf("best %d after %d explorations of the slower mode; want 1 after 4", tu.best(), explored)
	}
	for n, want := range map[int]int{ntMin: 0, 256<<10 - 1: 0, 256 << 10: 1, 2 << 20: 2, 16 << 20: 3, 1 << 30: 3} {
		if got := sizeClass(n); got != want {
			t.Errorf("sizeClass(%d) = %d, want %d", n, got, want)
		}
	}
	// The placement changes: mode 1 becomes slow, and is dropped.
	for range window {
		tu.record(1, 10*time.Millisecond, 1<<20)
	}
	if tu.best() != 0 {
		t.Fatalf("best %d after mode 1 slowed down, want 0", tu.best())
	}
}

// TestSmallSlots runs calls of many steps through the smallest slots and
// rings.
func TestSmallSlots(t *testing.T) {
	opts := map[string]string{OptSlotBytes: "4096", OptRingBytes: "4096", "tcp.ignored": "x"}
	backendtest.Run(t, New, backendtest.Options{Sizes: []int{2, 3, 5}, Lengths: []int{0, 3, 1029, 20011},
		DTypes: []backend.DType{backend.F32, backend.F64, backend.I32, backend.U8, backend.F16}, Backend: opts})
}

func group(t *testing.T, size int, opts map[string]string) []backend.Backend {
	t.Helper()
	bs, err := backendtest.Group(context.Background(), New, size, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range bs {
			b.Close()
		}
	})
	return bs
}

// TestMissingRank: ranks 0 and 1 of 3 call allreduce, rank 2 never does.
func TestMissingRank(t *testing.T) {
	bs := group(t, 3, nil)
	for _, n := range []int{16, 1 << 20} { // local and shared algorithms
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, n)
				errs[r] = bs[r].Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
			}()
		}
		wg.Wait()
		cancel()
		for r, err := range errs {
			var we *backend.WaitError
			if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("n=%d rank %d: got %v, want a WaitError wrapping the deadline", n, r, err)
			}
			if we.Op != "allreduce" || we.Rank != r || len(we.Missing) != 1 || we.Missing[0] != 2 {
				t.Fatalf("n=%d rank %d: %+v, want allreduce on rank %d missing [2]", n, r, we, r)
			}
		}
		// The group is unusable now; make a fresh one for the next size.
		bs = group(t, 3, nil)
	}
}

func TestWrongNode(t *testing.T) {
	_, err := backendtest.Group(context.Background(), New, 4, []string{"a", "a", "b", "c"}, nil)
	if err == nil {
		t.Fatal("a group over three nodes was built")
	}
	for _, want := range []string{`ranks [0 1] on node "a"`, `ranks [2] on node "b"`, `ranks [3] on node "c"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"shm.slot_size": "4096"}, "unknown option shm.slot_size"},
		{map[string]string{OptSlotBytes: "100"}, "shm.slot_bytes=\"100\""},
		{map[string]string{OptSlotBytes: "4100"}, "multiple of 64"},
		{map[string]string{OptRingBytes: "x"}, "shm.ring_bytes"},
		{map[string]string{OptDir: ""}, "shm.dir is empty"},
	} {
		_, err := backendtest.Group(context.Background(), New, 2, nil, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %v: got %v, want an error saying %s", tc.opts, err, tc.want)
		}
	}
	// Ranks that disagree on the slot size.
	rv := backendtest.NewMemRendezvous(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := map[string]string{OptSlotBytes: []string{"8192", "16384"}[r]}
			var b backend.Backend
			b, errs[r] = New(context.Background(), backend.Config{Group: "opts", Rank: r, Size: 2, Rendezvous: rv.ForRank(r), Options: opts})
			if b != nil {
				b.Close()
			}
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 1") {
			t.Errorf("rank %d: got %v, want an error naming rank 1's mapping", r, err)
		}
	}
}

// TestMismatch: ranks calling different operations or lengths fail with
// ErrMismatch instead of reading garbage.
func TestMismatch(t *testing.T) {
	bs := group(t, 2, nil)
	err := backendtest.All(context.Background(), bs, 5*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
		buf := make([]byte, 64*(rank+1))
		return b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
	})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "allreduce of 64 bytes") {
		t.Fatalf("got %v, want ErrMismatch naming the lengths", err)
	}
	bs = group(t, 2, nil)
	err = backendtest.All(context.Background(), bs, 5*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
		if rank == 0 {
			return b.Barrier(ctx)
		}
		return b.Broadcast(ctx, make([]byte, 10), 1)
	})
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want ErrMismatch", err)
	}
	bs = group(t, 2, nil)
	err = backendtest.All(context.Background(), bs, 5*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
		if rank == 0 {
			return b.Send(ctx, make([]byte, 10), 1)
		}
		return b.Recv(ctx, make([]byte, 12), 0)
	})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "holds 10 bytes, the buffer 12") {
		t.Fatalf("got %v, want ErrMismatch naming the lengths", err)
	}
}

// TestClose: Close makes a blocked call return.
func TestClose(t *testing.T) {
	bs := group(t, 2, nil)
	errc := make(chan error, 1)
	go func() { errc <- bs[0].Barrier(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	if err := bs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked barrier returned %v, want ErrClosed", err)
	}
	if err := bs[0].Barrier(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("barrier after close returned %v, want ErrClosed", err)
	}
}

// TestInPlaceLarge checks in-place allreduce and reduce over many steps
// with every rank's result bit-identical.
func TestInPlaceLarge(t *testing.T) {
	for _, size := range []int{2, 3, 4} {
		bs := group(t, size, map[string]string{OptSlotBytes: "8192"})
		const n = 100003
		seed := uint64(7)
		out := make([][]byte, size)
		err := backendtest.All(context.Background(), bs, 30*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
			buf := backendtest.Data(backend.F32, backend.Sum, rank, n, seed)
			if err := b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum); err != nil {
				return err
			}
			out[rank] = buf
			return backendtest.Check(backend.F32, backend.Sum, size, buf, backendtest.Expect(backend.F32, backend.Sum, size, n, seed))
		})
		if err != nil {
			t.Fatalf("%d ranks: %v", size, err)
		}
		for r := 1; r < size; r++ {
			if string(out[r]) != string(out[0]) {
				t.Fatalf("%d ranks: rank %d's result differs from rank 0's", size, r)
			}
		}
	}
}

// TestCombine compares the reduction kernels with backend.Reduce for
// every element type and reduction, two to four sources, with and without
// a second output, and in place.
func TestCombine(t *testing.T) {
	t.Run("vector", func(t *testing.T) { testCombine(t, false) })
	t.Run("vector non-temporal", func(t *testing.T) { testCombine(t, true) })
	if hasAVX2 {
		hasAVX2 = false
		defer func() { hasAVX2 = true }()
		t.Run("scalar", func(t *testing.T) { testCombine(t, false) })
	}
}

func testCombine(t *testing.T, nt bool) {
	be := &Backend{acc: make([]byte, blockBytes), nt: nt}
	for _, dt := range backend.DTypes {
		for _, op := range []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max} {
			for _, n := range []int{1, 31, 32, 33, 64, 1000, 4099} {
				for nsrc := 2; nsrc <= 4; nsrc++ {
					srcs := make([][]byte, nsrc)
					for i := range srcs {
						srcs[i] = backendtest.Data(dt, op, i, n, uint64(n))
					}
					want := append([]byte{}, srcs[0]...)
					for _, s := range srcs[1:] {
						backend.Reduce(dt, op, want, s)
					}
					out, out2 := make([]byte, len(want)), make([]byte, len(want)+64)
					out2 = out2[(64-int(uintptr(unsafe.Pointer(&out2[0]))%64))%64:][:len(want)] // aligned, as in a stage
					be.combine(dt, op, out, out2, srcs)
					if !bytes.Equal(out, want) || !bytes.Equal(out2, want) {
						t.Fatalf("%v %v n=%d sources=%d: wrong result", dt, op, n, nsrc)
					}
					last := nsrc - 1
					be.combine(dt, op, srcs[last], nil, srcs) // in place
					if !bytes.Equal(srcs[last], want) {
						t.Fatalf("%v %v n=%d sources=%d: wrong result in place", dt, op, n, nsrc)
					}
				}
			}
		}
	}
}

// TestConcurrentGroups runs two groups over the same goroutines at once,
// as a process holding ranks of several groups does.
func TestConcurrentGroups(t *testing.T) {
	g1, g2 := group(t, 3, nil), group(t, 3, map[string]string{OptSlotBytes: "4096"})
	const n = 30011
	err := backendtest.All(context.Background(), g1, 30*time.Second, func(ctx context.Context, rank int, b1 backend.Backend) error {
		errc := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				buf := backendtest.Data(backend.I64, backend.Sum, rank, n, uint64(i))
				if err = g2[rank].Allreduce(ctx, buf, buf, backend.I64, backend.Sum); err == nil {
					err = backendtest.Check(backend.I64, backend.Sum, 3, buf, backendtest.Expect(backend.I64, backend.Sum, 3, n, uint64(i)))
				}
			}
			errc <- err
		}()
		for i := 0; i < 20; i++ {
			buf := backendtest.Data(backend.F64, backend.Max, rank, n, uint64(i))
			if err := b1.Allreduce(ctx, buf, buf, backend.F64, backend.Max); err != nil {
				return err
			}
			if err := backendtest.Check(backend.F64, backend.Max, 3, buf, backendtest.Expect(backend.F64, backend.Max, 3, n, uint64(i))); err != nil {
				return err
			}
		}
		return <-errc
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAbandoned: ranks waiting for a rank that has closed its end, or
// failed a call, stop waiting at once and say which and why.
func TestAbandoned(t *testing.T) {
	bs := group(t, 3, nil)
	bs[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range []int{0, 2} {
		err := bs[r].Barrier(ctx)
		var we *backend.WaitError
		if !errors.Is(err, ErrAbandoned) || !errors.As(err, &we) || !strings.Contains(err.Error(), "rank 1 closed") {
			t.Fatalf("rank %d: barrier after rank 1 closed returned %v, want ErrAbandoned naming rank 1", r, err)
		}
	}

	// Rank 1 makes one call more than rank 0 (as ranks that each time
	// their own warm-up do): it finds the mismatch, and rank 0, waiting in
	// its next call, learns of it instead of waiting for ever.
	bs = group(t, 2, nil)
	err := backendtest.All(ctx, bs, time.Minute, func(ctx context.Context, rank int, b backend.Backend) error {
		buf := make([]byte, 64)
		if rank == 1 {
			if err := b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum); !errors.Is(err, ErrMismatch) {
				return fmt.Errorf("allreduce returned %v, want ErrMismatch", err)
			}
			return nil
		}
		if err := b.Broadcast(ctx, buf, 0); err != nil {
			return err
		}
		if err := b.Barrier(ctx); !errors.Is(err, ErrAbandoned) || !strings.Contains(err.Error(), "rank 1 disagreed") {
			return fmt.Errorf("barrier returned %v, want ErrAbandoned naming rank 1", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
