package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime"
)

// TestFlagErrors runs the command in this process: every case fails
// before anything starts, with an error naming what was wrong.
func TestFlagErrors(t *testing.T) {
	t.Setenv(runtime.EnvAddress, "")
	t.Setenv("RAYGO_SECRET_FILE", "")
	dir := t.TempDir()
	goodSecret := writeSecret(t, filepath.Join(dir, "good"), 0o600)
	openSecret := writeSecret(t, filepath.Join(dir, "open"), 0o644)
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "precious"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"start"}, "give --head to start a new cluster, or --address"},
		{[]string{"start", "--head", "--address", "127.0.0.1:1"}, "not both"},
		{[]string{"start", "--head", "--resources", "ib=1,foo"}, `custom resource "foo": want name=amount`},
		{[]string{"start", "--head", "--resources", "ib=-1"}, `custom resource "ib=-1"`},
		{[]string{"start", "--head", "--resources", "CPU=4"}, `"CPU" is not a custom resource`},
		{[]string{"start", "--head", "--node-ip", "0.0.0.0"}, "not a wildcard"},
		{[]string{"start", "--head", "--node-ip", "node7"}, `--node-ip "node7" is not an IP address`},
		{[]string{"start", "--head", "--num-cpus", "0"}, "--num-cpus 0"},
		{[]string{"start", "--head", "--num-cpus", "many"}, "invalid value \"many\" for flag -num-cpus"},
		{[]string{"start", "--head", "--secret-file", goodSecret}, "makes a new secret"},
		{[]string{"start", "--address", "127.0.0.1:1", "--port", "5"}, "--port is the head's port"},
		{[]string{"start", "--address", "nowhere"}, `--address "nowhere": want HOST:PORT`},
		{[]string{"start", "--head", "--state-dir", full}, "is not empty (it holds precious)"},
		{[]string{"status"}, "no head address"},
		{[]string{"status", "--address", "127.0.0.1:1", "--secret-file", filepath.Join(dir, "missing")}, "cluster secret: stat " + filepath.Join(dir, "missing")},
		{[]string{"status", "--address", "127.0.0.1:1", "--secret-file", openSecret}, "readable by others"},
		{[]string{"status", "--address", "127.0.0.1:1", "--secret-file", goodSecret}, "head 127.0.0.1:1 is not reachable"},
		{[]string{"stop", "--address", "127.0.0.1:1", "--secret-file", goodSecret}, "head 127.0.0.1:1 is not reachable"},
		{[]string{"microbenchmark", "--duration-scale", "0"}, "--duration-scale 0: want a positive number"},
		{[]string{"microbenchmark", "--filter", "("}, "--filter: error parsing regexp"},
		{[]string{"microbenchmark", "--filter", "^nothing$"}, `--filter "^nothing$" matches no workload (they are: single_client_get_calls_Plasma_Store, `},
		{[]string{"microbenchmark", "extra"}, "microbenchmark takes no arguments"},
	} {
		var stdout, stderr bytes.Buffer
		err := newApp(&stdout, &stderr).Run(append([]string{"raygo"}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("raygo %s: got error %v, want one containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(full, "precious")); err != nil {
		t.Errorf("a refused --state-dir was touched: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if err := newApp(&stdout, &stdout).Run([]string{"raygo", "version"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout.String(), "raygo "+runtime.Version+" ") {
		t.Errorf("version printed %q", stdout.String())
	}
}

// TestCluster runs a three-node cluster from the command line, as a person
// would: a head on 127.0.0.1 and nodes on 127.0.0.2 and 127.0.0.3, each a
// `raygo start --block` process; a driver joins it; `raygo stop` ends it
// and every process and file it made goes away.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts a cluster")
	}
	bin := build(t, ".", "../../examples/quickstart")
	raygo, quickstart := filepath.Join(bin, "raygo"), filepath.Join(bin, "quickstart")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the head stores the secret, for this test alone
	t.Setenv(runtime.EnvAddress, "")
	t.Setenv("RAYGO_SECRET_FILE", "")

	common := []string{"--num-cpus", "2", "--object-store-memory", "67108864", "--workers", "2"}
	head := startBlocking(t, raygo, filepath.Join(tmp, "n1"), nil,
		append([]string{"--head", "--node-ip", "127.0.0.1", "--port", "0"}, common...)...)
	addr := head.waitFor(t, regexp.MustCompile(`head address:\s+(\S+)`), 15*time.Second)
	secretFile := filepath.Join(runtime.ClusterDir(addr), "secret")
	secretText, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatalf("head wrote no secret file: %v", err)
	}
	// Node 2 finds the secret through RAYGO_SECRET_FILE, node 3 through the flag.
	n2 := startBlocking(t, raygo, filepath.Join(tmp, "n2"), []string{"RAYGO_SECRET_FILE=" + secretFile},
		append([]string{"--address", addr, "--node-ip", "127.0.0.2", "--resources", "ib_port=1"}, common...)...)
	n3 := startBlocking(t, raygo, filepath.Join(tmp, "n3"), nil,
		append([]string{"--address", addr, "--node-ip", "127.0.0.3", "--secret-file", secretFile}, common...)...)
	nodes := []*proc{head, n2, n3}

	st := waitAlive(t, raygo, addr, 3, 20*time.Second)
	// Nodes 2 and 3 join in either order.
	byIP := map[string]nodeStatus{}
	for _, n := range st.Nodes {
		byIP[strings.Split(n.Address, ":")[0]] = n
	}
	for ip, ib := range map[string]float64{"127.0.0.1": 0, "127.0.0.2": 1, "127.0.0.3": 0} {
		if n := byIP[ip]; n.Total["CPU"] != 2 || n.Total["ib_port"] != ib {
			t.Errorf("node on %s: %+v; want 2 CPUs, ib_port %v", ip, n, ib)
		}
	}
	if st.Nodes[0].Address != head.waitFor(t, regexp.MustCompile(`node 1:\s+(\S+)`), time.Second) {
		t.Errorf("node 1 is not the head's node: %+v", st.Nodes[0])
	}
	table := mustRun(t, raygo, "status", "--address", addr)
	if !strings.Contains(table, "3 nodes (3 alive)") || !strings.Contains(table, "ib_port=0/1") {
		t.Errorf("status table:\n%s", table)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	driver := exec.CommandContext(ctx, quickstart)
	driver.Env = append(os.Environ(), runtime.EnvAddress+"="+addr)
	// A driver that hangs dumps its goroutines into the failure message.
	driver.Cancel = func() error { return driver.Process.Signal(syscall.SIGQUIT) }
	driver.WaitDelay = 5 * time.Second
	out, err := driver.CombinedOutput()
	if err != nil {
		status, _ := exec.Command(raygo, "status", "--address", addr).CombinedOutput()
		t.Fatalf("quickstart on the cluster: %v\n%s\ncluster then:\n%s", err, out, status)
	}
	for _, want := range []string{"squares: [0 1 4 9 16 25 36 49 64 81]", "sum of squares: 285", "counter: 110"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out)
		}
	}

	wrong := writeSecret(t, filepath.Join(tmp, "wrong-secret"), 0o600)
	out, err = exec.Command(raygo, "status", "--address", addr, "--secret-file", wrong).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused authentication") {
		t.Errorf("status with a wrong secret: %v\n%s", err, out)
	}

	stopped := mustRun(t, raygo, "stop", "--address", addr)
	if !strings.Contains(stopped, "asked cluster "+st.ClusterID) {
		t.Errorf("stop said:\n%s", stopped)
	}
	for _, n := range nodes {
		n.waitExit(t, 10*time.Second)
	}
	for _, n := range nodes {
		if _, err := os.Stat(n.stateDir); !os.IsNotExist(err) {
			t.Errorf("state dir %s left behind (%v)", n.stateDir, err)
		}
		if bytes.Contains(n.out.bytes(), bytes.TrimSpace(secretText)) {
			t.Errorf("%s printed the cluster secret", n.name)
		}
	}
	shm, _ := filepath.Glob(filepath.Join(filepath.Dir(objstore.DefaultDir("x", "1")), "raygo-"+st.ClusterID+"-*"))
	if len(shm) > 0 {
		t.Errorf("object stores left behind: %v", shm)
	}
	if _, err := os.Stat(runtime.ClusterDir(addr)); !os.IsNotExist(err) {
		t.Errorf("secret dir %s left behind (%v)", runtime.ClusterDir(addr), err)
	}
}

