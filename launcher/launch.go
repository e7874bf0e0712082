package launcher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/resources"
	"github.com/raygo/raygo/runtime/wire"
)

// Config is one raygo-launch invocation.
type Config struct {
	Manual        Manual
	RendezvousDir string // default DefaultRendezvousDir()
	SecretFile    string // with a fixed --head: the shared secret file
	Interface     string // --interface / RAYGO_INTERFACE
	Resources     ResourceFlags
	Labels        map[string]string
	StoreLimit    int64
	Workers       int
	JoinTimeout   time.Duration // how long rank 0 waits for every node (default 60 s)
	MinNodes      int           // go on with this many nodes after JoinTimeout (0: all)
	Grace         time.Duration // after SIGTERM, how long the driver has before the cluster stops (default 10 s)
	Command       []string      // the driver command (rank 0)
	Stdout        io.Writer
	Stderr        io.Writer
	Lookup        func(string) (string, bool) // environment; nil: os.LookupEnv
	Signals       <-chan os.Signal            // nil: SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP of this process
	Verbose       bool
}

// Exit codes of raygo-launch itself (the driver's own code is passed on).
const (
	ExitSetup    = 2   // bad role, flags, environment or rendezvous
	ExitNoJoin   = 3   // nodes did not join in time
	ExitLostHead = 4   // a node lost its head before the driver finished
	ExitNoDriver = 127 // the driver command could not be started
)

type launch struct {
	cfg   Config
	role  Role
	logf  func(string, ...any)
	sigs  <-chan os.Signal
	start time.Time
}

// Run runs one rank of a launch and returns the process exit code: on rank
// 0 the driver's, on the others 0 once the cluster shut down normally.
func Run(ctx context.Context, cfg Config) int {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 60 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.RendezvousDir == "" {
		cfg.RendezvousDir = DefaultRendezvousDir()
	}
	l := &launch{cfg: cfg, start: time.Now()}
	host, _ := os.Hostname()
	l.logf = func(format string, args ...any) {
		fmt.Fprintf(cfg.Stderr, "raygo-launch [%s]: %s\n", host, fmt.Sprintf(format, args...))
	}
	role, err := DetectRole(cfg.Manual, cfg.Lookup)
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	l.role = role
	l.logf = func(format string, args ...any) {
		fmt.Fprintf(cfg.Stderr, "raygo-launch [%s rank %d/%d]: %s\n", host, role.Rank, role.WorldSize, fmt.Sprintf(format, args...))
	}
	sigs := cfg.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	l.sigs = sigs
	if role.Rank == 0 {
		return l.runHead(ctx)
	}
	return l.runNode(ctx)
}

func (l *launch) verbosef(format string, args ...any) {
	if l.cfg.Verbose {
		l.logf(format, args...)
	}
}

