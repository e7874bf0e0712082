package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/slurm"
)

func slurmCommand() *cli.Command {
	return &cli.Command{
		Name:            "slurm",
		Usage:           "helpers for running raygo under Slurm",
		HideHelpCommand: true,
		Subcommands:     []*cli.Command{slurmScriptCommand()},
	}
}

func slurmScriptCommand() *cli.Command {
	return &cli.Command{
		Name:      "script",
		Usage:     "print a batch script that runs a program on a raygo cluster of Slurm nodes",
		ArgsUsage: "-- PROGRAM [ARGS...]",
		Description: "The script asks for the nodes, runs one raygo-launch per node with srun, and asks\n" +
			"Slurm for SIGUSR1 --warn-before the time limit (raygo.Notices). Submit it with sbatch;\n" +
			"options on sbatch's command line override its #SBATCH lines. See docs/slurm.md.\n\n" +
			"   raygo slurm script --nodes 4 --gpus-per-node 4 --time 2:00:00 -- ./train --epochs 10 > train.sbatch",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 1, Usage: "`N` nodes"},
			&cli.StringFlag{Name: "gpus-per-node", Usage: "GPUs on each node: `N` or TYPE:N (a100:4)", DefaultText: "none"},
			&cli.IntFlag{Name: "cpus-per-task", Usage: "`N` CPUs for raygo on each node", DefaultText: "whole nodes (--exclusive)"},
			&cli.StringFlag{Name: "mem", Usage: "memory per node, `SIZE` in MiB or with a suffix K, M, G, T", DefaultText: "all of it with whole nodes, else the site's default"},
			&cli.StringFlag{Name: "time", Usage: "time limit, `LIMIT` as MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", DefaultText: "the partition's"},
			&cli.StringFlag{Name: "partition", Usage: "`PARTITION` to run in", DefaultText: "the site's default"},
			&cli.StringFlag{Name: "account", Usage: "`ACCOUNT` to charge", DefaultText: "the user's default"},
			&cli.StringFlag{Name: "job-name", Usage: "job `NAME`", DefaultText: slurm.DefaultJobName},
			&cli.StringFlag{Name: "output", Usage: "output `FILE` (%x job name, %j job ID)", DefaultText: slurm.DefaultOutput},
			&cli.DurationFlag{Name: "warn-before", Value: slurm.DefaultWarnBefore,
				Usage: "SIGUSR1 this `LONG` before the time limit, in whole seconds; 0 for none"},
		},
		Action: slurmScriptAction,
	}
}

func slurmScriptAction(c *cli.Context) error {
	if !c.Args().Present() {
		return fmt.Errorf("no program: give it after the flags and `--`, e.g. raygo slurm script --nodes 2 -- ./prog --input data (see `raygo slurm script --help`)")
	}
	gpus, gpuType, err := parseGPUsPerNode(c.String("gpus-per-node"))
	if err != nil {
		return err
	}
	warn := c.Duration("warn-before")
	if warn < 0 {
		return fmt.Errorf("--warn-before %v: may not be negative (0 for no warning)", warn)
	}
	script, err := slurm.Script(slurm.ScriptOptions{
		JobName:     c.String("job-name"),
		Nodes:       c.Int("nodes"),
		CPUsPerTask: c.Int("cpus-per-task"),
		GPUsPerNode: gpus,
		GPUType:     gpuType,
		Mem:         c.String("mem"),
		Time:        c.String("time"),
		Partition:   c.String("partition"),
		Account:     c.String("account"),
		Output:      c.String("output"),
		WarnBefore:  warn,
		NoWarning:   warn == 0,
		Command:     c.Args().Slice(),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(c.App.Writer, script)
	return err
}

// parseGPUsPerNode reads --gpus-per-node as sbatch writes it: "4" or
// "a100:4". "" is none.
func parseGPUsPerNode(s string) (int, string, error) {
	if s == "" {
		return 0, "", nil
	}
	typ, count := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		typ, count = s[:i], s[i+1:]
		if typ == "" {
			return 0, "", fmt.Errorf("--gpus-per-node %q: want N or TYPE:N (e.g. 4 or a100:4)", s)
		}
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return 0, "", fmt.Errorf("--gpus-per-node %q: want N or TYPE:N with N at least 1 (e.g. 4 or a100:4)", s)
	}
	return n, typ, nil
}
