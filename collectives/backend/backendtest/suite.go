package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
)

// Options tunes Run.
type Options struct {
	Sizes   []int                   // world sizes (default 1..8)
	Lengths []int                   // element counts (default 0, 1, 7, 1000, 65539)
	Nodes   func(size int) []string // node of each rank (nil: all on one)
	Backend map[string]string       // options passed to the factory
	DTypes  []backend.DType         // default all
	Timeout time.Duration           // per operation (default 30 s)
}

// Run checks every operation of the backends f builds against a float64
// reference, for each world size, element type, reduction and length.
func Run(t *testing.T, f backend.Factory, o Options) {
	if o.Sizes == nil {
		o.Sizes = []int{1, 2, 3, 4, 5, 6, 7, 8}
	}
	if o.Lengths == nil {
		o.Lengths = []int{0, 1, 7, 1000, 65539}
	}
	if o.DTypes == nil {
		o.DTypes = backend.DTypes
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	for _, size := range o.Sizes {
		t.Run(fmt.Sprintf("ranks=%d", size), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var nodes []string
			if o.Nodes != nil {
				nodes = o.Nodes(size)
			}
			bs, err := Group(ctx, f, size, nodes, o.Backend)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				for _, b := range bs {
					b.Close()
				}
			}()
			suite(t, bs, o)
		})
	}
}

// All runs f on every rank at once and returns the first error, naming
// its rank.
func All(ctx context.Context, bs []backend.Backend, timeout time.Duration, f func(ctx context.Context, rank int, b backend.Backend) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
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
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("rank %d: %w", i, err)
		}
	}
	return nil
}

