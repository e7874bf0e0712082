package hier

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// The test binary doubles as the other ranks of a multi-process group
// (see childMain); ranks find each other through a
// backend.DirRendezvous, and each rank's node is given by nodeOf.
const childEnv = "RAYGO_HIERTEST_CHILD"

type childSpec struct {
	Group   string
	Rank    int
	Size    int
	Nodes   int
	Dir     string
	Mode    string // "check" or "serve"
	Options map[string]string
}

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(childMain(v))
	}
	os.Exit(m.Run())
}

func membersOn(size, nodes int) []backend.Member {
	ms := make([]backend.Member, size)
	for r := range ms {
		ms[r] = backend.Member{Rank: r, Node: fmt.Sprintf("node%d", r%nodes), Host: "127.0.0.1", Pid: os.Getpid()}
	}
	return ms
}

func build(ctx context.Context, s childSpec) (backend.Backend, error) {
	return New(ctx, backend.Config{Group: s.Group, Rank: s.Rank, Size: s.Size, Members: membersOn(s.Size, s.Nodes),
		Rendezvous: backend.DirRendezvous{Dir: s.Dir, Rank: s.Rank, Size: s.Size}, Options: s.Options})
}

func childMain(v string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		fmt.Fprintln(os.Stderr, "bad child spec:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := build(ctx, s)
	if err == nil {
		switch s.Mode {
		case "check":
			err = checks(ctx, b, s.Rank, s.Size)
		case "serve":
			err = serve(ctx, b, s.Rank)
		}
		b.Close()
	}
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		return 1
	}
	fmt.Println("OK")
	return 0
}

// checks runs every operation once on every rank and compares with the
// reference.
func checks(ctx context.Context, b backend.Backend, rank, size int) error {
	const seed = 42
	for _, n := range []int{1001, 300007} {
		for _, op := range []backend.Op{backend.Sum, backend.Max} {
			send := backendtest.Data(backend.F32, op, rank, n, seed)
			recv := make([]byte, len(send))
			if err := b.Allreduce(ctx, send, recv, backend.F32, op); err != nil {
				return err
			}
			if err := backendtest.Check(backend.F32, op, size, recv, backendtest.Expect(backend.F32, op, size, n, seed)); err != nil {
				return fmt.Errorf("allreduce %v of %d elements: %w", op, n, err)
			}
		}
	}
	k := 4096
	send := backendtest.Data(backend.U8, backend.Sum, rank, k, seed)
	all := make([]byte, size*k)
	if err := b.Allgather(ctx, send, all); err != nil {
		return err
	}
	for r := 0; r < size; r++ {
		if !bytes.Equal(all[r*k:(r+1)*k], backendtest.Data(backend.U8, backend.Sum, r, k, seed)) {
			return fmt.Errorf("allgather: block %d differs", r)
		}
	}
	buf := backendtest.Data(backend.U8, backend.Sum, rank, 1<<20, seed)
	if err := b.Broadcast(ctx, buf, size-1); err != nil {
		return err
	}
	if !bytes.Equal(buf, backendtest.Data(backend.U8, backend.Sum, size-1, 1<<20, seed)) {
		return fmt.Errorf("broadcast: data differs")
	}
	rs := backendtest.Data(backend.I32, backend.Sum, rank, size*1000, seed)
	mine := make([]byte, 4000)
	if err := b.ReduceScatter(ctx, rs, mine, backend.I32, backend.Sum); err != nil {
		return err
	}
	if err := backendtest.Check(backend.I32, backend.Sum, size, mine, backendtest.Expect(backend.I32, backend.Sum, size, size*1000, seed)[rank*1000:(rank+1)*1000]); err != nil {
		return fmt.Errorf("reducescatter: %w", err)
	}
	// Every rank sends to the next and receives from the previous, on
	// the same node or not.
	out := backendtest.Data(backend.U8, backend.Sum, rank, 70000, seed)
	in := make([]byte, len(out))
	errc := make(chan error, 1)
	go func() { errc <- b.Send(ctx, out, (rank+1)%size) }()
	from := (rank + size - 1) % size
	if err := b.Recv(ctx, in, from); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(in, backendtest.Data(backend.U8, backend.Sum, from, 70000, seed)) {
		return fmt.Errorf("recv from %d: data differs", from)
	}
	return b.Barrier(ctx)
}

