package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/benchmarks/collbench"
	"github.com/raygo/raygo/collectives"
	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/runtime"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:            "bench",
		Usage:           "time raygo subsystems",
		HideHelpCommand: true,
		Subcommands:     []*cli.Command{benchCollectivesCommand()},
	}
}

func benchCollectivesCommand() *cli.Command {
	return &cli.Command{
		Name:  "collectives",
		Usage: "time a collective operation over a range of message sizes",
		Description: "Starts an embedded cluster with one worker process per rank, forms a group and\n" +
			"times the operation at each size as nccl-tests does (warm-up, then about\n" +
			"--min-time of iterations; the slowest rank's mean). busbw is algbw times\n" +
			"2(n-1)/n for allreduce, (n-1)/n for allgather, reduce-scatter, all-to-all,\n" +
			"gather and scatter, and 1 for broadcast and reduce.\n\n" +
			"With --backend mpi, run it under an MPI launcher instead: every process is\n" +
			"one rank (mpirun -np 2 raygo bench collectives --backend mpi ...).\n" +
			"See docs/collectives.md.",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backend", Usage: "shm, tcp, hier, mpi, nccl (default: chosen from where the ranks run)"},
			&cli.IntFlag{Name: "ranks", Value: 2, Usage: "group size"},
			&cli.StringFlag{Name: "op", Value: "allreduce", Usage: strings.Join(collbench.Ops, ", ")},
			&cli.StringFlag{Name: "sizes", Value: "4,4K,64K,1M,16M,64M", Usage: "message sizes in bytes (K, M, G suffixes)"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "float32, float64, int32, int64, uint8, float16, bfloat16"},
			&cli.StringFlag{Name: "redop", Value: "sum", Usage: "sum, prod, min, max, avg"},
			&cli.IntFlag{Name: "iters", Usage: "timed iterations per size (default: about --min-time)"},
			&cli.IntFlag{Name: "warmup", Usage: "warm-up iterations per size (default: a tenth of --min-time)"},
			&cli.DurationFlag{Name: "min-time", Value: 200 * time.Millisecond, Usage: "time each size for about this long"},
			&cli.BoolFlag{Name: "check", Usage: "verify an allreduce's result at each size before timing"},
			&cli.BoolFlag{Name: "json", Usage: `one object per line: {"op":…, "backend":…, "ranks":…, "bytes":…, "time_us":…, "algbw_gbs":…, "busbw_gbs":…}`},
		},
		Action: benchCollectivesAction,
	}
}

func benchCollectivesAction(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("bench collectives takes no arguments (got %q)", c.Args().Slice())
	}
	sizes, err := collbench.ParseSizes(c.String("sizes"))
	if err != nil {
		return fmt.Errorf("--sizes: %w", err)
	}
	dt, err := backend.ParseDType(c.String("dtype"))
	if err != nil {
		return fmt.Errorf("--dtype: %w", err)
	}
	rop, err := backend.ParseOp(c.String("redop"))
	if err != nil {
		return fmt.Errorf("--redop: %w", err)
	}
	o := collbench.Options{Backend: c.String("backend"), Ranks: c.Int("ranks"), Op: c.String("op"), Sizes: sizes,
		DType: dt, Reduce: rop, Iters: c.Int("iters"), Warmup: c.Int("warmup"), MinTime: c.Duration("min-time"), Check: c.Bool("check")}
	if o.Backend != "" {
		if _, ok := backend.Lookup(o.Backend); !ok {
			return fmt.Errorf("--backend %q: have %s", o.Backend, strings.Join(backend.Names(), ", "))
		}
	}
	var rs []collbench.Result
	if o.Backend == collectives.MPI {
		rs, err = benchMPIRank(c, o)
		if rs == nil && err == nil {
			return nil // not rank 0: rank 0 prints
		}
	} else {
		// Always an embedded cluster, whatever RAYGO_ADDRESS says.
		if !raygo.IsWorker() {
			os.Unsetenv(runtime.EnvAddress)
		}
		// Worker processes re-execute this command and serve in Init.
		if err := raygo.Init(c.Context, raygo.NumCPUs(float64(max(o.Ranks, 1)))); err != nil {
			return err
		}
		defer raygo.Shutdown(c.Context)
		rs, err = collbench.Run(c.Context, o)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return collbench.WriteJSON(c.App.Writer, rs)
	}
	collbench.WriteTable(c.App.Writer, o, rs)
	return nil
}
