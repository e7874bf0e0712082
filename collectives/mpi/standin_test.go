//go:build !mpi

package mpi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// fakeTCP records the Config each rank's tcp backend was built from and
// exchanges one value through its rendezvous, as a real one would.
type fakeTCP struct {
	mu   sync.Mutex
	cfgs map[int]backend.Config
	seen map[int][][]byte
}

func (f *fakeTCP) factory(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	all, err := cfg.Rendezvous.Exchange(ctx, "port", []byte(fmt.Sprint(1000+cfg.Rank)))
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfgs[cfg.Rank] = cfg
	f.seen[cfg.Rank] = all
	return stub{}, nil
}

type stub struct{ backend.Backend }

func (stub) Close() error { return nil }

// ompiEnv is the environment mpirun gives rank of size.
func ompiEnv(rank, size int) func(string) string {
	return envOf("OMPI_COMM_WORLD_RANK", fmt.Sprint(rank), "OMPI_COMM_WORLD_SIZE", fmt.Sprint(size),
		"OMPI_MCA_ess_base_jobid", "4242", "RAYGO_INTERFACE", "127.0.0.1")
}

// Ranks started by mpirun, with no members and no rendezvous: they find
// each other through the directory and hand the tcp backend every
// member, a rendezvous of its own and its options; the directory is gone
// afterwards.
func TestStandInFromLauncher(t *testing.T) {
	const size = 3
	base := t.TempDir()
	fake := &fakeTCP{cfgs: map[int]backend.Config{}, seen: map[int][][]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := 0; round < 2; round++ { // the same group again: a fresh rendezvous
		errs := make([]error, size)
		var wg sync.WaitGroup
		for r := 0; r < size; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				opts := map[string]string{"mpi.rendezvous_dir": base, "tcp.chunk": "8", "mpi.max_count": "7"}
				b, err := buildStandIn(ctx, backend.Config{Group: "g/1", Options: opts}, ompiEnv(r, size), fake.factory)
				if err == nil {
					err = b.Close()
				}
				errs[r] = err
			}()
		}
		wg.Wait()
		for r, err := range errs {
			if err != nil {
				t.Fatalf("round %d, rank %d: %v", round, r, err)
			}
		}
		for r := 0; r < size; r++ {
			cfg := fake.cfgs[r]
			if cfg.Group != "g/1" || cfg.Rank != r || cfg.Size != size || len(cfg.Members) != size {
				t.Fatalf("rank %d: tcp got %+v", r, cfg)
			}
			for i, m := range cfg.Members {
				if m.Rank != i || m.Host != "127.0.0.1" || m.Pid != os.Getpid() || m.Node == "" {
					t.Errorf("rank %d: member %d is %+v", r, i, m)
				}
			}
			if len(cfg.Options) != 1 || cfg.Options["tcp.chunk"] != "8" {
				t.Errorf("rank %d: tcp got options %v", r, cfg.Options)
			}
			if got := fmt.Sprintf("%s", fake.seen[r]); got != "[1000 1001 1002]" {
				t.Errorf("rank %d: tcp's exchange gave %s", r, got)
			}
		}
		left, _ := os.ReadDir(base)
		// Rank 0 removes the directory after the others return; give it
		// a moment when it was not last.
		for end := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(end); left, _ = os.ReadDir(base) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(left) > 0 {
			t.Fatalf("round %d left %v in the rendezvous directory", round, left[0].Name())
		}
	}
}

// A raygo group (members and a rendezvous given, no MPI launcher) goes
// to tcp as it is.
func TestStandInPassesGroupThrough(t *testing.T) {
	if _, err := parseLaunch(os.Getenv); err == nil {
		t.Skip("running under an MPI launcher")
	}
	fake := &fakeTCP{cfgs: map[int]backend.Config{}, seen: map[int][][]byte{}}
	factory := func(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
		return buildStandIn(ctx, cfg, os.Getenv, fake.factory)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs, err := backendtest.Group(ctx, factory, 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		b.Close()
	}
	if m := fake.cfgs[1].Members; len(m) != 2 || m[1].Host != "127.0.0.1" || m[1].Pid != 1 {
		t.Fatalf("tcp got members %+v", m)
	}
}

func TestStandInErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fake := &fakeTCP{cfgs: map[int]backend.Config{}, seen: map[int][][]byte{}}
	for _, tc := range []struct {
		name string
		cfg  backend.Config
		env  func(string) string
		want string
	}{
		{"rank disagrees", backend.Config{Group: "g", Rank: 0, Size: 2}, ompiEnv(1, 2),
			"OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE says this process is rank 1 of 2"},
		{"no launcher, no cluster", backend.Config{Group: "g"}, envOf(), "not started by mpirun"},
		{"nothing names the launch", backend.Config{Group: "g"}, envOf("PMI_RANK", "0", "PMI_SIZE", "2", "MPI_LOCALNRANKS", "1"),
			"set RAYGO_LAUNCH_KEY"},
		{"unknown option", backend.Config{Group: "g", Options: map[string]string{"mpi.speed": "max"}}, ompiEnv(0, 1), `unknown option "mpi.speed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildStandIn(ctx, tc.cfg, tc.env, fake.factory)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, ok := backend.Lookup(tcpBackend); !ok {
		_, err := newStandIn(ctx, backend.Config{Group: "g"})
		if err == nil || !strings.Contains(err.Error(), "built without the mpi tag") {
			t.Fatalf("without tcp: %v", err)
		}
	}
}

// A rank that never comes: the others give up when ctx ends, naming it.
func TestStandInNamesMissingRanks(t *testing.T) {
	fake := &fakeTCP{cfgs: map[int]backend.Config{}, seen: map[int][][]byte{}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	opts := map[string]string{"mpi.rendezvous_dir": t.TempDir()}
	_, err := buildStandIn(ctx, backend.Config{Group: "g", Options: opts}, ompiEnv(1, 3), fake.factory)
	var we *backend.WaitError
	if !errors.As(err, &we) || fmt.Sprint(we.Missing) != "[0 2]" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestPickHost(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ option, iface, want string }{
		{"127.0.0.1", "", "127.0.0.1"},
		{"", "127.0.0.1", "127.0.0.1"},
		{"", "lo", "127.0.0.1"},
		{"", "127.0.0.0/8", "127.0.0.1"},
		{"::1", "10.0.0.1", "::1"},
	} {
		got, err := pickHost(ctx, tc.option, tc.iface)
		if err != nil || got != tc.want {
			t.Errorf("pickHost(%q, %q) = %q, %v; want %q", tc.option, tc.iface, got, err, tc.want)
		}
	}
	if _, err := pickHost(ctx, "", "no-such-interface0"); err == nil {
		t.Error("unknown interface accepted")
	}
	if got, err := pickHost(ctx, "", ""); err != nil || got == "" {
		t.Errorf("default: %q, %v", got, err)
	}
}
