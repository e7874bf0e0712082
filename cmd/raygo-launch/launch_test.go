package main

// The end-to-end test builds raygo-launch and a raygo driver
// (testdata/driver), starts three ranks by hand on 127.0.0.1, 127.0.0.2 and
// 127.0.0.3 (RAYGO_INTERFACE per rank, a TMPDIR each, one 0700 rendezvous
// directory), and checks what a user sees: where tasks ran, exit codes,
// messages, signals, and that nothing is left behind.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rgruntime "github.com/raygo/raygo/runtime"
)

// caseTimeout bounds each case: its processes are killed after it.
const caseTimeout = 60 * time.Second

type binaries struct{ launch, driver string }

func TestLaunch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds raygo-launch and a driver and runs clusters of processes; skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the leak checks read /proc and /dev/shm")
	}
	bins := build(t)

	for _, code := range []int{0, 7} {
		t.Run(fmt.Sprintf("exit %d", code), func(t *testing.T) {
			l := newLaunch(t, bins)
			start := time.Now()
			for r := range 3 {
				l.start(r, 3, nil, "-exit", strconv.Itoa(code))
			}
			first := l.ranks[0].out.waitFor(t, "driver: ", 30*time.Second)
			ran := l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
			t.Logf("from starting 3 ranks: driver's first output after %v, tasks on every node done after %v",
				first.at.Sub(start).Round(time.Millisecond), ran.at.Sub(start).Round(time.Millisecond))
			if first.at.Sub(start) > time.Second {
				// Usually 20-60 ms; say where the time went (--verbose).
				t.Logf("slow start; rank 0's stderr:\n%s", l.ranks[0].errs)
			}
			checkRanAll(t, ran.text, 3)
			l.wantExit(0, code, 30*time.Second)
			l.wantExit(1, 0, 10*time.Second)
			l.wantExit(2, 0, 10*time.Second)
			l.checkNothingLeft()
		})
	}

	t.Run("head and secret file", func(t *testing.T) {
		// As in a Kubernetes indexed job: a head address known in advance
		// and a secret file every rank reads (rank 0 creates it).
		l := newLaunch(t, bins)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		head := ln.Addr().String()
		ln.Close()
		secret := filepath.Join(l.root, "secret")
		for r := range 3 {
			flags := []string{"--head", head, "--secret-file", secret}
			if r == 0 {
				l.start(r, 3, flags, "-exit", "0")
			} else {
				l.startCommand(r, 3, flags, "")
			}
		}
		ran := l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
		checkRanAll(t, ran.text, 3)
		for r := range 3 {
			l.wantExit(r, 0, 10*time.Second)
		}
		if st, err := os.Stat(secret); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("secret file: %v %v, want mode 0600", st, err)
		}
		l.checkNothingLeft()
	})

	t.Run("missing driver", func(t *testing.T) {
		l := newLaunch(t, bins)
		p := l.startCommand(0, 3, nil, "raygo-no-such-driver", "-exit", "1")
		l.wantExit(0, 127, 10*time.Second)
		if !strings.Contains(p.errs.String(), `"raygo-no-such-driver"`) {
			t.Errorf("stderr does not name the command:\n%s", p.errs)
		}
		l.checkNothingLeft()
	})

	t.Run("rank never starts", func(t *testing.T) {
		l := newLaunch(t, bins)
		l.start(0, 3, []string{"--join-timeout", "1s"})
		l.start(1, 3, nil)
		l.wantExit(0, 3, 20*time.Second)
		if e := l.ranks[0].errs.String(); !strings.Contains(e, "only 2 of 3 nodes joined") || !strings.Contains(e, "missing: rank 2") {
			t.Errorf("rank 0's stderr does not name the missing rank:\n%s", e)
		}
		l.wantExit(1, 0, 10*time.Second)
		l.checkNothingLeft()
	})

	t.Run("min nodes", func(t *testing.T) {
		l := newLaunch(t, bins)
		l.start(0, 3, []string{"--join-timeout", "1s", "--min-nodes", "2"})
		l.start(1, 3, nil)
		ran := l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
		checkRanAll(t, ran.text, 2)
		l.wantExit(0, 0, 20*time.Second)
		if e := l.ranks[0].errs.String(); !strings.Contains(e, "going on with 2 of 3 nodes") || !strings.Contains(e, "missing: rank 2") {
			t.Errorf("rank 0's stderr:\n%s", e)
		}
		l.wantExit(1, 0, 10*time.Second)
		l.checkNothingLeft()
	})

	t.Run("SIGTERM", func(t *testing.T) {
		l := newLaunch(t, bins)
		for r := range 3 {
			l.start(r, 3, nil, "-wait-term")
		}
		l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
		sent := time.Now()
		l.signal(0, syscall.SIGTERM)
		l.ranks[0].out.waitFor(t, "driver: checkpoint", 10*time.Second)
		for r := range 3 {
			l.wantExit(r, 0, 10*time.Second)
		}
		l.checkExitedWithin(sent, 5*time.Second)
		l.checkNothingLeft()
	})

	t.Run("SIGTERM to every rank", func(t *testing.T) {
		// As scancel, mpirun or Kubernetes do: the other ranks keep
		// serving while the driver checkpoints.
		l := newLaunch(t, bins)
		for r := range 3 {
			l.start(r, 3, nil, "-wait-term", "-checkpoint-tasks")
		}
		l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
		sent := time.Now()
		for r := range 3 {
			l.signal(r, syscall.SIGTERM)
		}
		ran := l.ranks[0].out.waitFor(t, "driver: checkpoint 3 tasks", 10*time.Second)
		checkRanAll(t, ran.text, 3)
		for r := range 3 {
			l.wantExit(r, 0, 10*time.Second)
		}
		l.checkExitedWithin(sent, 5*time.Second)
		l.checkNothingLeft()
	})

	t.Run("SIGUSR1", func(t *testing.T) {
		l := newLaunch(t, bins)
		for r := range 3 {
			l.start(r, 3, nil, "-wait-notice")
		}
		l.ranks[0].out.waitFor(t, "tasks ran on nodes", 30*time.Second)
		l.signal(0, syscall.SIGUSR1)
		l.ranks[0].out.waitFor(t, "driver: notice user defined signal 1: early warning", 10*time.Second)
		for r := range 3 {
			l.wantExit(r, 0, 10*time.Second)
		}
		l.checkNothingLeft()
	})

	t.Run("version mismatch", func(t *testing.T) {
		l := newLaunch(t, bins)
		// What rank 0 of another raygo-launch version would publish (the
		// address is never dialled: the version is checked first).
		info := map[string]any{"addr": "127.0.0.1:1", "secret": strings.Repeat("5a", 32), "version": "0.0.0-other",
			"host": "elsewhere", "pid": 1, "cluster": "0ther"}
		b, _ := json.Marshal(info)
		if err := os.Mkdir(l.keyDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.keyDir(), "head.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		p := l.start(1, 3, []string{"--join-timeout", "1s"})
		l.wantExit(1, 2, 20*time.Second)
		for _, w := range []string{"version mismatch", "0.0.0-other", rgruntime.Version, l.keyDir()} {
			if !strings.Contains(p.errs.String(), w) {
				t.Errorf("rank 1's stderr does not mention %q:\n%s", w, p.errs)
			}
		}
		os.RemoveAll(l.keyDir())
		l.checkNothingLeft()
	})
}

