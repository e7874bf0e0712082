//go:build !mpi

package mpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
)

// This file is the stand-in, built without the mpi tag: the world comes
// from the launcher's environment and the data goes through the tcp
// backend.

func init() { backend.Register(Name, newStandIn) }

// Init returns this process's place in the MPI world. Built without the
// mpi tag, it reads the launcher's environment and initialises nothing.
func Init(ctx context.Context) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	l, err := parseLaunch(os.Getenv)
	if err != nil {
		return Info{}, err
	}
	return Info{Rank: l.Rank, Size: l.Size, Launcher: l.Vars}, nil
}

// Finalize ends MPI in the process. Built without the mpi tag, it does
// nothing.
func Finalize(ctx context.Context) error { return nil }

// tcpBackend is the backend the stand-in moves data with.
const tcpBackend = "tcp"

func newStandIn(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	tcp, ok := backend.Lookup(tcpBackend)
	if !ok {
		return nil, fmt.Errorf("mpi: group %q: this program was built without the mpi tag, so the mpi backend is a stand-in that moves data with the %s backend, which is not linked in (import _ \"github.com/raygo/raygo/collectives/tcp\", or build with -tags mpi)", cfg.Group, tcpBackend)
	}
	return buildStandIn(ctx, cfg, os.Getenv, tcp)
}

// generations counts the builds of each group name by each rank of each
// launch, so that a group built again under the same name rendezvouses
// afresh.
var generations = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// buildStandIn is newStandIn with the environment and the tcp factory
// passed in.
func buildStandIn(ctx context.Context, cfg backend.Config, get func(string) string, tcp backend.Factory) (backend.Backend, error) {
	o, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	l, lerr := parseLaunch(get)
	switch {
	case lerr == nil:
		if err := checkWorld(&cfg, Info{Rank: l.Rank, Size: l.Size}, l.Vars); err != nil {
			return nil, err
		}
	case errors.Is(lerr, ErrNoLauncher) && cfg.Size > 0 && cfg.Rendezvous != nil:
		// A raygo group outside any MPI launch: its ranks are the group's.
		l.Node, _ = os.Hostname()
	default:
		return nil, fmt.Errorf("mpi: group %q: %w", cfg.Group, lerr)
	}
	if cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return nil, fmt.Errorf("mpi: group %q: rank %d is not in 0..%d", cfg.Group, cfg.Rank, cfg.Size-1)
	}

	rv := cfg.Rendezvous
	var dir *backend.DirRendezvous // nil: the caller's rendezvous
	if rv == nil {
		if l.Key == "" {
			return nil, fmt.Errorf("mpi: group %q: nothing in the environment (%s) names this launch, and the group has no cluster to rendezvous through; set RAYGO_LAUNCH_KEY to the same value in every rank and a new one for every launch (mpiexec -genv RAYGO_LAUNCH_KEY run-$$-$(date +%%s) ...)", cfg.Group, l.Vars)
		}
		base := o.rendezvousDir
		if base == "" {
			base = defaultRendezvousDir()
		}
		name := l.Key + "-" + shortKey(cfg.Group)
		counter := fmt.Sprintf("%s/%d", name, cfg.Rank)
		generations.Lock()
		gen := generations.n[counter]
		generations.n[counter]++
		generations.Unlock()
		d, err := backend.NewDirRendezvous(base, fmt.Sprintf("mpi-%s-%d", name, gen), cfg.Rank, cfg.Size)
		if err != nil {
			return nil, fmt.Errorf("mpi: group %q: %w", cfg.Group, err)
		}
		dir, rv = &d, d
	}

	members := cfg.Members
	if members == nil {
		host, err := pickHost(ctx, o.host, get("RAYGO_INTERFACE"))
		if err != nil {
			return nil, fmt.Errorf("mpi: group %q: %w", cfg.Group, err)
		}
		me, _ := json.Marshal(backend.Member{Rank: cfg.Rank, Node: l.Node, Host: host, Pid: os.Getpid()})
		all, err := rv.Exchange(ctx, Name+".members", me)
		if err != nil {
			abandon(dir)
			return nil, fmt.Errorf("mpi: group %q: rank %d exchanging addresses: %w", cfg.Group, cfg.Rank, err)
		}
		members = make([]backend.Member, cfg.Size)
		for i, b := range all {
			if err := json.Unmarshal(b, &members[i]); err != nil || members[i].Rank != i {
				abandon(dir)
				return nil, fmt.Errorf("mpi: group %q: rank %d published %q, not its member record", cfg.Group, i, b)
			}
		}
	}

	b, err := tcp(ctx, backend.Config{Group: cfg.Group, Rank: cfg.Rank, Size: cfg.Size, Members: members,
		Rendezvous: prefixed{rv, tcpBackend + "."}, Options: o.others})
	if err != nil {
		abandon(dir)
		return nil, fmt.Errorf("mpi: group %q: rank %d: building the %s backend: %w", cfg.Group, cfg.Rank, tcpBackend, err)
	}
	if dir == nil {
		return b, nil
	}
	if err := dir.Finish(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("mpi: group %q: rank %d: %w", cfg.Group, cfg.Rank, err)
	}
	return b, nil
}

// abandon takes back what this rank published in its own rendezvous
// directory, if it made one.
func abandon(dir *backend.DirRendezvous) {
	if dir != nil {
		dir.Abandon()
	}
}

// prefixed puts a prefix before every key of a rendezvous, so that the
// backend it is handed to cannot collide with the stand-in's own keys.
type prefixed struct {
	rv     backend.Rendezvous
	prefix string
}

func (p prefixed) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	return p.rv.Exchange(ctx, p.prefix+key, mine)
}

func (p prefixed) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	return p.rv.Broadcast(ctx, p.prefix+key, root, value)
}

// defaultRendezvousDir is $RAYGO_RENDEZVOUS_DIR, else ~/.raygo/rendezvous
// (as raygo-launch uses), else one under the temporary directory.
func defaultRendezvousDir() string {
	if d := os.Getenv("RAYGO_RENDEZVOUS_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".raygo", "rendezvous")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("raygo-%d", os.Getuid()), "rendezvous")
}