// procs starts ranks 1..size-1 as child processes and builds rank 0 here.
type procs struct {
	b    backend.Backend
	cmds []*exec.Cmd
	outs []*bytes.Buffer
}

func startProcs(t testing.TB, s childSpec) *procs {
	t.Helper()
	s.Dir = t.TempDir()
	s.Group = fmt.Sprintf("hier-%d", time.Now().UnixNano())
	p := &procs{}
	for r := 1; r < s.Size; r++ {
		cs := s
		cs.Rank = r
		spec, _ := json.Marshal(cs)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.cmds = append(p.cmds, cmd)
		p.outs = append(p.outs, &out)
	}
	t.Cleanup(func() {
		for _, cmd := range p.cmds {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
		if p.b != nil {
			p.b.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	p.b = b
	return p
}

// wait waits for the children and reports any that did not print OK.
func (p *procs) wait(t testing.TB) {
	for i, cmd := range p.cmds {
		err := cmd.Wait()
		if out := strings.TrimSpace(p.outs[i].String()); err != nil || out != "OK" {
			t.Errorf("rank %d: %v: %s", i+1, err, out)
		}
	}
}

// TestProcesses runs every operation with each rank in its own process:
// 6 ranks on 3 nodes (two each, sharded allreduce) and 5 ranks on 2
// nodes (3 and 2, the leader path).
func TestProcesses(t *testing.T) {
	for _, s := range []childSpec{{Size: 6, Nodes: 3}, {Size: 5, Nodes: 2}} {
		t.Run(fmt.Sprintf("ranks=%d/nodes=%d", s.Size, s.Nodes), func(t *testing.T) {
			s.Mode = "check"
			p := startProcs(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := checks(ctx, p.b, 0, s.Size); err != nil {
				t.Error(err)
			}
			p.b.Close()
			p.wait(t)
		})
	}
}

// serve runs the allreduces rank 0 asks for: it broadcasts (bytes,
// iterations), iterations 0 meaning stop.
func serve(ctx context.Context, b backend.Backend, rank int) error {
	ctl := make([]byte, 16)
	var buf []byte
	for {
		if err := b.Broadcast(ctx, ctl, 0); err != nil {
			return err
		}
		n, iters := int(binary.LittleEndian.Uint64(ctl)), int(binary.LittleEndian.Uint64(ctl[8:]))
		if iters == 0 {
			return nil
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		for i := 0; i < iters; i++ {
			if err := b.Allreduce(ctx, buf[:n], buf[:n], backend.F32, backend.Sum); err != nil {
				return err
			}
		}
	}
}

// BenchmarkAllreduceProcs runs float32 allreduce over 4 processes on 2
// fake nodes (ranks 0 and 2 on one, 1 and 3 on the other), sharded and
// through the leaders, side by side. On one machine the "nodes" share
// its cores and the inter-node traffic goes over loopback, so this
// compares the algorithms' costs, not a real cluster's times.
func BenchmarkAllreduceProcs(b *testing.B) {
	for _, alg := range []struct{ name, above string }{{"sharded", "0"}, {"leader", "-1"}} {
		b.Run(alg.name, func(b *testing.B) {
			s := childSpec{Size: 4, Nodes: 2, Mode: "serve", Options: map[string]string{"hier.sharded_above": alg.above}}
			p := startProcs(b, s)
			ctx := context.Background()
			var buf []byte
			run := func(n, iters int) error {
				ctl := make([]byte, 16)
				binary.LittleEndian.PutUint64(ctl, uint64(n))
				binary.LittleEndian.PutUint64(ctl[8:], uint64(iters))
				if err := p.b.Broadcast(ctx, ctl, 0); err != nil {
					return err
				}
				if cap(buf) < n {
					buf = make([]byte, n)
				}
				for i := 0; i < iters; i++ {
					if err := p.b.Allreduce(ctx, buf[:n], buf[:n], backend.F32, backend.Sum); err != nil {
						return err
					}
				}
				return nil
			}
			for _, n := range []int{4 << 10, 16 << 10, 64 << 10, 1 << 20, 16 << 20} {
				b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
					if err := run(n, 2); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					if err := run(n, b.N); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(float64(n)/sec/1e9*2*3/4, "busbw_GB/s")
				})
			}
			if err := run(0, 0); err != nil {
				b.Fatal(err)
			}
			p.b.Close()
			p.wait(b)
		})
	}
}
