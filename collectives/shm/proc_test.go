package shm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// The test binary re-executes itself as the other ranks of a group when
// these variables are set (see startRanks).
const (
	envRole  = "RAYGO_SHM_TEST_ROLE"
	envDir   = "RAYGO_SHM_TEST_DIR"
	envGroup = "RAYGO_SHM_TEST_GROUP"
	envRank  = "RAYGO_SHM_TEST_RANK"
	envSize  = "RAYGO_SHM_TEST_SIZE"
	envSeed  = "RAYGO_SHM_TEST_SEED"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := child(role); err != nil {
			fmt.Fprintf(os.Stderr, "rank %s: %v\n", os.Getenv(envRank), err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procConfig is the configuration of rank in a group whose ranks are
// processes rendezvousing through dir.
func procConfig(dir, group string, rank, size int) backend.Config {
	members := make([]backend.Member, size)
	for i := range members {
		members[i] = backend.Member{Rank: i, Node: "local", Host: "127.0.0.1"}
	}
	return backend.Config{Group: group, Rank: rank, Size: size, Members: members,
		Rendezvous: backend.DirRendezvous{Dir: dir, Rank: rank, Size: size}}
}

func child(role string) error {
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	limit := 2 * time.Minute
	if role == "bench" {
		limit = time.Hour // until rank 0 says stop, or exits
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cfg := procConfig(os.Getenv(envDir), os.Getenv(envGroup), rank, size)
	if role == "bench" {
		cfg.Options = benchOptions()
	}
	b, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	switch role {
	case "check":
		seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
		return procWork(ctx, b, rank, size, seed)
	case "exit":
		os.Exit(0) // as if killed: without closing the backend
	case "bench":
		return benchChild(ctx, b)
	}
	return fmt.Errorf("unknown role %q", role)
}

// startRanks starts ranks 1..size-1 of group as child processes.
func startRanks(t testing.TB, role, dir, group string, size int, seed uint64) []*exec.Cmd {
	var cmds []*exec.Cmd
	for r := 1; r < size; r++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envRole+"="+role, envDir+"="+dir, envGroup+"="+group,
			envRank+"="+strconv.Itoa(r), envSize+"="+strconv.Itoa(size), envSeed+"="+strconv.FormatUint(seed, 10))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	})
	return cmds
}

// procWork is what every process of TestProcesses runs: allreduce over
// every element type and reduction, checked against the reference, then
// the other collectives.
func procWork(ctx context.Context, b backend.Backend, rank, size int, seed uint64) error {
	for _, dt := range backend.DTypes {
		for _, op := range []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max} {
			for _, n := range []int{0, 1, 13, 1000, 70001} {
				want := backendtest.Expect(dt, op, size, n, seed)
				send := backendtest.Data(dt, op, rank, n, seed)
				recv := make([]byte, len(send))
				if err := b.Allreduce(ctx, send, recv, dt, op); err != nil {
					return err
				}
				if err := backendtest.Check(dt, op, size, recv, want); err != nil {
					return fmt.Errorf("allreduce %v %v n=%d: %w", dt, op, n, err)
				}
				if err := b.Allreduce(ctx, send, send, dt, op); err != nil {
					return err
				}
				if !bytes.Equal(send, recv) {
					return fmt.Errorf("allreduce %v %v n=%d: in place differs from out of place", dt, op, n)
				}
			}
		}
	}
	n := 300007
	buf := backendtest.Data(backend.U8, backend.Sum, rank, n, seed)
	if err := b.Broadcast(ctx, buf, size-1); err != nil {
		return err
	}
	if !bytes.Equal(buf, backendtest.Data(backend.U8, backend.Sum, size-1, n, seed)) {
		return errors.New("broadcast: data differs")
	}
	all := make([]byte, size*n)
	if err := b.Allgather(ctx, buf, all); err != nil {
		return err
	}
	for r := range size {
		if !bytes.Equal(all[r*n:(r+1)*n], buf) {
			return fmt.Errorf("allgather: block %d differs", r)
		}
	}
	out := backendtest.Data(backend.U8, backend.Sum, rank, n, seed)
	in := make([]byte, n)
	from := (rank + size - 1) % size
	errc := make(chan error, 1)
	go func() { errc <- b.Send(ctx, out, (rank+1)%size) }()
	if err := b.Recv(ctx, in, from); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(in, backendtest.Data(backend.U8, backend.Sum, from, n, seed)) {
		return fmt.Errorf("recv from %d: data differs", from)
	}
	return b.Barrier(ctx)
}

// segments lists the files in the segment directory made for group.
func segments(t testing.TB, group string) []string {
	ents, err := os.ReadDir(segmentDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filePrefix) && strings.HasSuffix(e.Name(), "-"+group) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestProcesses runs a group of three processes: this one as rank 0 and
// two children. Each checks its results; afterwards no segment is left.
func TestProcesses(t *testing.T) {
	const size = 3
	dir := t.TempDir()
	group := fmt.Sprintf("proctest-%d-%d", os.Getpid(), time.Now().UnixNano())
	seed := uint64(time.Now().UnixNano())
	cmds := startRanks(t, "check", dir, group, size, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := New(ctx, procConfig(dir, group, 0, size))
	if err != nil {
		t.Fatal(err)
	}
	if left := segments(t, group); len(left) != 0 {
		t.Errorf("segment still linked once the group is built: %v", left)
	}
	if err := procWork(ctx, b, 0, size, seed); err != nil {
		t.Fatalf("rank 0 (seed %d): %v", seed, err)
	}
	b.Close()
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("rank %d: %v", i+1, err)
		}
	}
	if left := segments(t, group); len(left) != 0 {
		t.Errorf("segments left behind: %v", left)
	}
}

// TestPeerExited: a rank whose process has exited is reported as such,
// without waiting for ctx to end.
func TestPeerExited(t *testing.T) {
	dir := t.TempDir()
	group := fmt.Sprintf("exittest-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmds := startRanks(t, "exit", dir, group, 2, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := New(ctx, procConfig(dir, group, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := cmds[0].Wait(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = b.Barrier(ctx)
	var we *backend.WaitError
	if !errors.Is(err, ErrPeerExited) || !errors.As(err, &we) || len(we.Missing) != 1 || we.Missing[0] != 1 {
		t.Fatalf("barrier with an exited rank returned %v, want ErrPeerExited naming rank 1", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to notice", d)
	}
}

// TestSegmentDir: the segment goes to shm.dir and is gone once the group
// is built.
func TestSegmentDir(t *testing.T) {
	dir := t.TempDir()
	bs := group(t, 3, map[string]string{OptDir: dir})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s holds %v after the group was built", dir, ents)
	}
	if err := backendtest.All(context.Background(), bs, 10*time.Second, func(ctx context.Context, _ int, b backend.Backend) error {
		return b.Barrier(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	// A directory that does not exist: rank 0 says why, rank 1 learns it.
	missing := filepath.Join(dir, "missing")
	rv := backendtest.NewMemRendezvous(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[r] = New(context.Background(), backend.Config{Group: "dirtest", Rank: r, Size: 2, Rendezvous: rv.ForRank(r),
				Options: map[string]string{OptDir: missing}})
		}()
	}
	wg.Wait()
	for r, want := range []string{"create " + missing, "rank 0 could not create the segment: create " + missing} {
		if errs[r] == nil || !strings.Contains(errs[r].Error(), want) {
			t.Errorf("rank %d: got %v, want an error saying %q", r, errs[r], want)
		}
	}
}
