package tcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// TestConformance runs the backend suite with the default size table:
// small messages take recursive doubling and trees.
func TestConformance(t *testing.T) {
	o := backendtest.Options{}
	if testing.Short() {
		o.Sizes = []int{1, 2, 3, 5, 8}
		o.Lengths = []int{0, 7, 1000, 65539}
	}
	backendtest.Run(t, New, o)
}

// TestConformancePipelined forces the ring and chain algorithms at every
// length, with chunks small enough that messages span many of them, and
// connects lazily.
func TestConformancePipelined(t *testing.T) {
	o := backendtest.Options{
		Sizes:   []int{2, 3, 5, 8},
		Backend: map[string]string{"tcp.ring_above": "0", "tcp.chain_above": "0", "tcp.chunk": "1K", "tcp.connect": "lazy"},
	}
	if testing.Short() {
		o.Sizes = []int{2, 5}
		o.Lengths = []int{0, 7, 1000, 65539}
	}
	backendtest.Run(t, New, o)
}

func group(t *testing.T, size int, opts map[string]string) []backend.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := backendtest.Group(ctx, New, size, nil, opts)
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

func TestUnknownOption(t *testing.T) {
	_, err := New(context.Background(), backend.Config{Group: "g", Size: 1, Options: map[string]string{"tcp.ringabove": "1", "shm.whatever": "x"}})
	if err == nil || !strings.Contains(err.Error(), `"tcp.ringabove"`) || !strings.Contains(err.Error(), "tcp.ring_above") {
		t.Fatalf("unknown option: got %v, want an error naming it and listing the valid keys", err)
	}
	for k, v := range map[string]string{"tcp.chunk": "lots", "tcp.connect": "maybe", "tcp.spin": "-1s", "tcp.ring_above": "-5"} {
		_, err := New(context.Background(), backend.Config{Group: "g", Size: 1, Options: map[string]string{k: v}})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: got %v, want an error naming the option", k, v, err)
		}
	}
	for k, v := range map[string]string{"tcp.chunk": "1MiB", "tcp.ring_above": "64k", "tcp.spin": "10us", "tcp.sockbuf": "4M"} {
		if _, err := New(context.Background(), backend.Config{Group: "g", Size: 1, Options: map[string]string{k: v}}); err != nil {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

func TestSendRecvWrongLength(t *testing.T) {
	bs := group(t, 2, nil)
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- bs[0].Send(ctx, make([]byte, 100), 1) }()
	err := bs[1].Recv(ctx, make([]byte, 200), 0)
	if err == nil || !strings.Contains(err.Error(), "200 bytes from rank 0") || !strings.Contains(err.Error(), "100 bytes") {
		t.Fatalf("got %v, want an error naming the peer and both lengths", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The connection is still in step.
	go func() { errc <- bs[0].Send(ctx, []byte("hello"), 1) }()
	buf := make([]byte, 5)
	if err := bs[1].Recv(ctx, buf, 0); err != nil || string(buf) != "hello" {
		t.Fatalf("after the mismatch: %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestSendRecvOrder sends many messages of varied sizes both ways at
// once; each direction arrives in order.
func TestSendRecvOrder(t *testing.T) {
	bs := group(t, 3, nil)
	ctx := context.Background()
	msg := func(from, to, i int) []byte {
		b := make([]byte, (i*7919)%300000)
		for k := range b {
			b[k] = byte(from*31 + to*7 + i + k)
		}
		return b
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for from := range 3 {
		for to := range 3 {
			if from == to {
				continue
			}
			wg.Go(func() {
				for i := range n {
					if err := bs[from].Send(ctx, msg(from, to, i), to); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Go(func() {
				for i := range n {
					want := msg(from, to, i)
					got := make([]byte, len(want))
					if err := bs[to].Recv(ctx, got, from); err != nil {
						errs <- err
						return
					}
					if string(got) != string(want) {
						errs <- fmt.Errorf("message %d from %d to %d differs", i, from, to)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLengthsDiffer: ranks calling allreduce with different lengths get
// an error naming the peer and both lengths, not a hang.
func TestLengthsDiffer(t *testing.T) {
	for _, ringAbove := range []string{"0", "1G"} {
		bs := group(t, 2, map[string]string{"tcp.ring_above": ringAbove})
		err := backendtest.All(context.Background(), bs, 10*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
			buf := make([]byte, 4000*(rank+1))
			return b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
		})
		if err == nil || !strings.Contains(err.Error(), "buffer lengths differ") {
			t.Fatalf("ring_above=%s: got %v", ringAbove, err)
		}
		var we *backend.WaitError
		if errors.As(err, &we) {
			t.Fatalf("ring_above=%s: got a timeout, want a length error: %v", ringAbove, err)
		}
	}
}

// TestOrderDiffers: ranks calling different operations get an error
// saying so.
func TestOrderDiffers(t *testing.T) {
	bs := group(t, 2, nil)
	err := backendtest.All(context.Background(), bs, 10*time.Second, func(ctx context.Context, rank int, b backend.Backend) error {
		buf := make([]byte, 64)
		if rank == 0 {
			return b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
		}
		return b.Broadcast(ctx, buf, 1)
	})
	if err == nil || !strings.Contains(err.Error(), "different orders") {
		t.Fatalf("got %v", err)
	}
}

// TestWaitError: when a rank does not arrive, the others' calls end with
// ctx and name the ranks they waited for.
func TestWaitError(t *testing.T) {
	bs := group(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	buf := make([]byte, 64)
	err := bs[1].Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
	var we *backend.WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a WaitError wrapping the deadline", err)
	}
	if we.Op != "allreduce" || we.Rank != 1 || fmt.Sprint(we.Missing) != "[0]" {
		t.Fatalf("got %+v, want allreduce on rank 1 waiting for [0]", we)
	}
}

// TestPeerGaveUp: a rank whose ctx ends tells the others why, when no
// frame of its is half sent; otherwise they still get an error naming it.
func TestPeerGaveUp(t *testing.T) {
	for _, n := range []int{64, 4 << 20} {
		bs := group(t, 2, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		buf := make([]byte, n)
		err := bs[0].Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
		cancel()
		var we *backend.WaitError
		if !errors.As(err, &we) {
			t.Fatalf("bytes=%d rank 0: got %v, want a WaitError", n, err)
		}
		// Rank 0's data may have gone out before it gave up, so rank 1's
		// first call can succeed; the next cannot.
		for i := 0; i < 2; i++ {
			if err = bs[1].Allreduce(context.Background(), make([]byte, n), make([]byte, n), backend.F32, backend.Sum); err != nil {
				break
			}
		}
		switch {
		case n == 64 && (!errors.Is(err, ErrPeerFailed) || !strings.Contains(err.Error(), "rank 0 gave up") || !strings.Contains(err.Error(), "have not arrived")):
			t.Errorf("bytes=%d rank 1: got %v, want rank 0's reason", n, err)
		case err == nil || !strings.Contains(err.Error(), "rank 0"):
			t.Errorf("bytes=%d rank 1: got %v, want an error naming rank 0", n, err)
		}
	}
}

// TestPeerCrash: a rank whose connections drop without a goodbye (as
// when its process dies) is named in the others' errors.
func TestPeerCrash(t *testing.T) {
	for _, n := range []int{1 << 10, 8 << 20} {
		bs := group(t, 4, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for r := 1; r < 4; r++ {
			wg.Go(func() {
				buf := make([]byte, n)
				for errs[r] == nil {
					errs[r] = bs[r].Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
				}
			})
		}
		wg.Go(func() {
			buf := make([]byte, n)
			for i := 0; i < 3 && errs[0] == nil; i++ {
				errs[0] = bs[0].Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
			}
			crash(bs[0])
		})
		wg.Wait()
		cancel()
		for r := 1; r < 4; r++ {
			var we *backend.WaitError
			if errors.As(errs[r], &we) || !strings.Contains(errs[r].Error(), "rank 0") {
				t.Errorf("bytes=%d rank %d: got %v, want an error naming rank 0", n, r, errs[r])
			}
		}
	}
}

// TestPeerClosed: a Recv from a rank that closed the group says so.
func TestPeerClosed(t *testing.T) {
	bs := group(t, 2, nil)
	bs[0].Close()
	err := bs[1].Recv(context.Background(), make([]byte, 8), 0)
	if !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("got %v, want ErrPeerClosed", err)
	}
}

// TestWrongGroup: a connection from another group is refused with a
// clear error on both sides.
func TestWrongGroup(t *testing.T) {
	rv := backendtest.NewMemRendezvous(2)
	ms := members(2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range []string{"other", "mine"} {
		wg.Go(func() {
			b, err := New(ctx, backend.Config{Group: g, Rank: r, Size: 2, Members: ms, Rendezvous: rv.ForRank(r)})
			if err == nil {
				b.Close()
			}
			errs[r] = err
		})
	}
	wg.Wait()
	if errs[0] == nil || !strings.Contains(errs[0].Error(), `refused the connection: hello names group "other", but this is rank 1 of group "mine"`) {
		t.Errorf("dialer: got %v", errs[0])
	}
	var we *backend.WaitError
	if !errors.As(errs[1], &we) || fmt.Sprint(we.Missing) != "[0]" || !strings.Contains(errs[1].Error(), "refused connections") {
		t.Errorf("listener: got %v, want a WaitError for rank 0 mentioning the refused connection", errs[1])
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "65536": 65536, "64K": 64 << 10, "64KiB": 64 << 10, "1m": 1 << 20, "2 MiB": 2 << 20, "1G": 1 << 30} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1T", "1.5M"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) succeeded", in)
		}
	}
}
