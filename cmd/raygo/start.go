package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/resources"
	"github.com/raygo/raygo/runtime/wire"
)

// logName is the detached node's log file, in its state directory.
const logName = "raygo.log"

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start a head node (--head) or a node that joins one (--address)",
		UsageText: "raygo start --head [flags]\nraygo start --address HOST:PORT [flags]",
		Description: "Without --block the node runs in the background: start returns once it is ready,\n" +
			"its output goes to raygo.log in its state directory, and `raygo stop` ends it.",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "head", Usage: "start a new cluster: its head and its first node"},
			&cli.StringFlag{Name: "address", Usage: "join the cluster whose head is at `HOST:PORT`"},
			&cli.StringFlag{Name: "secret-file", EnvVars: []string{"RAYGO_SECRET_FILE"},
				Usage: "with --address: `FILE` holding the cluster secret", DefaultText: "the one 'raygo start --head' wrote on this machine"},
			&cli.StringFlag{Name: "node-ip", Value: "127.0.0.1", Usage: "`IP` address this node listens on; other nodes and drivers must reach it"},
			&cli.IntFlag{Name: "port", Usage: "with --head: the head's `PORT` (0 picks a free one)"},
			&cli.Float64Flag{Name: "num-cpus", Usage: "`N` CPUs this node offers", DefaultText: "detected"},
			&cli.IntFlag{Name: "num-gpus", Usage: "`N` GPUs this node offers", DefaultText: "detected"},
			&cli.StringFlag{Name: "resources", Usage: "custom resources, `NAME=AMOUNT,...` (e.g. ib_port=1,license=0.5)"},
			&cli.Int64Flag{Name: "object-store-memory", Usage: "object store size in `BYTES`", DefaultText: "30% of memory"},
			&cli.IntFlag{Name: "workers", Usage: "`N` shared worker processes per job on this node", DefaultText: "CPUs, at most 4"},
			&cli.StringFlag{Name: "state-dir", Usage: "new or empty `DIR` for the node's socket and log, removed when it stops", DefaultText: "a fresh one in TMPDIR"},
			&cli.BoolFlag{Name: "block", Usage: "run in the foreground until SIGINT/SIGTERM, or until 'raygo stop' stops the cluster"},
			&cli.DurationFlag{Name: "timeout", Value: 15 * time.Second, Usage: "how long the node may take to start"},
			// Set by a detaching start for its background child: the
			// child reports ready (or its error) as JSON on this fd.
			&cli.IntFlag{Name: "ready-fd", Hidden: true},
		},
		Action: startAction,
	}
}

// startOptions are the start command's validated flags.
type startOptions struct {
	head       bool
	address    string // the head to join, without --head
	secretFile string
	nodeIP     string
	port       int
	cpus       float64 // 0: detect
	gpus       int     // -1: detect
	custom     map[string]float64
	storeLimit int64
	workers    int
	stateDir   string
	block      bool
	timeout    time.Duration
	readyFD    int
}

func startAction(c *cli.Context) error {
	o, err := parseStart(c)
	if err != nil {
		return err
	}
	if o.block {
		return runNode(c.Context, o, c.App.Writer)
	}
	return detach(c, o)
}

