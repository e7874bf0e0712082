// Command mpicheck checks the mpi backend from inside an MPI world: run
// it under mpirun, mpiexec or srun, one process per rank. Each rank runs
// every operation for every element type, reduction and length against a
// float64 reference (backendtest.Data, Expect and Check), on groups made
// without members or a rendezvous, as MPI-launched programs make them;
// then groups with chunked MPI calls, two groups at once, a group whose
// size disagrees with MPI's, groups made in different orders, and calls
// abandoned when their context ends. It exits 1 on the first failure,
// naming the check and the rank; rank 0 prints one line when all pass.
//
//	go build -tags mpi -o mpicheck ./collectives/mpi/internal/mpicheck
//	mpirun --allow-run-as-root --oversubscribe -np 4 ./mpicheck
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	"github.com/raygo/raygo/collectives/mpi"
)

var (
	lengthsFlag = flag.String("lengths", "0,1,7,1000,65539", "element counts to check")
	timeout     = flag.Duration("timeout", 2*time.Minute, "for the whole run")
	opTimeout   = flag.Duration("op-timeout", 30*time.Second, "for each operation")
)

type checker struct {
	rank, size int
	seed       uint64
	passed     int
}

// fail reports a failed check and ends the process.
func (c *checker) fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "mpicheck: FAIL: rank %d of %d: %s (seed %d): %v\n", c.rank, c.size, what, c.seed, err)
	os.Exit(1)
}

// run runs one check with its own deadline.
func (c *checker) run(ctx context.Context, what string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, *opTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		c.fail(what, err)
	}
	c.passed++
}

