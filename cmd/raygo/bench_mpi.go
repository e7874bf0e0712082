package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/benchmarks/collbench"
	"github.com/raygo/raygo/collectives"
	"github.com/raygo/raygo/collectives/mpi"
)

// benchMPIRank runs this process as one rank of an MPI world; rank 0
// returns the results, the others nil.
func benchMPIRank(c *cli.Context, o collbench.Options) ([]collbench.Result, error) {
	rank, size, err := mpi.World()
	if err != nil {
		return nil, fmt.Errorf("--backend mpi: %w", err)
	}
	if c.IsSet("ranks") && o.Ranks != size {
		return nil, fmt.Errorf("--ranks %d, but the MPI world has %d ranks", o.Ranks, size)
	}
	o.Ranks = size
	// Deferred first so that it runs last: MPI ends after the group.
	defer mpi.Finalize(context.WithoutCancel(c.Context))
	g, err := collectives.Join(c.Context, "bench", rank, size, collectives.WithBackend(collectives.MPI))
	if err != nil {
		return nil, err
	}
	defer g.Destroy(c.Context)
	rs, err := collbench.RunRank(c.Context, g, o)
	if err != nil || rank != 0 {
		return nil, err
	}
	return rs, nil
}
