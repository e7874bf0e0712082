package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/benchmarks/micro"
	"github.com/raygo/raygo/runtime"
)

func microbenchmarkCommand() *cli.Command {
	return &cli.Command{
		Name:  "microbenchmark",
		Usage: "run Ray's microbenchmark workloads on an embedded cluster",
		Description: "Runs the workloads of `ray microbenchmark`, under Ray's names, on a cluster\n" +
			"started in this process, each timed as Ray times it: about 1 s of warm-up,\n" +
			"then 4 rounds of about 2 s, reported as ops/s mean +- sd. See docs/benchmarks.md.",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: `print one JSON object per line: {"name":..., "value":..., "sd":..., "unit":...}`},
			&cli.StringFlag{Name: "filter", Usage: "run only the workloads whose name matches this regular expression"},
			&cli.Float64Flag{Name: "duration-scale", Value: 1, Usage: "multiply the warm-up (1 s) and round (2 s) times by this"},
			// The driver process only: it also runs the embedded head and
			// node agent, but tasks and actors run in worker processes.
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write the driver process's CPU profile to this file"},
		},
		Action: microbenchmarkAction,
	}
}

func microbenchmarkAction(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("microbenchmark takes no arguments (got %q)", c.Args().Slice())
	}
	opts := micro.Options{DurationScale: c.Float64("duration-scale")}
	if opts.DurationScale <= 0 {
		return fmt.Errorf("--duration-scale %v: want a positive number", opts.DurationScale)
	}
	if f := c.String("filter"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			return fmt.Errorf("--filter: %w", err)
		}
		opts.Filter = re
		if !slices.ContainsFunc(micro.Names(), re.MatchString) {
			return fmt.Errorf("--filter %q matches no workload (they are: %s)", f, strings.Join(micro.Names(), ", "))
		}
	}
	// Always an embedded cluster, whatever RAYGO_ADDRESS says.
	if !raygo.IsWorker() {
		os.Unsetenv(runtime.EnvAddress)
	}
	// This binary's worker processes are re-executed with the same
	// arguments and come here too: Init serves tasks in them and never
	// returns. Nothing above may have effects a worker should not have.
	if err := raygo.Init(c.Context, micro.InitOptions()...); err != nil {
		return err
	}
	defer raygo.Shutdown(c.Context)

	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	out := c.App.Writer
	enc := json.NewEncoder(out)
	opts.Report = func(r micro.Result) {
		if c.Bool("json") {
			enc.Encode(r)
		} else {
			fmt.Fprintln(out, r)
		}
	}
	_, err := micro.Run(c.Context, opts)
	return err
}
