package launcher_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/launcher"
)

// These tests run ranks of a launch inside the test process (head and node
// agents as goroutines) with a shell script as the driver; signals come
// through Config.Signals. cmd/raygo-launch has the end-to-end test with a
// raygo driver and real processes.

// output is an io.Writer safe for the driver's and the launcher's writes.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output holds s.
func (o *output) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v in:\n%s", s, timeout, o)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rank is one in-process rank of a launch.
type rank struct {
	out, errs output
	sigs      chan os.Signal
	code      chan int
}

// launchDir holds what every rank of a test launch shares.
type launchDir struct {
	rendezvous string
	tmp        string
}

func newLaunchDir(t *testing.T) launchDir {
	d := launchDir{rendezvous: filepath.Join(t.TempDir(), "rv"), tmp: t.TempDir()}
	if err := os.Mkdir(d.rendezvous, 0o700); err != nil {
		t.Fatal(err)
	}
	// State directories go under TMPDIR; check it is left empty.
	t.Setenv("TMPDIR", d.tmp)
	t.Cleanup(func() {
		if ents, _ := os.ReadDir(d.tmp); len(ents) > 0 {
			t.Errorf("left in TMPDIR: %v", ents)
		}
		if ents, _ := os.ReadDir(d.rendezvous); len(ents) > 0 {
			t.Errorf("left in the rendezvous directory: %v", ents)
		}
	})
	return d
}

// start runs rank r of a world of n in a goroutine. cfg's Manual, Stdout,
// Stderr, Signals, RendezvousDir, Interface and Lookup are filled in.
func (d launchDir) start(t *testing.T, r, n int, cfg launcher.Config) *rank {
	t.Helper()
	k := &rank{sigs: make(chan os.Signal, 4), code: make(chan int, 1)}
	cfg.Manual = launcher.Manual{Rank: r, WorldSize: n, Key: t.Name()}
	cfg.RendezvousDir = d.rendezvous
	cfg.Interface = "127.0.0.1"
	cfg.Stdout, cfg.Stderr, cfg.Signals = &k.out, &k.errs, k.sigs
	cfg.Lookup = env{}.lookup // not the test's own environment
	if cfg.JoinTimeout == 0 {
		cfg.JoinTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { k.code <- launcher.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-k.code:
		default:
			k.sigs <- syscall.SIGTERM
			k.sigs <- syscall.SIGTERM
			select {
			case <-k.code:
			case <-time.After(20 * time.Second):
				t.Errorf("rank %d did not stop", r)
			}
		}
	})
	return k
}

// wait returns the rank's exit code.
func (k *rank) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case c := <-k.code:
		k.code <- c // for Cleanup
		return c
	case <-time.After(timeout):
		t.Fatalf("still running after %v; stderr:\n%s", timeout, &k.errs)
		return -1
	}
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func TestRunPassesExitCodeAndEnvironment(t *testing.T) {
	d := newLaunchDir(t)
	k := d.start(t, 0, 1, launcher.Config{Command: sh(`
		echo "address=$RAYGO_ADDRESS launch=$RAYGO_LAUNCH world=$RAYGO_WORLD_SIZE"
		test -r "$RAYGO_SECRET_FILE" || exit 9
		exit 7`)})
	if code := k.wait(t, 20*time.Second); code != 7 {
		t.Fatalf("exit %d, want the driver's 7; stderr:\n%s", code, &k.errs)
	}
	if out := k.out.String(); !strings.Contains(out, "address=127.0.0.1:") || !strings.Contains(out, "launch=1 world=1") {
		t.Errorf("driver environment: %s", out)
	}
}

func TestRunSetupErrors(t *testing.T) {
	d := newLaunchDir(t)
	k := d.start(t, 0, 3, launcher.Config{Command: []string{"raygo-no-such-driver"}})
	if code := k.wait(t, 10*time.Second); code != launcher.ExitNoDriver {
		t.Errorf("missing driver: exit %d, want %d", code, launcher.ExitNoDriver)
	}
	if !strings.Contains(k.errs.String(), `"raygo-no-such-driver"`) {
		t.Errorf("missing driver: stderr does not name it:\n%s", &k.errs)
	}
	k = d.start(t, 0, 1, launcher.Config{})
	if code := k.wait(t, 10*time.Second); code != launcher.ExitSetup || !strings.Contains(k.errs.String(), "no driver command") {
		t.Errorf("no command: exit %d, %s", code, &k.errs)
	}
	k = d.start(t, 3, 3, launcher.Config{Command: sh("exit 0")})
	if code := k.wait(t, 10*time.Second); code != launcher.ExitSetup || !strings.Contains(k.errs.String(), "--rank 3 --world-size 3") {
		t.Errorf("bad rank: exit %d, %s", code, &k.errs)
	}
}