func main() {
	flag.Parse()
	var lengths []int
	for _, s := range strings.Split(*lengthsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "mpicheck: -lengths: %q is not a count\n", s)
			os.Exit(2)
		}
		lengths = append(lengths, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	info, err := mpi.Init(ctx)
	c := &checker{rank: info.Rank, size: info.Size}
	if err != nil {
		c.fail("init", err)
	}
	c.run(ctx, "Go turns faults into panics after MPI_Init (signal handlers kept)", func(context.Context) error {
		if !recovers(func() { _ = *nilPtr }) {
			return errors.New("nil dereference did not panic")
		}
		if !recovers(func() { _ = 1 / zero }) {
			return errors.New("division by zero did not panic")
		}
		return nil
	})
	factory, ok := backend.Lookup(mpi.Name)
	if !ok {
		c.fail("lookup", errors.New("backend mpi is not registered"))
	}
	build := func(cfg backend.Config) backend.Backend {
		var b backend.Backend
		c.run(ctx, "build group "+cfg.Group, func(ctx context.Context) (err error) {
			b, err = factory(ctx, cfg)
			return err
		})
		return b
	}

	// The whole world, rank and size from MPI: Size 0, no members, no
	// rendezvous.
	world := build(backend.Config{Group: "world"})
	c.seed = agreeSeed(ctx, c, world)
	suite(ctx, c, world, lengths)

	// Operations split into MPI calls of at most 3 elements.
	chunked := build(backend.Config{Group: "chunked", Rank: c.rank, Size: c.size, Options: map[string]string{"mpi.max_count": "3"}})
	chunkedSuite(ctx, c, chunked, lengths)

	// Two groups at once.
	a := build(backend.Config{Group: "a", Rank: c.rank, Size: c.size})
	b := build(backend.Config{Group: "b", Rank: c.rank, Size: c.size})
	c.run(ctx, "allreduce on two groups at once", func(ctx context.Context) error {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, g := range []backend.Backend{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 20 && errs[i] == nil; k++ {
					errs[i] = allreduceOnce(ctx, c, g, backend.F64, backend.Sum, 1000+i)
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	})

	// A group whose size is not MPI's.
	c.run(ctx, "a group of another size is refused", func(ctx context.Context) error {
		_, err := factory(ctx, backend.Config{Group: "wrong", Rank: c.rank, Size: c.size + 1})
		if err == nil || !strings.Contains(err.Error(), "says this process is rank") {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})

	if c.size > 1 && info.Library != "" { // MPI's own properties
		misordered(ctx, c, factory)
		mismatched(ctx, c, build)
		abandoned(ctx, c, build)
	}

	for _, g := range []backend.Backend{world, chunked, a, b} {
		if err := g.Close(); err != nil {
			c.fail("close", err)
		}
	}
	c.run(ctx, "finalize", mpi.Finalize)
	if c.rank == 0 {
		fmt.Printf("mpicheck: OK: %d ranks, %d checks on each (%s; %s; rank and size from %s)\n",
			c.size, c.passed, orNone(info.Library, "stand-in over tcp"), orNone(info.Threading, "no MPI threads"), orNone(info.Launcher, "MPI only"))
	}
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

var (
	nilPtr *int
	zero   int
)

func recovers(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// agreeSeed broadcasts rank 0's seed.
func agreeSeed(ctx context.Context, c *checker, b backend.Backend) uint64 {
	buf := binary.LittleEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	c.run(ctx, "broadcast the seed", func(ctx context.Context) error { return b.Broadcast(ctx, buf, 0) })
	return binary.LittleEndian.Uint64(buf)
}

func allreduceOnce(ctx context.Context, c *checker, b backend.Backend, dt backend.DType, op backend.Op, n int) error {
	send := backendtest.Data(dt, op, c.rank, n, c.seed)
	recv := make([]byte, len(send))
	if err := b.Allreduce(ctx, send, recv, dt, op); err != nil {
		return err
	}
	return backendtest.Check(dt, op, c.size, recv, backendtest.Expect(dt, op, c.size, n, c.seed))
}

// suite is backendtest's suite, for one rank.
func suite(ctx context.Context, c *checker, b backend.Backend, lengths []int) {
	rank, size, seed := c.rank, c.size, c.seed
	reductions := []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max}
	for _, dt := range backend.DTypes {
		for _, op := range reductions {
			for _, n := range lengths {
				want := backendtest.Expect(dt, op, size, n, seed)
				name := fmt.Sprintf("%v/%v/n=%d", dt, op, n)
				c.run(ctx, "allreduce "+name, func(ctx context.Context) error {
					send := backendtest.Data(dt, op, rank, n, seed)
					recv := make([]byte, len(send))
					if err := b.Allreduce(ctx, send, recv, dt, op); err != nil {
						return err
					}
					if !bytes.Equal(send, backendtest.Data(dt, op, rank, n, seed)) {
						return errors.New("allreduce changed its send buffer")
					}
					return backendtest.Check(dt, op, size, recv, want)
				})
				c.run(ctx, "allreduce in place "+name, func(ctx context.Context) error {
					buf := backendtest.Data(dt, op, rank, n, seed)
					if err := b.Allreduce(ctx, buf, buf, dt, op); err != nil {
						return err
					}
					return backendtest.Check(dt, op, size, buf, want)
				})
				root := (n + 1) % size
				c.run(ctx, fmt.Sprintf("reduce to %d %s", root, name), func(ctx context.Context) error {
					send := backendtest.Data(dt, op, rank, n, seed)
					var recv []byte
					if rank == root {
						recv = make([]byte, len(send))
					}
					if err := backend.DoReduce(ctx, b, rank, send, recv, dt, op, root); err != nil {
						return err
					}
					if rank != root {
						return nil
					}
					return backendtest.Check(dt, op, size, recv, want)
				})
				c.run(ctx, fmt.Sprintf("reduce in place to %d %s", root, name), func(ctx context.Context) error {
					buf := backendtest.Data(dt, op, rank, n, seed)
					recv := buf
					if rank != root {
						recv = nil
					}
					if err := backend.DoReduce(ctx, b, rank, buf, recv, dt, op, root); err != nil {
						return err
					}
					if rank != root {
						return nil
					}
					return backendtest.Check(dt, op, size, buf, want)
				})
				blk := (n + size - 1) / size
				wantRS := backendtest.Expect(dt, op, size, blk*size, seed)
				c.run(ctx, "reducescatter "+name, func(ctx context.Context) error {
					send := backendtest.Data(dt, op, rank, blk*size, seed)
					recv := make([]byte, blk*dt.Size())
					if err := b.ReduceScatter(ctx, send, recv, dt, op); err != nil {
						return err
					}
					return backendtest.Check(dt, op, size, recv, wantRS[rank*blk:(rank+1)*blk])
				})
			}
		}
		for _, n := range lengths {
			moves(ctx, c, b, dt, n)
		}
	}
	c.run(ctx, "barrier", func(ctx context.Context) error {
		for i := 0; i < 10; i++ {
			if err := b.Barrier(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if size > 1 {
		c.run(ctx, "send/recv ring", func(ctx context.Context) error { return ring(ctx, c, b, lengths) })
	}
}

// moves checks the operations that move data without reducing it.
func moves(ctx context.Context, c *checker, b backend.Backend, dt backend.DType, n int) {
	rank, size, seed := c.rank, c.size, c.seed
	data := func(r, n int) []byte { return backendtest.Data(dt, backend.Sum, r, n, seed) }
	name := fmt.Sprintf("%v/n=%d", dt, n)
	blk := n * dt.Size()
	for _, root := range []int{0, size - 1} {
		c.run(ctx, fmt.Sprintf("broadcast from %d %s", root, name), func(ctx context.Context) error {
			buf := data(rank, n)
			if err := b.Broadcast(ctx, buf, root); err != nil {
				return err
			}
			if !bytes.Equal(buf, data(root, n)) {
				return errors.New("data differs")
			}
			return nil
		})
		c.run(ctx, fmt.Sprintf("gather to %d %s", root, name), func(ctx context.Context) error {
			send := data(rank, n)
			var recv []byte
			if rank == root {
				recv = make([]byte, size*blk)
			}
			if err := backend.DoGather(ctx, b, rank, size, send, recv, root); err != nil {
				return err
			}
			for r := 0; rank == root && r < size; r++ {
				if !bytes.Equal(recv[r*blk:(r+1)*blk], data(r, n)) {
					return fmt.Errorf("block %d differs", r)
				}
			}
			return nil
		})
		c.run(ctx, fmt.Sprintf("scatter from %d %s", root, name), func(ctx context.Context) error {
			var send []byte
			if rank == root {
				send = data(root, n*size)
			}
			recv := make([]byte, blk)
			if err := backend.DoScatter(ctx, b, rank, size, send, recv, root); err != nil {
				return err
			}
			if !bytes.Equal(recv, data(root, n*size)[rank*blk:(rank+1)*blk]) {
				return errors.New("block differs")
			}
			return nil
		})
	}
	c.run(ctx, "allgather "+name, func(ctx context.Context) error {
		recv := make([]byte, size*blk)
		if err := b.Allgather(ctx, data(rank, n), recv); err != nil {
			return err
		}
		for r := 0; r < size; r++ {
			if !bytes.Equal(recv[r*blk:(r+1)*blk], data(r, n)) {
				return fmt.Errorf("block %d differs", r)
			}
		}
		return nil
	})
	c.run(ctx, "alltoall "+name, func(ctx context.Context) error {
		recv := make([]byte, size*blk)
		if err := backend.DoAllToAll(ctx, b, rank, size, data(rank, n*size), recv); err != nil {
			return err
		}
		for r := 0; r < size; r++ {
			if !bytes.Equal(recv[r*blk:(r+1)*blk], data(r, n*size)[rank*blk:(rank+1)*blk]) {
				return fmt.Errorf("block from %d differs", r)
			}
		}
		return nil
	})
}

// ring sends to the next rank and receives from the previous one, both
// at once, for each length.
func ring(ctx context.Context, c *checker, b backend.Backend, lengths []int) error {
	rank, size := c.rank, c.size
	for _, n := range lengths {
		out := backendtest.Data(backend.U8, backend.Sum, rank, n, c.seed)
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
		if !bytes.Equal(in, backendtest.Data(backend.U8, backend.Sum, from, n, c.seed)) {
			return fmt.Errorf("n=%d: data from %d differs", n, from)
		}
	}
	return nil
}

// chunkedSuite checks the operations that split into several MPI calls.
func chunkedSuite(ctx context.Context, c *checker, b backend.Backend, lengths []int) {
	for _, n := range lengths {
		if n > 1000 {
			continue
		}
		for _, dt := range []backend.DType{backend.F32, backend.BF16, backend.U8} {
			c.run(ctx, fmt.Sprintf("chunked allreduce %v/n=%d", dt, n), func(ctx context.Context) error {
				return allreduceOnce(ctx, c, b, dt, backend.Sum, n)
			})
			c.run(ctx, fmt.Sprintf("chunked reduce %v/n=%d", dt, n), func(ctx context.Context) error {
				send := backendtest.Data(dt, backend.Max, c.rank, n, c.seed)
				recv := make([]byte, len(send))
				if err := backend.DoReduce(ctx, b, c.rank, send, recv, dt, backend.Max, c.size-1); err != nil || c.rank != c.size-1 {
					return err
				}
				return backendtest.Check(dt, backend.Max, c.size, recv, backendtest.Expect(dt, backend.Max, c.size, n, c.seed))
			})
		}
		c.run(ctx, fmt.Sprintf("chunked broadcast n=%d", n), func(ctx context.Context) error {
			buf := backendtest.Data(backend.U8, backend.Sum, c.rank, n, c.seed)
			if err := b.Broadcast(ctx, buf, c.size-1); err != nil {
				return err
			}
			if !bytes.Equal(buf, backendtest.Data(backend.U8, backend.Sum, c.size-1, n, c.seed)) {
				return errors.New("data differs")
			}
			return nil
		})
	}
	if c.size > 1 {
		c.run(ctx, "chunked send/recv ring", func(ctx context.Context) error { return ring(ctx, c, b, lengths[:min(len(lengths), 4)]) })
	}
}

// misordered makes two groups in different orders on rank 0 and the
// others: both must fail, saying so.
func misordered(ctx context.Context, c *checker, factory backend.Factory) {
	names := []string{"first", "second"}
	if c.rank != 0 {
		names[0], names[1] = names[1], names[0]
	}
	for _, name := range names {
		c.run(ctx, "groups made in different orders are refused: "+name, func(ctx context.Context) error {
			b, err := factory(ctx, backend.Config{Group: name, Rank: c.rank, Size: c.size})
			if err == nil {
				b.Close()
				return errors.New("made it")
			}
			if !strings.Contains(err.Error(), "same order") {
				return fmt.Errorf("unclear error: %v", err)
			}
			return nil
		})
	}
}

// mismatched checks that MPI's errors come back as errors, not aborts:
// a receive shorter and one longer than the message sent, and a
// broadcast whose lengths disagree.
func mismatched(ctx context.Context, c *checker, build func(backend.Config) backend.Backend) {
	g := build(backend.Config{Group: "mismatched", Rank: c.rank, Size: c.size})
	defer g.Close()
	switch c.rank {
	case 0:
		c.run(ctx, "send 10 bytes, then 3", func(ctx context.Context) error {
			if err := g.Send(ctx, make([]byte, 10), 1); err != nil {
				return err
			}
			return g.Send(ctx, make([]byte, 3), 1)
		})
	case 1:
		c.run(ctx, "a receive of 5 bytes gets 10: an error", func(ctx context.Context) error {
			err := g.Recv(ctx, make([]byte, 5), 0)
			if err == nil || !strings.Contains(err.Error(), "MPI_Test") || !strings.Contains(err.Error(), "recv on rank 1") {
				return fmt.Errorf("got %v", err)
			}
			return nil
		})
		c.run(ctx, "a receive of 5 bytes gets 3: an error", func(ctx context.Context) error {
			err := g.Recv(ctx, make([]byte, 5), 0)
			if err == nil || !strings.Contains(err.Error(), "rank 0 sent 3 bytes, want 5") {
				return fmt.Errorf("got %v", err)
			}
			return nil
		})
	}
	c.run(ctx, "a broadcast of 16 bytes into 8: an error on the receivers", func(ctx context.Context) error {
		n := 8
		if c.rank == 0 {
			n = 16
		}
		err := g.Broadcast(ctx, make([]byte, n), 0)
		if c.rank == 0 {
			return err
		}
		if err == nil || !strings.Contains(err.Error(), "broadcast on rank") {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
}

// abandoned checks calls whose ctx ends first: the other ranks give up on
// a barrier and a receive that rank 0 joins only later; they get errors
// wrapping the context's, their backends refuse further calls, and the
// abandoned operations complete in the background once rank 0 joins, so
// that Finalize can finish.
func abandoned(ctx context.Context, c *checker, build func(backend.Config) backend.Backend) {
	late := build(backend.Config{Group: "late", Rank: c.rank, Size: c.size})
	sync := build(backend.Config{Group: "sync", Rank: c.rank, Size: c.size})
	if c.rank != 0 {
		c.run(ctx, "a barrier rank 0 has not joined gives up", func(ctx context.Context) error {
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err := late.Barrier(short)
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("got %v", err)
			}
			if err := late.Barrier(ctx); err == nil || !strings.Contains(err.Error(), "abandoned") {
				return fmt.Errorf("the next call: got %v", err)
			}
			return nil
		})
	}
	if c.rank == 1 {
		c.run(ctx, "a receive from rank 0 gives up, naming it", func(ctx context.Context) error {
			p2p := build(backend.Config{Group: "p2p", Rank: c.rank, Size: c.size})
			defer p2p.Close()
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err := p2p.Recv(short, make([]byte, 5), 0)
			var we *backend.WaitError
			if !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0] != 0 || !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("got %v", err)
			}
			return nil
		})
	} else {
		p2p := build(backend.Config{Group: "p2p", Rank: c.rank, Size: c.size})
		defer p2p.Close()
		if c.rank == 0 {
			defer c.run(ctx, "send to the abandoned receive", func(ctx context.Context) error { return p2p.Send(ctx, []byte("late!"), 1) })
		}
	}
	c.run(ctx, "the others have given up", func(ctx context.Context) error { return sync.Barrier(ctx) })
	if c.rank == 0 {
		c.run(ctx, "rank 0 joins the barrier late", func(ctx context.Context) error { return late.Barrier(ctx) })
	}
	late.Close()
	sync.Close()
}