// TestDetached starts a head in the background, uses it at once (start
// returns only when it is ready), and stops it.
func TestDetached(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and starts a cluster")
	}
	raygo := filepath.Join(build(t, "."), "raygo")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv(runtime.EnvAddress, "")
	t.Setenv("RAYGO_SECRET_FILE", "")

	// A node that cannot join says why, and leaves nothing behind.
	secret := writeSecret(t, filepath.Join(tmp, "secret"), 0o600)
	failDir := filepath.Join(tmp, "fail")
	out, err := exec.Command(raygo, "start", "--address", "127.0.0.1:1", "--secret-file", secret, "--state-dir", failDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "head 127.0.0.1:1 is not reachable") {
		t.Errorf("start joining nothing: %v\n%s", err, out)
	}
	if _, err := os.Stat(failDir); !os.IsNotExist(err) {
		t.Errorf("failed start left %s (%v)", failDir, err)
	}

	stateDir := filepath.Join(tmp, "head")
	started := mustRun(t, raygo, "start", "--head", "--num-cpus", "1", "--object-store-memory", "33554432", "--state-dir", stateDir)
	addr := match(t, started, `head address:\s+(\S+)`)
	pid, _ := strconv.Atoi(match(t, started, `\(pid (\d+)\)`))
	t.Cleanup(func() { killPID(pid) })
	if sid := sessionOf(pid); sid != pid {
		t.Errorf("background node %d is in session %d, want its own", pid, sid)
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(mustRun(t, raygo, "status", "--address", addr, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 1 || !st.Nodes[0].Alive {
		t.Fatalf("right after start: %+v, want one live node", st)
	}
	log, err := os.ReadFile(filepath.Join(stateDir, logName))
	if err != nil || !strings.Contains(string(log), "node 1 ready") {
		t.Errorf("log %s: %v\n%s", filepath.Join(stateDir, logName), err, log)
	}

	mustRun(t, raygo, "stop", "--address", addr)
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background node %d still runs 10s after stop", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []string{stateDir, runtime.ClusterDir(addr)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}

// build compiles packages (relative to this directory) into a temp dir.
func build(t *testing.T, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	return dir
}

func writeSecret(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	if err := os.WriteFile(path, fmt.Appendf(nil, "%x\n", b), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("raygo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func match(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	return m[1]
}

// waitAlive polls `raygo status --json` until n nodes are alive.
func waitAlive(t *testing.T, raygo, addr string, n int, timeout time.Duration) clusterStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st clusterStatus
		out, err := exec.Command(raygo, "status", "--address", addr, "--json").Output()
		if err == nil {
			err = json.Unmarshal(out, &st)
		}
		alive := 0
		for _, node := range st.Nodes {
			if node.Alive {
				alive++
			}
		}
		if err == nil && alive == n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes alive after %v (%v):\n%s", alive, n, timeout, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proc is a `raygo start --block` process this test started.
type proc struct {
	name     string
	stateDir string
	cmd      *exec.Cmd
	out      *output
	exited   chan struct{}
	err      error // once exited is closed
}

func startBlocking(t *testing.T, raygo, stateDir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(stateDir), stateDir: stateDir, out: newOutput(), exited: make(chan struct{})}
	p.cmd = exec.Command(raygo, append([]string{"start", "--block", "--state-dir", stateDir}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %s (%v):\n%s", p.name, p.err, p.out.bytes())
		}
	})
	return p
}

// stop ends the process if it still runs: SIGTERM, then SIGKILL.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%s exited with %v", p.name, p.err)
		}
	case <-time.After(timeout):
		t.Errorf("%s still runs %v after the cluster was stopped", p.name, timeout)
	}
}