// build compiles raygo-launch and the test driver into a temporary
// directory.
func build(t *testing.T) binaries {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	dir := t.TempDir()
	b := binaries{launch: filepath.Join(dir, "raygo-launch"), driver: filepath.Join(dir, "driver")}
	for _, args := range [][]string{{"build", "-o", b.launch, "."}, {"build", "-o", b.driver, "./testdata/driver"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return b
}

// checkRanAll checks the driver's "N tasks ran on nodes ..." line: a task
// on each of ranks 0..n-1, each rank's agent on its own address.
func checkRanAll(t *testing.T, line string, n int) {
	t.Helper()
	for r := range n {
		want := fmt.Sprintf("(rank %d)@127.0.0.%d", r, r+1)
		if !strings.Contains(line, want) {
			t.Errorf("%q: no task on rank %d's node at 127.0.0.%d", line, r, r+1)
		}
	}
	if got := len(regexp.MustCompile(`\(rank \d+\)`).FindAllString(line, -1)); got != n {
		t.Errorf("%q: tasks ran on %d nodes, want %d", line, got, n)
	}
}

// launch is one test launch: ranks started by hand with a shared key and
// rendezvous directory.
type launch struct {
	t     *testing.T
	bins  binaries
	root  string
	rv    string // the rendezvous directory
	key   string
	ctx   context.Context
	ranks map[int]*proc
}

func newLaunch(t *testing.T, bins binaries) *launch {
	root := t.TempDir()
	l := &launch{t: t, bins: bins, root: root, rv: filepath.Join(root, "rendezvous"), ranks: map[int]*proc{},
		key: fmt.Sprintf("e2e-%d-%s", os.Getpid(), regexp.MustCompile(`\W+`).ReplaceAllString(t.Name(), "_"))}
	if err := os.Mkdir(l.rv, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	l.ctx = ctx
	t.Cleanup(func() {
		cancel() // kills whatever is still running
		for _, p := range l.ranks {
			<-p.done
		}
	})
	return l
}

// keyDir is where rank 0 publishes the head (raygo-launch's Role.Key for
// --key is "manual-" + the key).
func (l *launch) keyDir() string { return filepath.Join(l.rv, "manual-"+l.key) }

// start runs rank r of n with the test driver and driverArgs.
func (l *launch) start(r, n int, flags []string, driverArgs ...string) *proc {
	return l.startCommand(r, n, flags, l.bins.driver, driverArgs...)
}

// proc is one raygo-launch process.
type proc struct {
	cmd       *exec.Cmd
	tmp       string
	out, errs *lines
	done      chan struct{}
	code      int
	exitedAt  time.Time
}

func (l *launch) startCommand(r, n int, flags []string, command string, args ...string) *proc {
	t := l.t
	t.Helper()
	p := &proc{tmp: filepath.Join(l.root, fmt.Sprintf("tmp%d", r)), out: &lines{}, errs: &lines{}, done: make(chan struct{})}
	if err := os.Mkdir(p.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	argv := []string{"--rank", strconv.Itoa(r), "--world-size", strconv.Itoa(n), "--key", l.key, "--rendezvous-dir", l.rv, "--grace", "5s", "--verbose"}
	argv = append(argv, flags...)
	if command != "" { // ranks other than 0 need none
		argv = append(append(argv, "--", command), args...)
	}
	cmd := exec.CommandContext(l.ctx, l.bins.launch, argv...)
	// A clean environment: no launch system, no raygo settings of the
	// caller's; TMPDIR and the interface per rank.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, p := range []string{"RAYGO_", "SLURM_", "OMPI_", "PMI_", "PMIX_", "CONTAINER_ID=", "NM_HOST=", "JOB_COMPLETION_INDEX=", "TMPDIR="} {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
		return false
	})
	cmd.Env = append(env, "TMPDIR="+p.tmp, fmt.Sprintf("RAYGO_INTERFACE=127.0.0.%d", r+1))
	// Its own process group, so that a timeout kills the driver and
	// workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdout, cmd.Stderr = p.out, p.errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	l.ranks[r] = p
	go func() {
		err := cmd.Wait()
		p.exitedAt = time.Now()
		p.code = 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		case err != nil:
			p.code = -1
		}
		close(p.done)
	}()
	return p
}

// signal sends s to rank r's raygo-launch (only: not to its process group).
func (l *launch) signal(r int, s syscall.Signal) {
	if err := l.ranks[r].cmd.Process.Signal(s); err != nil {
		l.t.Fatalf("signal rank %d: %v", r, err)
	}
}

// wantExit waits for rank r to exit with code.
func (l *launch) wantExit(r, code int, timeout time.Duration) {
	t := l.t
	t.Helper()
	p := l.ranks[r]
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("rank %d still running after %v\nstdout:\n%s\nstderr:\n%s", r, timeout, p.out, p.errs)
	}
	if p.code != code {
		t.Errorf("rank %d exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r, p.code, code, p.out, p.errs)
	}
}

func (l *launch) checkExitedWithin(since time.Time, d time.Duration) {
	for r, p := range l.ranks {
		<-p.done
		took := p.exitedAt.Sub(since)
		l.t.Logf("rank %d exited %v after the signal", r, took.Round(time.Millisecond))
		if took > d {
			l.t.Errorf("rank %d exited %v after the signal, want within %v", r, took, d)
		}
	}
}

// checkNothingLeft checks, once every rank has exited, that no
// raygo-launch, driver or worker process remains, that the cluster left
// nothing in /dev/shm, that each rank's TMPDIR is empty, and that the
// rendezvous directory holds nothing of this launch.
func (l *launch) checkNothingLeft() {
	t := l.t
	t.Helper()
	var cluster string
	for _, p := range l.ranks {
		<-p.done
		if m := regexp.MustCompile(`driver: cluster (\S+)`).FindStringSubmatch(p.out.String()); m != nil {
			cluster = m[1]
		}
	}
	if pids := waitProcsGone([]string{l.bins.launch, l.bins.driver}, 5*time.Second); len(pids) > 0 {
		t.Errorf("processes still running after every rank exited: %v", pids)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if cluster != "" {
		pattern := "/dev/shm/raygo-" + cluster + "-*"
		deadline := time.Now().Add(5 * time.Second)
		for {
			left, _ := filepath.Glob(pattern)
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("left in /dev/shm: %v", left)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for r, p := range l.ranks {
		if ents, err := os.ReadDir(p.tmp); err != nil || len(ents) > 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("rank %d left in its TMPDIR: %v %v", r, names, err)
		}
	}
	if ents, err := os.ReadDir(l.keyDir()); err == nil && len(ents) > 0 {
		t.Errorf("left in the rendezvous key directory %s: %d entries", l.keyDir(), len(ents))
	}
}

// waitProcsGone waits up to grace for every process running one of exes
// to end, and returns the pids of those still running.
func waitProcsGone(exes []string, grace time.Duration) []int {
	deadline := time.Now().Add(grace)
	for {
		var pids []int
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			target, err := os.Readlink(p + "/exe")
			if err != nil || !slices.Contains(exes, strings.TrimSuffix(target, " (deleted)")) {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lines collects a process's output line by line, with the time each
// line arrived.
type lines struct {
	mu      sync.Mutex
	partial []byte
	got     []line
	changed chan struct{} // closed and replaced on every new line
}

type line struct {
	text string
	at   time.Time
}

func (w *lines) Write(p []byte) (int, error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.got = append(w.got, line{string(w.partial[:i]), now})
		w.partial = w.partial[i+1:]
		added = true
	}
	if added && w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	return len(p), nil
}

// waitFor returns the first line containing s, waiting up to timeout.
func (w *lines) waitFor(t *testing.T, s string, timeout time.Duration) line {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		for _, l := range w.got {
			if strings.Contains(l.text, s) {
				w.mu.Unlock()
				return l
			}
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no line with %q within %v in:\n%s", s, timeout, w)
		}
	}
}

func (w *lines) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, l := range w.got {
		b.WriteString(l.text + "\n")
	}
	b.Write(w.partial)
	return b.String()
}
