package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// The test binary doubles as the other ranks of a multi-process group:
// started with childEnv set, TestMain runs one rank (childMain) instead
// of the tests. Ranks find each other through a backend.DirRendezvous
// in a temporary directory.
const childEnv = "RAYGO_TCPTEST_CHILD"

// childSpec is what a child rank is told through childEnv.
type childSpec struct {
	Group   string
	Rank    int
	Size    int
	Dir     string
	Mode    string // "serve" (run commands from rank 0) or "loop" (allreduce until it fails)
	Options map[string]string
}

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(childMain(v))
	}
	os.Exit(m.Run())
}

func members(size int) []backend.Member {
	ms := make([]backend.Member, size)
	for i := range ms {
		ms[i] = backend.Member{Rank: i, Node: "node0", Host: "127.0.0.1", Pid: os.Getpid()}
	}
	return ms
}

func childMain(v string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		fmt.Fprintln(os.Stderr, "bad child spec:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := New(ctx, backend.Config{Group: s.Group, Rank: s.Rank, Size: s.Size, Members: members(s.Size),
		Rendezvous: backend.DirRendezvous{Dir: s.Dir, Rank: s.Rank, Size: s.Size}, Options: s.Options})
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		return 1
	}
	defer b.Close()
	switch s.Mode {
	case "serve":
		err = serve(ctx, b, s.Rank, s.Size)
	case "loop":
		fmt.Println("READY")
		buf := make([]byte, 4<<20)
		for err == nil {
			err = b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum)
		}
	}
	if err != nil {
		fmt.Printf("ERR %v\n", err)
		return 1
	}
	return 0
}

// command is what rank 0 broadcasts to the serving ranks: run iters
// calls of op on bytes bytes, or stop when iters is 0.
type command struct {
	op    int
	bytes int
	iters int
}

const (
	cmdAllreduce = iota + 1
	cmdBroadcast
	cmdAllgather
	cmdReduceScatter
	cmdCheck // allreduce of test data, checked against the reference
)

func (c command) encode() []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint64(b, uint64(c.op))
	binary.LittleEndian.PutUint64(b[8:], uint64(c.bytes))
	binary.LittleEndian.PutUint64(b[16:], uint64(c.iters))
	return b
}

func decode(b []byte) command {
	return command{int(binary.LittleEndian.Uint64(b)), int(binary.LittleEndian.Uint64(b[8:])), int(binary.LittleEndian.Uint64(b[16:]))}
}

// runOp runs one command's operation once, with buffers reused across
// calls.
type opRunner struct {
	send, recv []byte
}