func TestRunJoinTimeout(t *testing.T) {
	d := newLaunchDir(t)
	k := d.start(t, 0, 3, launcher.Config{Command: sh("exit 0"), JoinTimeout: 200 * time.Millisecond})
	if code := k.wait(t, 10*time.Second); code != launcher.ExitNoJoin {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, launcher.ExitNoJoin, &k.errs)
	}
	if !strings.Contains(k.errs.String(), "only 1 of 3 nodes") || !strings.Contains(k.errs.String(), "missing: rank 1, rank 2") {
		t.Errorf("stderr does not name the missing ranks:\n%s", &k.errs)
	}

	// With --min-nodes the launch goes on. An early warning while waiting
	// does not end it either (only SIGTERM and SIGINT do).
	k = d.start(t, 0, 3, launcher.Config{Command: sh("echo driver ran"), JoinTimeout: 300 * time.Millisecond, MinNodes: 1})
	k.sigs <- syscall.SIGUSR1
	if code := k.wait(t, 10*time.Second); code != 0 || !strings.Contains(k.out.String(), "driver ran") {
		t.Fatalf("--min-nodes 1: exit %d, out %q; stderr:\n%s", code, &k.out, &k.errs)
	}
	if !strings.Contains(k.errs.String(), "going on with 1 of 3 nodes") {
		t.Errorf("stderr:\n%s", &k.errs)
	}

	k = d.start(t, 0, 3, launcher.Config{Command: sh("exit 0")})
	k.sigs <- syscall.SIGTERM
	if code := k.wait(t, 10*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("SIGTERM while waiting for nodes: exit %d, want %d", code, 128+int(syscall.SIGTERM))
	}
}

func TestRunSignalsReachDriver(t *testing.T) {
	d := newLaunchDir(t)
	k := d.start(t, 0, 1, launcher.Config{Grace: 10 * time.Second, Command: sh(`
		trap 'echo got USR1' USR1
		trap 'echo got HUP' HUP
		trap 'echo got TERM; exit 5' TERM
		echo ready
		while :; do sleep 0.02; done`)})
	k.out.waitFor(t, "ready", 20*time.Second)
	k.sigs <- syscall.SIGUSR1
	k.out.waitFor(t, "got USR1", 5*time.Second)
	k.sigs <- syscall.SIGHUP
	k.out.waitFor(t, "got HUP", 5*time.Second)
	k.sigs <- syscall.SIGTERM
	if code := k.wait(t, 5*time.Second); code != 5 {
		t.Errorf("exit %d, want the driver's 5", code)
	}
	k.out.waitFor(t, "got TERM", time.Second)
}

func TestRunKillsDriverAfterGrace(t *testing.T) {
	d := newLaunchDir(t)
	k := d.start(t, 0, 1, launcher.Config{Grace: 300 * time.Millisecond, Command: sh(`
		trap '' TERM INT
		echo ready
		while :; do sleep 0.02; done`)})
	k.out.waitFor(t, "ready", 20*time.Second)
	start := time.Now()
	k.sigs <- syscall.SIGINT
	if code := k.wait(t, 5*time.Second); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit %d, want %d (killed)", code, 128+int(syscall.SIGKILL))
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("killed after %v, before the grace period", d)
	}
	if !strings.Contains(k.errs.String(), "killing it") {
		t.Errorf("stderr:\n%s", &k.errs)
	}
}

// SIGTERM reaches every rank at once (scancel, mpirun, Kubernetes); the
// other ranks keep serving until rank 0's driver has finished.
func TestRunOtherRanksServeThroughGrace(t *testing.T) {
	d := newLaunchDir(t)
	r0 := d.start(t, 0, 2, launcher.Config{Grace: 10 * time.Second, Command: sh(`
		trap 'echo checkpointing; sleep 0.5; echo checkpointed; exit 0' TERM
		echo ready
		while :; do sleep 0.02; done`)})
	r1 := d.start(t, 1, 2, launcher.Config{Grace: 10 * time.Second})
	r0.out.waitFor(t, "ready", 20*time.Second)
	r1.sigs <- syscall.SIGTERM
	r0.sigs <- syscall.SIGTERM
	r0.out.waitFor(t, "checkpointing", 5*time.Second)
	select {
	case c := <-r1.code:
		r1.code <- c // for Cleanup
		t.Fatalf("rank 1 exited (%d) while the driver was checkpointing; stderr:\n%s", c, &r1.errs)
	case <-time.After(200 * time.Millisecond):
	}
	if code := r0.wait(t, 5*time.Second); code != 0 {
		t.Errorf("rank 0: exit %d", code)
	}
	if code := r1.wait(t, 5*time.Second); code != 0 {
		t.Errorf("rank 1: exit %d; stderr:\n%s", code, &r1.errs)
	}

	// A second SIGTERM stops a rank at once.
	r0 = d.start(t, 0, 2, launcher.Config{Command: sh("echo ready; while :; do sleep 0.02; done")})
	r1 = d.start(t, 1, 2, launcher.Config{})
	r0.out.waitFor(t, "ready", 20*time.Second)
	r1.sigs <- syscall.SIGTERM
	r1.sigs <- syscall.SIGTERM
	if code := r1.wait(t, 5*time.Second); code != 0 {
		t.Errorf("rank 1 after two SIGTERMs: exit %d", code)
	}
	r0.sigs <- syscall.SIGTERM
	if code := r0.wait(t, 5*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("rank 0: exit %d, want %d", code, 128+int(syscall.SIGTERM))
	}
}
