// Command raygo-launch starts a raygo cluster inside a batch allocation and
// runs the driver program on it. Start one per node:
//
//	#SBATCH -N 4 --ntasks-per-node=1 --cpus-per-task=32 --gpus-per-node=4
//	srun raygo-launch -- ./pipeline --input /scratch/run42
//
// Rank 0 starts the head and a node agent, the other ranks start node
// agents that join it, and once every node has joined rank 0 runs the
// driver with RAYGO_ADDRESS set. When the driver exits the whole cluster
// shuts down and raygo-launch exits with the driver's exit code. Roles come
// from Slurm, mpirun (Open MPI, MPICH/PMI), YARN, Kubernetes indexed jobs,
// or --rank/--world-size by hand. See docs/slurm.md and docs/launch.md.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/raygo/raygo/launcher"
	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/resources"
	"github.com/urfave/cli/v2"
)

func main() {
	code := 0
	app := &cli.App{
		Name:      "raygo-launch",
		Usage:     "start a raygo cluster in a batch allocation and run a driver on it",
		UsageText: "srun raygo-launch [flags] -- ./program [args...]\n   raygo-launch --rank R --world-size N --head HOST:PORT --secret-file F [flags] -- ./program [args...]",
		Version:   runtime.Version,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "rank", Value: -1, Usage: "this process's rank (by hand)"},
			&cli.IntFlag{Name: "world-size", Usage: "number of nodes (by hand)"},
			&cli.StringFlag{Name: "head", EnvVars: []string{"RAYGO_HEAD"}, Usage: "HOST:PORT where rank 0's head listens (by hand, Kubernetes); otherwise it is found through the rendezvous directory"},
			&cli.StringFlag{Name: "key", Usage: "a name for this launch shared by every rank (by hand, with the rendezvous directory)"},
			&cli.StringFlag{Name: "nodes-file", Usage: "a file naming one host per line; rank 0 is the first"},
			&cli.StringFlag{Name: "secret-file", EnvVars: []string{"RAYGO_SECRET_FILE"}, Usage: "with --head: the cluster secret on a shared filesystem (rank 0 creates it)"},
			&cli.StringFlag{Name: "rendezvous-dir", EnvVars: []string{"RAYGO_RENDEZVOUS_DIR"}, Usage: "a directory every rank sees (default ~/.raygo/rendezvous)"},
			&cli.StringFlag{Name: "interface", EnvVars: []string{"RAYGO_INTERFACE"}, Usage: "network interface (ib0), subnet (10.1.0.0/16) or address to listen on"},
			&cli.Float64Flag{Name: "num-cpus", Usage: "CPUs this node offers (default: the allocation's)"},
			&cli.IntFlag{Name: "num-gpus", Value: -1, Usage: "GPUs this node offers (default: the allocation's)"},
			&cli.Int64Flag{Name: "memory", Usage: "memory in bytes this node offers (default: the allocation's)"},
			&cli.StringFlag{Name: "resources", Usage: "custom resources, e.g. license=2,fpga=1"},
			&cli.StringSliceFlag{Name: "label", Usage: "node label key=value (repeatable)"},
			&cli.Int64Flag{Name: "object-store-memory", Usage: "object store limit in bytes (default 30% of memory)"},
			&cli.IntFlag{Name: "workers", Usage: "shared worker processes per node (default: CPUs, at most 4)"},
			&cli.DurationFlag{Name: "join-timeout", Value: 60 * time.Second, Usage: "how long to wait for every node to join"},
			&cli.IntFlag{Name: "min-nodes", Usage: "after the join timeout, go on with at least this many nodes instead of failing"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "after SIGTERM, how long the driver has to finish before it is killed"},
			&cli.BoolFlag{Name: "verbose", Usage: "say what each rank does"},
		},
		Action: func(c *cli.Context) error {
			custom, err := resources.ParseCustom(c.String("resources"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("raygo-launch: --resources: %v", err), launcher.ExitSetup)
			}
			labels := map[string]string{}
			for _, kv := range c.StringSlice("label") {
				k, v, ok := cutKV(kv)
				if !ok {
					return cli.Exit(fmt.Sprintf("raygo-launch: --label %q: want key=value", kv), launcher.ExitSetup)
				}
				labels[k] = v
			}
			code = launcher.Run(context.Background(), launcher.Config{
				Manual: launcher.Manual{Rank: c.Int("rank"), WorldSize: c.Int("world-size"), Head: c.String("head"),
					Key: c.String("key"), NodesFile: c.String("nodes-file")},
				RendezvousDir: c.String("rendezvous-dir"),
				SecretFile:    c.String("secret-file"),
				Interface:     c.String("interface"),
				Resources:     launcher.ResourceFlags{CPUs: c.Float64("num-cpus"), GPUs: c.Int("num-gpus"), Memory: c.Int64("memory"), Custom: custom},
				Labels:        labels,
				StoreLimit:    c.Int64("object-store-memory"),
				Workers:       c.Int("workers"),
				JoinTimeout:   c.Duration("join-timeout"),
				MinNodes:      c.Int("min-nodes"),
				Grace:         c.Duration("grace"),
				Command:       c.Args().Slice(),
				Verbose:       c.Bool("verbose"),
			})
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = launcher.ExitSetup
		}
	}
	os.Exit(code)
}

func cutKV(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
