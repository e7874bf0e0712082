// Package examples_test builds every example, runs it, checks its output,
// and checks that it left nothing behind: no process, no raygo-* entry in
// its TMPDIR or in /dev/shm.
package examples_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The examples, each with what its output must contain.
var examples = []struct {
	dir  string
	args []string
	want []string // regular expressions, matched in order of appearance
}{
	{"quickstart", nil, []string{
		`squares: \[0 1 4 9 16 25 36 49 64 81\]`,
		`sum of squares: 285`,
		`counter: 110`,
	}},
	{"tasks", nil, []string{
		`chain: quotient 8, remainder 2`,
		`application error: errors.Is\(err, raygo.ErrApplication\) = true`,
		`upstream error: .* = true`,
		`panic: errors.Is\(err, raygo.ErrPanic\) = true`,
		`two results, one error: both refs fail`,
		`options: 8 tasks with CPUs\(0.5\) ran`,
		`display name in errors: isqrt-of--1 `,
		`(?m)^OK$`,
	}},
	{"actors", nil, []string{
		`10 calls returned \[1 2 3 4 5 6 7 8 9 10\]`,
		`named actor: GetActor\("shared-counter"\) = \S+, Incr -> 101`,
		`name taken: .*already exists`,
		`3 tasks called the actor 5 times each: counter = 116`,
		`MaxConcurrency\(1\): .* at most 1 at once`,
		`MaxConcurrency\(4\): .* at most 4 at once`,
		`after Kill: errors.Is\(err, raygo.ErrActorDied\) = true`,
		`(?m)^OK$`,
	}},
	{"collectives", nil, []string{
		`group sgd: ranks \[0 1 2 3\]`,
		`after  40 steps: mean squared error 0\.000`,
		`models identical on 4 workers; largest weight error 0\.00`,
		`(?m)^OK$`,
	}},
	{"objects", nil, []string{
		`Put/Get: Ref\(\S+\) -> \{X:1.5 Y:-2 Label:a\}`,
		`zero-copy: 32 MiB \[\]float64 Put once`,
		`task over the view: sum = 2.094949056e\+09`,
		`ref in a struct: job2: sum of \[2000, 3000\) = 499500`,
		`Wait\(k=3\): 3 ready .* 3 pending`,
		`Cancel: errors.Is\(err, raygo.ErrCancelled\) = true`,
		`(?m)^OK$`,
	}},
	{"placement", nil, []string{
		`infeasible group: `,
		`placement group \d+: bundles .* reserved on nodes`,
		`task in bundle 0 on node`,
		`task in bundle 1 on node`,
		`actor in bundle 1 logged 4 lines`,
		`after Remove: task outside the group`,
		`(?m)^OK$`,
	}},
	{"pipeline", nil, []string{
		`stage 1: 131072 x 64 matrix, 64.0 MiB`,
		`stage 2: 1000 block tasks, each handed the 67108864-byte matrix by Ref`,
		`stage 3: 999 merge tasks`,
		`by reference: 64.0 MiB Put once .* 1000 in place from `,
		`check\s+covariance\s+OK`,
		`check\s+eigenvalues\s+OK`,
		`check\s+histogram\s+OK`,
		`check\s+zero-copy\s+OK`,
		`tasks: 2000 \(1000 block, 999 merge, 1 eigen\)`,
		`(?m)^  node \d+: 2000 tasks$`,
		`(?m)^OK$`,
	}},
}

const runTimeout = 60 * time.Second

func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every example; skipped in -short mode")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the examples' leak checks read /proc and /dev/shm")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	// One go build for all of them.
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, ex := range examples {
		args = append(args, "./"+ex.dir)
	}
	build := exec.CommandContext(t.Context(), goTool, args...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	for _, ex := range examples {
		t.Run(ex.dir, func(t *testing.T) {
			exe := filepath.Join(bin, ex.dir)
			out := runExample(t, exe, ex.args)
			pos := 0
			for _, w := range ex.want {
				loc := regexp.MustCompile(w).FindStringIndex(out[pos:])
				if loc == nil {
					t.Errorf("output lacks %q (after byte %d):\n%s", w, pos, out)
					return
				}
				pos += loc[1]
			}
			if strings.Contains(out, "MISMATCH") {
				t.Errorf("output reports a MISMATCH:\n%s", out)
			}
		})
	}
}