// parseStart checks every flag before anything starts.
func parseStart(c *cli.Context) (*startOptions, error) {
	if c.Args().Present() {
		return nil, fmt.Errorf("start takes no arguments (got %q)", c.Args().Slice())
	}
	o := &startOptions{
		head: c.Bool("head"), address: c.String("address"), secretFile: c.String("secret-file"),
		nodeIP: c.String("node-ip"), port: c.Int("port"), gpus: -1,
		storeLimit: c.Int64("object-store-memory"), workers: c.Int("workers"),
		stateDir: c.String("state-dir"), block: c.Bool("block"), timeout: c.Duration("timeout"),
		readyFD: c.Int("ready-fd"),
	}
	switch {
	case o.head && o.address != "":
		return nil, errors.New("give --head (start a new cluster) or --address HOST:PORT (join one), not both")
	case !o.head && o.address == "":
		return nil, errors.New("give --head to start a new cluster, or --address HOST:PORT to join one")
	case o.head && o.secretFile != "":
		return nil, errors.New("--secret-file (or RAYGO_SECRET_FILE) is for joining a cluster; `start --head` makes a new secret")
	case !o.head && c.IsSet("port"):
		return nil, errors.New("--port is the head's port and goes with --head; a joining node listens on a free port")
	case o.port < 0 || o.port > 65535:
		return nil, fmt.Errorf("--port %d: want 0 to 65535", o.port)
	}
	if o.address != "" {
		if _, _, err := net.SplitHostPort(o.address); err != nil {
			return nil, fmt.Errorf("--address %q: want HOST:PORT: %w", o.address, err)
		}
	}
	ip := net.ParseIP(o.nodeIP)
	switch {
	case ip == nil:
		return nil, fmt.Errorf("--node-ip %q is not an IP address", o.nodeIP)
	case ip.IsUnspecified():
		return nil, fmt.Errorf("--node-ip %s: give the address other nodes reach this one at, not a wildcard", o.nodeIP)
	}
	if c.IsSet("num-cpus") {
		o.cpus = c.Float64("num-cpus")
		if !(o.cpus > 0) || math.IsInf(o.cpus, 0) {
			return nil, fmt.Errorf("--num-cpus %v: want a number > 0", o.cpus)
		}
	}
	if c.IsSet("num-gpus") {
		if o.gpus = c.Int("num-gpus"); o.gpus < 0 {
			return nil, fmt.Errorf("--num-gpus %d: want 0 or more", o.gpus)
		}
	}
	custom, err := resources.ParseCustom(c.String("resources"))
	if err != nil {
		return nil, fmt.Errorf("--resources: %w", err)
	}
	for _, name := range []string{"CPU", "GPU", "memory"} {
		if _, ok := custom[name]; ok {
			return nil, fmt.Errorf("--resources: %q is not a custom resource; use --num-cpus or --num-gpus (memory is detected)", name)
		}
	}
	o.custom = custom
	switch {
	case o.storeLimit < 0:
		return nil, fmt.Errorf("--object-store-memory %d: want a size in bytes > 0", o.storeLimit)
	case o.workers < 0:
		return nil, fmt.Errorf("--workers %d: want 1 or more", o.workers)
	case o.timeout <= 0:
		return nil, fmt.Errorf("--timeout %v: want a positive duration", o.timeout)
	case o.readyFD != 0 && !o.block:
		return nil, errors.New("--ready-fd is for background nodes started with --block")
	}
	return o, nil
}

// nodeResources is what this node offers: detected, then overridden by flags.
func (o *startOptions) nodeResources(logf func(string, ...any)) (wire.Resources, []string) {
	n, err := resources.Detect(resources.Options{})
	if err != nil {
		logf("resource detection: %v (going on with what was found: %s)", err, n)
	}
	res, gpus := runtime.NodeResources(n)
	for k, v := range o.custom {
		res[k] = v
	}
	if o.cpus > 0 {
		res["CPU"] = o.cpus
	}
	if o.gpus >= 0 {
		if o.gpus <= len(gpus) {
			gpus = gpus[:o.gpus]
		} else {
			logf("--num-gpus %d but %d GPUs detected: the others get device IDs %d to %d", o.gpus, len(gpus), len(gpus), o.gpus-1)
			for i := len(gpus); i < o.gpus; i++ {
				gpus = append(gpus, strconv.Itoa(i))
			}
		}
		delete(res, "GPU")
		if o.gpus > 0 {
			res["GPU"] = float64(o.gpus)
		}
	}
	return res, gpus
}

// readyInfo is what a started node reports: printed for a person, and
// sent as JSON from a background node to the start command that made it.
type readyInfo struct {
	Err        string `json:"error,omitempty"`
	Head       bool   `json:"head"`
	HeadAddr   string `json:"head_addr"`
	ClusterID  string `json:"cluster_id,omitempty"` // head nodes only
	NodeID     uint32 `json:"node_id"`
	NodeAddr   string `json:"node_addr"`
	PID        int    `json:"pid"`
	SecretFile string `json:"secret_file"`
	StateDir   string `json:"state_dir"`
	StoreDir   string `json:"store_dir"`
	Log        string `json:"log,omitempty"`
}

func (r *readyInfo) print(w io.Writer) {
	if r.Head {
		fmt.Fprintf(w, "raygo head node started (pid %d)\n", r.PID)
		fmt.Fprintf(w, "  head address:  %s\n", r.HeadAddr)
		fmt.Fprintf(w, "  cluster:       %s\n", r.ClusterID)
	} else {
		fmt.Fprintf(w, "raygo node %d joined the cluster at %s (pid %d)\n", r.NodeID, r.HeadAddr, r.PID)
	}
	fmt.Fprintf(w, "  node %d:        %s\n", r.NodeID, r.NodeAddr)
	fmt.Fprintf(w, "  object store:  %s\n", r.StoreDir)
	fmt.Fprintf(w, "  secret file:   %s\n", r.SecretFile)
	fmt.Fprintf(w, "  state dir:     %s\n", r.StateDir)
	if r.Log != "" {
		fmt.Fprintf(w, "  log:           %s\n", r.Log)
	}
	fmt.Fprintln(w)
	if r.Head {
		fmt.Fprintf(w, "Add a node:        raygo start --address %s\n", r.HeadAddr)
		fmt.Fprintf(w, "  (from another machine, copy the secret file there, mode 600, and add --secret-file FILE)\n")
		fmt.Fprintf(w, "Run a driver:      RAYGO_ADDRESS=%s ./prog\n", r.HeadAddr)
		fmt.Fprintf(w, "Cluster status:    raygo status --address %s\n", r.HeadAddr)
	}
	fmt.Fprintf(w, "Stop the cluster:  raygo stop --address %s\n", r.HeadAddr)
}