// waitFor waits until the process printed a match of re and returns its
// first group.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		changed := p.out.changed()
		if m := re.FindSubmatch(p.out.bytes()); m != nil {
			return string(m[1])
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("%s exited (%v) before printing %s:\n%s", p.name, p.err, re, p.out.bytes())
		case <-deadline:
			t.Fatalf("%s did not print %s within %v:\n%s", p.name, re, timeout, p.out.bytes())
		}
	}
}

// output collects a process's output and says when more arrives.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func newOutput() *output { return &output{more: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	close(o.more)
	o.more = make(chan struct{})
	return len(b), nil
}

func (o *output) bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.buf.Bytes()...)
}

func (o *output) changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.more
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// sessionOf is pid's session ID, from /proc; -1 if unknown.
func sessionOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// After "pid (comm)": state ppid pgrp session ...
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 4 {
		return -1
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// killPID ends a background node this test started, if it still runs.
func killPID(pid int) {
	if pid <= 0 || !running(pid) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && running(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if running(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestMicrobenchmark runs a few workloads of `raygo microbenchmark` from the
// built binary, whose worker processes are that binary re-executed with the
// same arguments: tasks, actors, tasks that call actors and placement
// groups must all work there.
func TestMicrobenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a cluster")
	}
	raygo := filepath.Join(build(t, "."), "raygo")
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv(runtime.EnvAddress, "127.0.0.1:1") // ignored: the command starts its own cluster
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := []string{"single_client_tasks_sync", "1_1_actor_calls_sync", "n_n_actor_calls_async", "placement_group_create/removal"}
	cmd := exec.CommandContext(ctx, raygo, "microbenchmark", "--json", "--duration-scale", "0.001",
		"--filter", "^("+strings.Join(want, "|")+")$")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("raygo microbenchmark: %v\n%s", err, stderr.Bytes())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Name  string
			Value float64
			SD    *float64
			Unit  string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if !(r.Value > 0) || r.SD == nil || r.Unit == "" {
			t.Errorf("line %q: want a positive value, an sd and a unit", line)
		}
		got = append(got, r.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("results for %v, want %v", got, want)
	}
}
