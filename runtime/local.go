package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raygo/raygo/runtime/resources"
	"github.com/raygo/raygo/runtime/wire"
)

// NodeResources turns a detected machine into schedulable resources and
// the GPU device IDs to hand out.
func NodeResources(n resources.Node) (wire.Resources, []string) {
	r := wire.Resources{"CPU": n.CPUs, "memory": float64(n.MemoryBytes)}
	var gpus []string
	for _, g := range n.GPUs {
		if g.Index >= 0 {
			gpus = append(gpus, strconv.Itoa(g.Index))
		} else {
			gpus = append(gpus, g.ID())
		}
	}
	if len(gpus) > 0 {
		r["GPU"] = float64(len(gpus))
	}
	for k, v := range n.Custom {
		r[k] = v
	}
	return r, gpus
}

// NewSecret makes a fresh cluster secret.
func NewSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// NewClusterID makes a short random cluster name.
func NewClusterID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Local is an embedded cluster: a head and one node agent in this
// process, with worker processes as children.
type Local struct {
	Head     *Head
	Agent    *Agent
	Secret   []byte
	StateDir string
}

// LocalConfig configures an embedded cluster. Zero values mean: detect.
type LocalConfig struct {
	Resources  wire.Resources // overrides detected amounts
	StoreLimit int64
	SpillLimit int64 // see AgentConfig.SpillLimit
	Workers    int
	Logf       func(string, ...any)
}

// StartLocal starts an embedded cluster on loopback, its state in a fresh
// 0700 directory under TMPDIR.
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	SweepStale(os.TempDir())
	dir, err := os.MkdirTemp("", "raygo-")
	if err != nil {
		return nil, fmt.Errorf("embedded cluster: %w", err)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	id := NewClusterID()
	head, err := NewHead("127.0.0.1:0", secret, id, logf)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The only node lives in this process: if the process stalls (a large
	// copy into fresh memory, a GC pause), it is not dead.
	head.DeadAfter = 0
	node, _ := resources.Detect(resources.Options{})
	res, gpus := NodeResources(node)
	for k, v := range cfg.Resources {
		res[k] = v
	}
	if n := int(res["GPU"]); n != len(gpus) {
		gpus = gpus[:0]
		for i := 0; i < n; i++ {
			gpus = append(gpus, strconv.Itoa(i))
		}
	}
	agent, err := StartAgent(ctx, AgentConfig{HeadAddr: head.Addr(), Secret: secret, StateDir: filepath.Join(dir, "node"),
		Resources: res, GPUs: gpus, StoreLimit: cfg.StoreLimit, SpillLimit: cfg.SpillLimit, Workers: cfg.Workers, Logf: logf,
		Labels: map[string]string{"hostname": hostname()}})
	if err != nil {
		head.Stop("start failed")
		os.RemoveAll(dir)
		return nil, err
	}
	// Record who owns these files, so a later start can remove them if
	// this process is killed before it can.
	owner := fmt.Sprintf("%d %s\n", os.Getpid(), agent.StoreDir())
	os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o600)
	return &Local{Head: head, Agent: agent, Secret: secret, StateDir: dir}, nil
}

const ownerFile = "owner"

// SweepStaleStores removes object stores under dir (raygo-* directories)
// whose agent process no longer exists.
func SweepStaleStores(dir string) { sweepOwned(filepath.Join(dir, "raygo-*")) }

// sweepOwned removes the directories matching pattern whose owner file
// names a process that no longer exists.
func sweepOwned(pattern string) {
	stores, _ := filepath.Glob(pattern)
	for _, d := range stores {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		var pid int
		if n, _ := fmt.Sscanf(string(b), "%d", &pid); n != 1 || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		os.RemoveAll(d)
	}
}

// SweepStale removes the state and shared-memory directories of embedded
// clusters under tmp whose owning process no longer exists (it was killed
// before it could clean up). Directories of live processes, other users'
// and anything without an owner record are left alone.
func SweepStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "raygo-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		var pid int
		var store string
		if n, _ := fmt.Sscanf(string(b), "%d %s", &pid, &store); n < 1 || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running (or not ours to judge)
		}
		if store != "" && strings.Contains(filepath.Base(store), "raygo-") {
			os.RemoveAll(store)
		}
		os.RemoveAll(d)
	}
}

// Stop ends the embedded cluster and removes everything it made.
func (l *Local) Stop() {
	l.Agent.Stop(2 * time.Second)
	l.Head.Stop("embedded cluster stopped")
	os.RemoveAll(l.StateDir)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