// stateDir makes this node's per-job directory: under SLURM_TMPDIR or
// TMPDIR, short (socket paths stay well under 108 bytes), 0700.
func (l *launch) stateDir() (string, error) {
	base := os.TempDir()
	if j := l.role.Slurm; j != nil && j.TmpDir != "" {
		base = j.TmpDir
	}
	d, err := os.MkdirTemp(base, "rgl-")
	if err != nil {
		return "", fmt.Errorf("state dir under %s: %w", base, err)
	}
	if len(filepath.Join(d, "node", "agent.sock")) > 100 {
		os.RemoveAll(d)
		base = "/tmp"
		d, err = os.MkdirTemp(base, "rgl-")
		if err != nil {
			return "", err
		}
	}
	// Record who owns it, and remove what killed launchers left here.
	os.WriteFile(filepath.Join(d, "owner"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	sweepStateDirs(base, d)
	return d, nil
}

// sweepStateDirs removes rgl-* directories under base whose owning
// raygo-launch no longer runs (it was SIGKILLed before it could clean up).
func sweepStateDirs(base, mine string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "rgl-*"))
	for _, d := range dirs {
		if d == mine {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		os.RemoveAll(d)
	}
}

func (l *launch) nodeLabels() map[string]string {
	m := map[string]string{"rank": strconv.Itoa(l.role.Rank)}
	for k, v := range l.role.Labels {
		m[k] = v
	}
	if h, err := os.Hostname(); err == nil {
		m["hostname"] = h
	}
	for k, v := range l.cfg.Labels {
		m[k] = v
	}
	return m
}

func (l *launch) startAgent(ctx context.Context, headAddr string, secret []byte, ip, dir string) (*runtime.Agent, error) {
	det, _ := resources.Detect(resources.Options{})
	res, gpus, err := NodeResources(l.role, l.cfg.Resources, det)
	if err != nil {
		return nil, err
	}
	l.verbosef("resources %v, GPUs %v", res, gpus)
	return runtime.StartAgent(ctx, runtime.AgentConfig{
		HeadAddr:   headAddr,
		Secret:     secret,
		ListenAddr: net.JoinHostPort(ip, "0"),
		StateDir:   filepath.Join(dir, "node"),
		Resources:  res,
		GPUs:       gpus,
		Labels:     l.nodeLabels(),
		StoreLimit: l.cfg.StoreLimit,
		Workers:    l.cfg.Workers,
		Logf:       l.verbosef,
	})
}

// runHead is rank 0: head, agent, rendezvous, wait for every node, driver.
func (l *launch) runHead(ctx context.Context) int {
	if len(l.cfg.Command) == 0 {
		l.logf("no driver command: raygo-launch [flags] -- ./program args")
		return ExitSetup
	}
	driverPath, err := exec.LookPath(l.cfg.Command[0])
	if err != nil {
		l.logf("driver command %q: %v", l.cfg.Command[0], err)
		return ExitNoDriver
	}
	ip, err := NodeIP(l.cfg.Interface, "")
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	listen := net.JoinHostPort(ip, "0")
	var secret []byte
	if l.role.Head != "" {
		_, port, err := net.SplitHostPort(l.role.Head)
		if err != nil {
			l.logf("--head %q: %v", l.role.Head, err)
			return ExitSetup
		}
		listen = net.JoinHostPort(ip, port)
		if secret, err = headModeSecret(l.cfg.SecretFile, true); err != nil {
			l.logf("%v", err)
			return ExitSetup
		}
	} else if secret, err = runtime.NewSecret(); err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	dir, err := l.stateDir()
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	defer os.RemoveAll(dir)
	head, err := runtime.NewHead(listen, secret, runtime.NewClusterID(), func(format string, args ...any) {
		// Joins and leaves only with --verbose; refusals always.
		if strings.Contains(format, "refused") {
			l.logf(format, args...)
		} else {
			l.verbosef(format, args...)
		}
	})
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	defer head.Stop("launch ended")
	agent, err := l.startAgent(ctx, head.Addr(), secret, ip, dir)
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	defer agent.Stop(2 * time.Second)
	rv := Rendezvous{Dir: l.cfg.RendezvousDir, Key: l.role.Key}
	if l.role.Head == "" {
		info := HeadInfo{Addr: head.Addr(), Secret: hex.EncodeToString(secret), Version: buildVersion(),
			Pid: os.Getpid(), Cluster: head.ClusterID()}
		info.Host, _ = os.Hostname()
		if err := rv.Publish(info); err != nil {
			l.logf("%v", err)
			return ExitSetup
		}
		defer rv.Remove()
	}
	l.verbosef("head at %s; waiting for %d nodes", head.Addr(), l.role.WorldSize)
	if code := l.waitForNodes(head); code != 0 {
		return code
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	return l.runDriver(driverPath, head, agent, secretFile)
}

func headModeSecret(file string, create bool) ([]byte, error) {
	if file == "" {
		return nil, errors.New("--head needs --secret-file (or RAYGO_SECRET_FILE) on a filesystem every rank reads: rank 0 creates it, the others read it")
	}
	if create {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			s, err := runtime.NewSecret()
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(file, []byte(hex.EncodeToString(s)+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("secret file: %w", err)
			}
		}
	}
	return runtime.ReadSecret("", file)
}

// waitForNodes blocks until every rank's node joined, or the timeout.
func (l *launch) waitForNodes(head *runtime.Head) int {
	deadline := time.Now().Add(l.cfg.JoinTimeout)
	delay := time.Millisecond
	for {
		nodes := head.Nodes()
		// Count each rank once: a stray agent (another launch that found
		// this head) must not make up for a missing one.
		ranks := map[string]bool{}
		for _, n := range nodes {
			if r := n.Labels["rank"]; n.Alive && r != "" {
				if i, err := strconv.Atoi(r); err == nil && i >= 0 && i < l.role.WorldSize {
					ranks[r] = true
				}
			}
		}
		alive := len(ranks)
		if alive >= l.role.WorldSize {
			l.verbosef("all %d nodes joined in %v", alive, time.Since(l.start).Round(time.Millisecond))
			return 0
		}
		select {
		case s := <-l.sigs:
			if isStop(s) {
				l.logf("got %v while waiting for nodes; stopping", s)
				return 128 + int(s.(syscall.Signal))
			}
			// An early warning before the driver runs has no one to go to.
			l.logf("got %v while waiting for nodes; no driver to pass it to yet", s)
		default:
		}
		if time.Now().After(deadline) {
			missing := l.missing(nodes)
			min := l.cfg.MinNodes
			if min > 0 && alive >= min {
				l.logf("going on with %d of %d nodes after %v; missing: %s", alive, l.role.WorldSize, l.cfg.JoinTimeout, missing)
				return 0
			}
			l.logf("only %d of %d nodes joined within %v; missing: %s", alive, l.role.WorldSize, l.cfg.JoinTimeout, missing)
			return ExitNoJoin
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// missing names the ranks (and hosts) whose node has not joined.
func (l *launch) missing(nodes []wire.NodeInfo) string {
	joined := map[string]bool{}
	for _, n := range nodes {
		if n.Alive {
			joined[n.Labels["rank"]] = true
		}
	}
	var out []string
	for r := 0; r < l.role.WorldSize; r++ {
		if joined[strconv.Itoa(r)] {
			continue
		}
		s := "rank " + strconv.Itoa(r)
		if r < len(l.role.Hosts) {
			s += " (" + l.role.Hosts[r] + ")"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// runDriver runs the driver command and passes signals on: SIGTERM and
// SIGINT ask it to finish (its raygo job context is cancelled) and stop the
// cluster after the grace period; SIGUSR1, SIGUSR2 and SIGHUP are early
// warnings passed through.
func (l *launch) runDriver(path string, head *runtime.Head, agent *runtime.Agent, secretFile string) int {
	cmd := exec.Command(path, l.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(),
		runtime.EnvAddress+"="+head.Addr(),
		"RAYGO_SECRET_FILE="+secretFile,
		"RAYGO_LAUNCH=1",
		"RAYGO_DRIVER_AGENT="+agent.SocketAddr(),
		"RAYGO_WORLD_SIZE="+strconv.Itoa(l.role.WorldSize),
	)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, l.cfg.Stdout, l.cfg.Stderr
	if err := cmd.Start(); err != nil {
		l.logf("start driver %s: %v", path, err)
		return ExitNoDriver
	}
	l.verbosef("driver %s started (pid %d) %v after launch", path, cmd.Process.Pid, time.Since(l.start).Round(time.Millisecond))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var stopAt <-chan time.Time
	for {
		select {
		case err := <-exited:
			code := exitCode(cmd, err)
			l.verbosef("driver exited with %d; stopping the cluster", code)
			head.Stop("the driver exited")
			return code
		case s := <-l.sigs:
			cmd.Process.Signal(s)
			switch {
			case isStop(s):
				if stopAt == nil {
					l.logf("got %v: the driver has %v to finish", s, l.cfg.Grace)
					stopAt = time.After(l.cfg.Grace)
				}
			default:
				l.verbosef("passed %v to the driver", s)
			}
		case <-stopAt:
			l.logf("driver still running after %v; killing it", l.cfg.Grace)
			cmd.Process.Kill()
		case <-agent.Done():
			l.logf("this node's agent stopped (%s); killing the driver", agent.StopReason())
			cmd.Process.Kill()
			<-exited
			return ExitLostHead
		}
	}
}

func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// runNode is every other rank: find the head, run a node agent until the
// cluster shuts down.
func (l *launch) runNode(ctx context.Context) int {
	var info HeadInfo
	lookupCtx, cancel := context.WithTimeout(ctx, l.cfg.JoinTimeout)
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		// SIGTERM or SIGINT while waiting for rank 0 ends the wait.
		defer close(watched)
		for {
			select {
			case s := <-l.sigs:
				if isStop(s) {
					cancel()
					return
				}
			case <-stopWatch:
				return
			}
		}
	}()
	endLookup := func() {
		close(stopWatch)
		<-watched
		cancel()
	}
	if l.role.Head != "" {
		secret, err := l.waitSecret(lookupCtx)
		if err == nil {
			info = HeadInfo{Addr: l.role.Head, Secret: hex.EncodeToString(secret), Version: buildVersion()}
			err = l.waitHead(lookupCtx, info)
		}
		endLookup()
		if err != nil {
			l.logf("%v", err)
			return ExitSetup
		}
	} else {
		rv := Rendezvous{Dir: l.cfg.RendezvousDir, Key: l.role.Key}
		var err error
		info, err = rv.Lookup(lookupCtx, func(h HeadInfo) error {
			if h.Version != buildVersion() {
				err := fmt.Errorf("version mismatch: rank 0 (%s) runs raygo-launch %s, this node runs %s", h.Host, h.Version, buildVersion())
				if l.probe(lookupCtx, h) == nil {
					// The head is live: this is this launch, and it cannot work.
					return fmt.Errorf("%w: %v", ErrFinal, err)
				}
				return err
			}
			return l.probe(lookupCtx, h)
		})
		endLookup()
		if err != nil {
			l.logf("%v", err)
			return ExitSetup
		}
	}
	secret, err := info.SecretBytes()
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	ip, err := NodeIP(l.cfg.Interface, info.Addr)
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	dir, err := l.stateDir()
	if err != nil {
		l.logf("%v", err)
		return ExitSetup
	}
	defer os.RemoveAll(dir)
	agent, err := l.startAgent(ctx, info.Addr, secret, ip, dir)
	if err != nil {
		l.logf("join %s: %v", info.Addr, err)
		return ExitSetup
	}
	l.verbosef("joined %s as node %d", info.Addr, agent.ID())
	// The batch system (scancel, mpirun, Kubernetes) sends SIGTERM to
	// every rank at once, while the driver on rank 0 gets --grace to
	// checkpoint, which may need this node: keep serving until rank 0
	// stops the cluster, for at most the grace period and a margin. A
	// second SIGTERM or SIGINT stops this node at once.
	var stopAt <-chan time.Time
	for {
		select {
		case <-agent.Done():
			why := agent.StopReason()
			if why == "shutdown" {
				return 0
			}
			l.logf("node agent stopped: %s", why)
			return ExitLostHead
		case s := <-l.sigs:
			if !isStop(s) {
				continue
			}
			if stopAt != nil {
				l.logf("got %v again: stopping this node", s)
				agent.Stop(2 * time.Second)
				return 0
			}
			wait := l.cfg.Grace + nodeStopMargin
			l.logf("got %v: serving until rank 0 stops the cluster (at most %v; send it again to stop now)", s, wait)
			stopAt = time.After(wait)
		case <-stopAt:
			l.logf("rank 0 did not stop the cluster in time; stopping this node")
			agent.Stop(2 * time.Second)
			return 0
		}
	}
}

// buildVersion names the release and wire protocol: ranks must agree on both.
func buildVersion() string {
	return runtime.Version + "+wire" + strconv.Itoa(int(wire.Version))
}

// nodeStopMargin is how much longer than --grace a node other than rank 0
// serves after SIGTERM: rank 0 stops the cluster once the driver exits or
// is killed at the end of its grace period.
const nodeStopMargin = 5 * time.Second

// isStop says whether s asks the launch to stop (the others are early
// warnings for the driver).
func isStop(s os.Signal) bool { return s == syscall.SIGTERM || s == syscall.SIGINT }

// probe checks a published head answers with the published secret, so a
// stale file from an earlier launch is not taken for this one.
func (l *launch) probe(ctx context.Context, h HeadInfo) error {
	secret, err := h.SecretBytes()
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := runtime.HeadRequest(pctx, h.Addr, secret, wire.OpStatus, nil); err != nil {
		return fmt.Errorf("head %s from the rendezvous file does not answer: %w", h.Addr, err)
	}
	return nil
}

func (l *launch) waitSecret(ctx context.Context) ([]byte, error) {
	for {
		s, err := headModeSecret(l.cfg.SecretFile, false)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the secret file: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *launch) waitHead(ctx context.Context, info HeadInfo) error {
	var last error
	for {
		if last = l.probe(ctx, info); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("head %s did not answer in time: %v", info.Addr, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
