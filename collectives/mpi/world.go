package mpi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/raygo/raygo/collectives/backend"
)

// Name is the name the backend registers under.
const Name = "mpi"

// ErrFinalized means MPI was finalized in this process (build with the mpi
// tag); it cannot be initialised again.
var ErrFinalized = errors.New("mpi: MPI was finalized in this process")

// Info is this process's place in the MPI world and what MPI it runs.
type Info struct {
	Rank, Size int
	// Launcher names the environment variables that gave the rank and
	// size, such as "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"; empty
	// when only the MPI library knows them.
	Launcher string
	// Library is the first line of the MPI library's version string
	// ("Open MPI v4.1.4, ..."); empty in the stand-in.
	Library string
	// Threading is the thread support MPI provides, such as
	// "MPI_THREAD_FUNNELED"; empty in the stand-in.
	Threading string
}

// options are the backend's settings from Config.Options.
type options struct {
	maxCount      int               // elements per MPI call (build with the mpi tag)
	rendezvousDir string            // directory rendezvous (stand-in)
	host          string            // address this rank is reached at (stand-in)
	others        map[string]string // options for other backends, passed on
}

// defaultMaxCount bounds the elements of one MPI call: MPI counts are C
// ints.
const defaultMaxCount = 1 << 30

func parseOptions(m map[string]string) (options, error) {
	o := options{maxCount: defaultMaxCount, others: map[string]string{}}
	for k, v := range m {
		name, ok := strings.CutPrefix(k, Name+".")
		if !ok {
			o.others[k] = v
			continue
		}
		switch name {
		case "max_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > math.MaxInt32 {
				return options{}, fmt.Errorf("mpi: option %s=%q: want a count of elements from 1 to %d", k, v, math.MaxInt32)
			}
			o.maxCount = n
		case "rendezvous_dir":
			o.rendezvousDir = v
		case "host":
			o.host = v
		default:
			return options{}, fmt.Errorf("mpi: unknown option %q (known: mpi.max_count, mpi.rendezvous_dir, mpi.host)", k)
		}
	}
	return o, nil
}

// checkWorld compares the group's rank and size with the world's. A
// Config with Size 0 asks for the whole world, and gets its rank from it.
func checkWorld(cfg *backend.Config, w Info, from string) error {
	if cfg.Size == 0 && cfg.Members == nil {
		cfg.Rank, cfg.Size = w.Rank, w.Size
		return nil
	}
	if cfg.Rank != w.Rank || cfg.Size != w.Size {
		return fmt.Errorf("mpi: group %q is rank %d of %d, but %s says this process is rank %d of %d: the mpi backend's group is the whole MPI world, with MPI's ranks", cfg.Group, cfg.Rank, cfg.Size, from, w.Rank, w.Size)
	}
	if cfg.Members != nil && len(cfg.Members) != cfg.Size {
		return fmt.Errorf("mpi: group %q of %d ranks lists %d members", cfg.Group, cfg.Size, len(cfg.Members))
	}
	return nil
}

// World returns this process's rank and the size of the MPI world: Init
// without a deadline (MPI_Init_thread cannot be interrupted anyway).
func World() (rank, size int, err error) {
	i, err := Init(context.Background())
	return i.Rank, i.Size, err
}