func suite(t *testing.T, bs []backend.Backend, o Options) {
	size := len(bs)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	run := func(name string, f func(ctx context.Context, rank int, b backend.Backend) error) {
		t.Helper()
		if err := All(ctx, bs, o.Timeout, f); err != nil {
			t.Fatalf("%s (seed %d): %v", name, seed, err)
		}
	}
	reductions := []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max}
	for _, dt := range o.DTypes {
		for _, op := range reductions {
			for _, n := range o.Lengths {
				want := Expect(dt, op, size, n, seed)
				name := fmt.Sprintf("%v/%v/n=%d", dt, op, n)
				run("allreduce "+name, func(ctx context.Context, rank int, b backend.Backend) error {
					send := Data(dt, op, rank, n, seed)
					recv := make([]byte, len(send))
					if err := b.Allreduce(ctx, send, recv, dt, op); err != nil {
						return err
					}
					if !bytes.Equal(send, Data(dt, op, rank, n, seed)) {
						return fmt.Errorf("allreduce changed its send buffer")
					}
					return Check(dt, op, size, recv, want)
				})
				run("allreduce in place "+name, func(ctx context.Context, rank int, b backend.Backend) error {
					buf := Data(dt, op, rank, n, seed)
					if err := b.Allreduce(ctx, buf, buf, dt, op); err != nil {
						return err
					}
					return Check(dt, op, size, buf, want)
				})
				root := (n + 1) % size
				run("reduce "+name, func(ctx context.Context, rank int, b backend.Backend) error {
					send := Data(dt, op, rank, n, seed)
					recv := make([]byte, len(send))
					if err := backend.DoReduce(ctx, b, rank, send, recv, dt, op, root); err != nil {
						return err
					}
					if rank != root {
						return nil
					}
					return Check(dt, op, size, recv, want)
				})
				// reduce-scatter: each rank's input is size blocks of n/size (rounded up) elements
				blk := (n + size - 1) / size
				wantRS := Expect(dt, op, size, blk*size, seed)
				run("reducescatter "+name, func(ctx context.Context, rank int, b backend.Backend) error {
					send := Data(dt, op, rank, blk*size, seed)
					recv := make([]byte, blk*dt.Size())
					if err := b.ReduceScatter(ctx, send, recv, dt, op); err != nil {
						return err
					}
					return Check(dt, op, size, recv, wantRS[rank*blk:(rank+1)*blk])
				})
			}
		}
		for _, n := range o.Lengths {
			name := fmt.Sprintf("%v/n=%d", dt, n)
			es := dt.Size()
			for _, root := range []int{0, size - 1} {
				run(fmt.Sprintf("broadcast from %d %s", root, name), func(ctx context.Context, rank int, b backend.Backend) error {
					buf := Data(dt, backend.Sum, rank, n, seed)
					if err := b.Broadcast(ctx, buf, root); err != nil {
						return err
					}
					if !bytes.Equal(buf, Data(dt, backend.Sum, root, n, seed)) {
						return fmt.Errorf("broadcast from %d: data differs", root)
					}
					return nil
				})
				run(fmt.Sprintf("gather to %d %s", root, name), func(ctx context.Context, rank int, b backend.Backend) error {
					send := Data(dt, backend.Sum, rank, n, seed)
					var recv []byte
					if rank == root {
						recv = make([]byte, size*len(send))
					}
					if err := backend.DoGather(ctx, b, rank, size, send, recv, root); err != nil {
						return err
					}
					if rank == root {
						for r := 0; r < size; r++ {
							if !bytes.Equal(recv[r*n*es:(r+1)*n*es], Data(dt, backend.Sum, r, n, seed)) {
								return fmt.Errorf("gather: block %d differs", r)
							}
						}
					}
					return nil
				})
				run(fmt.Sprintf("scatter from %d %s", root, name), func(ctx context.Context, rank int, b backend.Backend) error {
					var send []byte
					if rank == root {
						send = Data(dt, backend.Sum, root, n*size, seed)
					}
					recv := make([]byte, n*es)
					if err := backend.DoScatter(ctx, b, rank, size, send, recv, root); err != nil {
						return err
					}
					if !bytes.Equal(recv, Data(dt, backend.Sum, root, n*size, seed)[rank*n*es:(rank+1)*n*es]) {
						return fmt.Errorf("scatter: block differs")
					}
					return nil
				})
			}
			run("allgather "+name, func(ctx context.Context, rank int, b backend.Backend) error {
				send := Data(dt, backend.Sum, rank, n, seed)
				recv := make([]byte, size*len(send))
				if err := b.Allgather(ctx, send, recv); err != nil {
					return err
				}
				for r := 0; r < size; r++ {
					if !bytes.Equal(recv[r*n*es:(r+1)*n*es], Data(dt, backend.Sum, r, n, seed)) {
						return fmt.Errorf("allgather: block %d differs", r)
					}
				}
				return nil
			})
			run("alltoall "+name, func(ctx context.Context, rank int, b backend.Backend) error {
				send := Data(dt, backend.Sum, rank, n*size, seed)
				recv := make([]byte, len(send))
				if err := backend.DoAllToAll(ctx, b, rank, size, send, recv); err != nil {
					return err
				}
				for r := 0; r < size; r++ {
					src := Data(dt, backend.Sum, r, n*size, seed)
					if !bytes.Equal(recv[r*n*es:(r+1)*n*es], src[rank*n*es:(rank+1)*n*es]) {
						return fmt.Errorf("alltoall: block from %d differs", r)
					}
				}
				return nil
			})
		}
	}
	run("barrier", func(ctx context.Context, rank int, b backend.Backend) error {
		for i := 0; i < 10; i++ {
			if err := b.Barrier(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if size > 1 {
		run("send/recv ring", func(ctx context.Context, rank int, b backend.Backend) error {
			for _, n := range o.Lengths {
				out := Data(backend.U8, backend.Sum, rank, n, seed)
				in := make([]byte, n)
				from := (rank - 1 + size) % size
				errc := make(chan error, 1)
				go func() { errc <- b.Send(ctx, out, (rank+1)%size) }()
				if err := b.Recv(ctx, in, from); err != nil {
					return err
				}
				if err := <-errc; err != nil {
					return err
				}
				if !bytes.Equal(in, Data(backend.U8, backend.Sum, from, n, seed)) {
					return fmt.Errorf("recv from %d: data differs", from)
				}
			}
			return nil
		})
	}
	// A rank that never arrives: the others give up when ctx ends, with
	// an error that wraps the context's.
	if size > 1 {
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		errs := make(chan error, size-1)
		for i := 1; i < size; i++ {
			go func() { errs <- bs[i].Barrier(ctx) }()
		}
		for i := 1; i < size; i++ {
			if err := <-errs; err == nil || ctx.Err() == nil {
				t.Fatalf("barrier without rank 0 returned %v", err)
			}
		}
	}
}