// readyReporter sends a background node's readyInfo, once, to the start
// command waiting for it. With no fd it does nothing.
type readyReporter struct{ f *os.File }

func newReadyReporter(fd int) *readyReporter {
	if fd <= 0 {
		return &readyReporter{}
	}
	syscall.CloseOnExec(fd) // worker processes must not hold it open
	return &readyReporter{f: os.NewFile(uintptr(fd), "ready")}
}

func (r *readyReporter) send(info readyInfo) {
	if r.f == nil {
		return
	}
	json.NewEncoder(r.f).Encode(info)
	r.f.Close()
	r.f = nil
}

// runNode runs a head and its node, or a joining node, in this process
// until a signal, or until the head tells the node to stop. Everything it
// made (state dir, secret file, shared memory) is gone when it returns.
func runNode(parent context.Context, o *startOptions, stdout io.Writer) (err error) {
	ready := newReadyReporter(o.readyFD)
	defer func() {
		if err != nil {
			ready.send(readyInfo{Err: err.Error()})
		}
	}()
	ctx, stopSignals := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	logger := log.New(os.Stderr, fmt.Sprintf("raygo[%d] ", os.Getpid()), log.LstdFlags|log.Lmicroseconds)

	dir, err := prepareStateDir(o.stateDir, o.readyFD > 0)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res, gpus := o.nodeResources(logger.Printf)

	info := readyInfo{Head: o.head, HeadAddr: o.address, PID: os.Getpid(), StateDir: dir}
	if o.readyFD > 0 {
		info.Log = filepath.Join(dir, logName)
	}
	var secret []byte
	var head *runtime.Head
	if o.head {
		if secret, err = runtime.NewSecret(); err != nil {
			return fmt.Errorf("make cluster secret: %w", err)
		}
		info.ClusterID = runtime.NewClusterID()
		listen := net.JoinHostPort(o.nodeIP, strconv.Itoa(o.port))
		if head, err = runtime.NewHead(listen, secret, info.ClusterID, logger.Printf); err != nil {
			return fmt.Errorf("start head on %s: %w", listen, err)
		}
		info.HeadAddr = head.Addr()
		defer head.Stop("head node stopped")
		defer runtime.CleanupSecret(info.HeadAddr)
		if info.SecretFile, err = runtime.WriteSecret(info.HeadAddr, secret); err != nil {
			return fmt.Errorf("store cluster secret: %w", err)
		}
	} else if secret, info.SecretFile, err = clusterSecret(o.address, o.secretFile); err != nil {
		return err
	}

	joinCtx, cancel := context.WithTimeout(ctx, o.timeout)
	agent, err := runtime.StartAgent(joinCtx, runtime.AgentConfig{
		HeadAddr: info.HeadAddr, Secret: secret, ListenAddr: net.JoinHostPort(o.nodeIP, "0"),
		StateDir: filepath.Join(dir, "node"), Resources: res, GPUs: gpus,
		StoreLimit: o.storeLimit, Workers: o.workers, Logf: logger.Printf,
	})
	cancel()
	if err != nil {
		return joinError(info.HeadAddr, info.SecretFile, err)
	}
	defer agent.Stop(5 * time.Second) // before the head stops: deferred calls run last first
	info.NodeID, info.NodeAddr, info.StoreDir = uint32(agent.ID()), agent.Addr(), agent.StoreDir()
	logger.Printf("node %d ready at %s with %s", info.NodeID, info.NodeAddr, formatResources(res))
	info.print(stdout)
	ready.send(info)

	var headDone <-chan struct{}
	if head != nil {
		headDone = head.Done()
	}
	select {
	case <-ctx.Done():
		logger.Printf("stopping: %v", context.Cause(ctx))
	case <-headDone:
		logger.Printf("stopping: the head was asked to stop the cluster")
	case <-agent.Done():
		logger.Printf("stopping: the node agent stopped (the head told it to, or is gone)")
	}
	stopSignals() // from here on, a signal ends the process at once
	return nil
}