func (r *opRunner) run(ctx context.Context, b backend.Backend, rank, size int, c command) error {
	n := c.bytes
	need := n * size
	if cap(r.send) < need {
		r.send = make([]byte, need)
		r.recv = make([]byte, need)
	}
	switch c.op {
	case cmdAllreduce:
		return b.Allreduce(ctx, r.send[:n], r.recv[:n], backend.F32, backend.Sum)
	case cmdBroadcast:
		return b.Broadcast(ctx, r.recv[:n], 0)
	case cmdAllgather:
		return b.Allgather(ctx, r.send[:n/size], r.recv[:n/size*size])
	case cmdReduceScatter:
		blk := n / size &^ 3 // whole float32 elements
		return b.ReduceScatter(ctx, r.send[:blk*size], r.recv[:blk], backend.F32, backend.Sum)
	case cmdCheck:
		elems := n / 4
		for _, op := range []backend.Op{backend.Sum, backend.Max} {
			send := backendtest.Data(backend.F32, op, rank, elems, uint64(c.iters))
			recv := make([]byte, len(send))
			if err := b.Allreduce(ctx, send, recv, backend.F32, op); err != nil {
				return err
			}
			if err := backendtest.Check(backend.F32, op, size, recv, backendtest.Expect(backend.F32, op, size, elems, uint64(c.iters))); err != nil {
				return fmt.Errorf("rank %d: allreduce %v of %d bytes: %w", rank, op, n, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown command %d", c.op)
}

func serve(ctx context.Context, b backend.Backend, rank, size int) error {
	var r opRunner
	ctl := make([]byte, 24)
	for {
		if err := b.Broadcast(ctx, ctl, 0); err != nil {
			return err
		}
		c := decode(ctl)
		if c.iters == 0 {
			return nil
		}
		iters := c.iters
		if c.op == cmdCheck {
			iters = 1
		}
		for i := 0; i < iters; i++ {
			if err := r.run(ctx, b, rank, size, c); err != nil {
				return err
			}
		}
	}
}

// procGroup is a group whose rank 0 is this process and whose other
// ranks are child processes.
type procGroup struct {
	b      backend.Backend
	size   int
	cmds   []*exec.Cmd
	out    []*bufio.Reader
	runner opRunner
}

func startProcs(t testing.TB, size int, mode string, opts map[string]string) *procGroup {
	t.Helper()
	dir := t.TempDir()
	group := fmt.Sprintf("procs-%d", time.Now().UnixNano())
	g := &procGroup{size: size}
	for r := 1; r < size; r++ {
		spec, _ := json.Marshal(childSpec{Group: group, Rank: r, Size: size, Dir: dir, Mode: mode, Options: opts})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		g.cmds = append(g.cmds, cmd)
		g.out = append(g.out, bufio.NewReader(stdout))
	}
	t.Cleanup(g.kill)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := New(ctx, backend.Config{Group: group, Rank: 0, Size: size, Members: members(size),
		Rendezvous: backend.DirRendezvous{Dir: dir, Rank: 0, Size: size}, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	g.b = b
	return g
}

// do runs c on every rank.
func (g *procGroup) do(ctx context.Context, c command) error {
	if err := g.b.Broadcast(ctx, c.encode(), 0); err != nil {
		return err
	}
	iters := c.iters
	if c.op == cmdCheck {
		iters = 1
	}
	for i := 0; i < iters; i++ {
		if err := g.runner.run(ctx, g.b, 0, g.size, c); err != nil {
			return err
		}
	}
	return nil
}

// stop tells serving children to exit and waits for them.
func (g *procGroup) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.b.Broadcast(ctx, command{}.encode(), 0); err != nil {
		t.Error(err)
	}
	g.b.Close()
	for i, cmd := range g.cmds {
		rest, _ := io.ReadAll(g.out[i])
		if err := cmd.Wait(); err != nil {
			t.Errorf("rank %d: %v: %s", i+1, err, rest)
		}
	}
	g.cmds = nil
}

func (g *procGroup) kill() {
	for _, cmd := range g.cmds {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	if g.b != nil {
		g.b.Close()
	}
}

// line reads the next line child rank r printed.
func (g *procGroup) line(r int) (string, error) {
	s, err := g.out[r-1].ReadString('\n')
	return strings.TrimSpace(s), err
}

// TestProcesses checks allreduce and the pipelined operations between
// processes, with both algorithms.
func TestProcesses(t *testing.T) {
	for _, size := range []int{2, 3} {
		t.Run(fmt.Sprint("ranks=", size), func(t *testing.T) {
			g := startProcs(t, size, "serve", nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, c := range []command{
				{cmdCheck, 4 * 1001, 7},
				{cmdCheck, 4 * 300007, 8},
				{cmdBroadcast, 1 << 20, 2},
				{cmdAllgather, 1 << 20, 2},
				{cmdReduceScatter, 1 << 20, 2},
			} {
				if err := g.do(ctx, c); err != nil {
					t.Fatalf("command %+v: %v", c, err)
				}
			}
			g.stop(t)
		})
	}
}

// TestProcessKilled kills a rank's process in the middle of a stream of
// allreduces: the other ranks' calls fail quickly with an error naming
// it, instead of hanging.
func TestProcessKilled(t *testing.T) {
	g := startProcs(t, 3, "loop", nil)
	for r := 1; r < 3; r++ {
		if l, err := g.line(r); l != "READY" {
			t.Fatalf("rank %d: %q, %v", r, l, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4<<20)
		for {
			if err := g.b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := g.cmds[1].Process.Kill(); err != nil { // rank 2
		t.Fatal(err)
	}
	killed := time.Now()
	err := <-errc
	t.Logf("rank 0, %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	var we *backend.WaitError
	if errors.As(err, &we) || !strings.Contains(err.Error(), "lost rank 2") {
		t.Errorf("rank 0: got %v, want an error naming rank 2", err)
	}
	l, _ := g.line(1)
	t.Logf("rank 1: %s", l)
	if !strings.HasPrefix(l, "ERR") || !strings.Contains(l, "rank 2") || strings.Contains(l, "have not arrived") {
		t.Errorf("rank 1: got %q, want an error naming rank 2", l)
	}
}