// runExample runs exe with a TMPDIR of its own and, where the system
// allows, a /dev/shm of its own (a private mount namespace), so whatever
// it leaves there is known to be its own. It fails t unless the program
// exits 0 within runTimeout and leaves nothing behind, and returns its
// standard output.
func runExample(t *testing.T, exe string, args []string) string {
	tmp := t.TempDir()
	shmLeft := filepath.Join(t.TempDir(), "shm-left")
	private := privateShm()

	var cmd *exec.Cmd
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	if private {
		// The program's /dev/shm is a fresh tmpfs: anything in it at exit
		// was made by this run.
		script := `mount -t tmpfs raygo-example /dev/shm || exit 97
"$@"
rc=$?
ls -A /dev/shm > "$SHM_LEFT"
exit $rc`
		cmd = exec.CommandContext(ctx, "unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", exe}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, exe, args...)
	}
	// An embedded cluster of its own: no RAYGO_ADDRESS, RAYGO_WORKER, ...
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "RAYGO_") })
	cmd.Env = append(env, "TMPDIR="+tmp, "SHM_LEFT="+shmLeft)
	// Kill the whole process group on timeout: the driver and its workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	shmBefore := shmEntries(t)
	runStart := time.Now()
	err := cmd.Run()
	elapsed := time.Since(runStart)
	t.Logf("%s %s: %v, exit %v\n%s", filepath.Base(exe), strings.Join(args, " "), elapsed.Round(time.Millisecond), err, stdout.String())
	if ctx.Err() != nil {
		t.Errorf("did not finish within %v", runTimeout)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 97 && private {
			t.Fatalf("could not mount a private /dev/shm: %s", stderr.String())
		}
		t.Errorf("exit: %v\nstderr:\n%s", err, stderr.String())
	}

	// Nothing left behind: no process of this binary, nothing in TMPDIR,
	// nothing in /dev/shm.
	if pids := waitProcsGone(exe, 5*time.Second); len(pids) > 0 {
		t.Errorf("processes of %s still running after it exited: %v", filepath.Base(exe), pids)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "raygo-*")); len(left) > 0 {
		t.Errorf("left in its TMPDIR: %v", left)
	}
	if private {
		b, err := os.ReadFile(shmLeft)
		if err != nil {
			t.Errorf("no listing of its /dev/shm: %v", err)
		} else if left := strings.Fields(string(b)); len(left) > 0 {
			t.Errorf("left in /dev/shm: %v", left)
		}
	} else if left := shmLeftovers(shmBefore, runStart, 5*time.Second); len(left) > 0 {
		// Without a namespace of its own, an entry another raygo program
		// made meanwhile on this machine can show up here too.
		t.Errorf("new in /dev/shm after the run and used by no process: %v", left)
	}
	return stdout.String()
}

// privateShm reports whether programs can be run in a mount namespace of
// their own with a fresh tmpfs on /dev/shm (Linux, with the privilege to
// mount, and unshare(1) installed).
var privateShm = sync.OnceValue(func() bool {
	err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs raygo-example /dev/shm").Run()
	return err == nil
})

func shmEntries(t *testing.T) map[string]bool {
	m := map[string]bool{}
	names, err := filepath.Glob("/dev/shm/raygo-*")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// shmLeftovers waits up to grace for the /dev/shm/raygo-* entries made
// since `since` (and absent from before) to go, and returns those still
// there that no running process has open or mapped.
func shmLeftovers(before map[string]bool, since time.Time, grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		var left []string
		names, _ := filepath.Glob("/dev/shm/raygo-*")
		for _, n := range names {
			fi, err := os.Stat(n)
			if err != nil || before[n] || fi.ModTime().Before(since) {
				continue
			}
			left = append(left, n)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			inUse := pathsInUse()
			return slices.DeleteFunc(left, func(n string) bool {
				return slices.ContainsFunc(inUse, func(p string) bool { return strings.HasPrefix(p, n+"/") })
			})
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pathsInUse lists the files that running processes have open or mapped.
func pathsInUse() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := filepath.Glob(p + "/fd/*")
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil {
				out = append(out, target)
			}
		}
		maps, _ := os.ReadFile(p + "/maps")
		for _, line := range strings.Split(string(maps), "\n") {
			if i := strings.Index(line, " /"); i >= 0 {
				out = append(out, strings.TrimSuffix(line[i+1:], " (deleted)"))
			}
		}
	}
	return out
}

// waitProcsGone waits up to grace for every process running exe to end,
// and returns the pids of those still running.
func waitProcsGone(exe string, grace time.Duration) []int {
	deadline := time.Now().Add(grace)
	for {
		var pids []int
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			target, err := os.Readlink(p + "/exe")
			if err != nil || strings.TrimSuffix(target, " (deleted)") != exe {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(filepath.Base(p), &pid); err == nil {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(100 * time.Millisecond)
	}
}