// joinError words a failed node start: the head's fault (not there, or
// refusing the secret) or this node's.
func joinError(headAddr, secretFile string, err error) error {
	herr := headError(headAddr, secretFile, err)
	if errors.Is(herr, errUnreachable) || errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrVersion) {
		return herr
	}
	return fmt.Errorf("start node: %w", err)
}

// formatResources is "CPU=2 memory=23.5 GiB ib_port=1", for logs.
func formatResources(r wire.Resources) string {
	var b strings.Builder
	for i, k := range sortedNames(r) {
		if i > 0 {
			b.WriteByte(' ')
		}
		if k == "memory" {
			fmt.Fprintf(&b, "%s=%s", k, formatMemory(r[k]))
		} else {
			fmt.Fprintf(&b, "%s=%s", k, formatAmount(r[k]))
		}
	}
	return b.String()
}

// prepareStateDir makes dir (or a fresh one in TMPDIR) and checks that it
// holds nothing raygo could remove by mistake: the node removes it when it
// stops. A background node's dir already holds its log.
func prepareStateDir(dir string, background bool) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "raygo-node-")
		if err != nil {
			return "", fmt.Errorf("state dir: %w", err)
		}
		return d, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--state-dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("--state-dir: %w", err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("--state-dir: %w", err)
	}
	for _, e := range entries {
		if background && e.Name() == logName {
			continue
		}
		return "", fmt.Errorf("--state-dir %s is not empty (it holds %s); the node removes its state dir when it stops, so give a new or empty one", abs, e.Name())
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return "", fmt.Errorf("--state-dir: %w", err)
	}
	return abs, nil
}

// detach starts this same command again with --block as a background
// process in its own session, its output going to a log file in its state
// dir, and returns once that process says it is ready. The child reports
// on a pipe (its fd 3): one JSON readyInfo, with an error if it failed. If
// it dies first, the pipe closes without a word; if it takes too long, it
// is stopped. Either way nothing is left behind.
func detach(c *cli.Context, o *startOptions) error {
	dir, err := prepareStateDir(o.stateDir, false)
	if err != nil {
		return err
	}
	child, ready, err := spawn(c, dir)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	info, err := awaitReady(child, ready, o.timeout+5*time.Second, filepath.Join(dir, logName))
	ready.Close()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	child.Process.Release()
	info.print(c.App.Writer)
	return nil
}

// spawn starts the background node; it reads the returned pipe.
func spawn(c *cli.Context, dir string) (*exec.Cmd, *os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find the raygo binary to run in the background: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("node log: %w", err)
	}
	defer logFile.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer w.Close() // the child holds its own copy: EOF here means it is gone
	cmd := exec.Command(exe, append([]string{c.Command.Name}, backgroundArgs(c, dir)...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("start background node: %w", err)
	}
	return cmd, r, nil
}

// backgroundArgs repeats the flags this start was given, for the child.
func backgroundArgs(c *cli.Context, dir string) []string {
	var args []string
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		switch name {
		case "block", "state-dir", "ready-fd", "help":
			continue
		}
		if c.IsSet(name) {
			args = append(args, fmt.Sprintf("--%s=%v", name, c.Value(name)))
		}
	}
	return append(args, "--state-dir="+dir, "--block", "--ready-fd=3")
}

// awaitReady reads the child's report, bounded by timeout.
func awaitReady(child *exec.Cmd, ready *os.File, timeout time.Duration, logPath string) (readyInfo, error) {
	type report struct {
		info readyInfo
		err  error
	}
	reports := make(chan report, 1)
	go func() {
		var info readyInfo
		err := json.NewDecoder(ready).Decode(&info)
		reports <- report{info, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-reports:
		switch {
		case r.err != nil:
			exit := waitExit(child, 5*time.Second)
			return readyInfo{}, fmt.Errorf("background node (pid %d) ended before it was ready (%v); its log %s ends:\n%s",
				child.Process.Pid, exit, logPath, logTail(logPath))
		case r.info.Err != "":
			waitExit(child, 5*time.Second)
			return readyInfo{}, errors.New(r.info.Err)
		}
		return r.info, nil
	case <-timer.C:
		tail := logTail(logPath)
		syscall.Kill(-child.Process.Pid, syscall.SIGTERM) // its session: the node and any workers
		waitExit(child, 5*time.Second)
		return readyInfo{}, fmt.Errorf("background node (pid %d) was not ready within %v and was stopped; its log %s ends:\n%s",
			child.Process.Pid, timeout, logPath, tail)
	}
}

// waitExit reaps the child, killing its process group after grace.
func waitExit(child *exec.Cmd, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
		return <-done
	}
}

// logTail is the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}
