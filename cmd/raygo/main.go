// Command raygo starts, inspects and stops raygo clusters.
//
//	raygo start --head                  # head and first node on this machine
//	raygo start --address HOST:PORT     # another node joins
//	raygo status --address HOST:PORT    # what the cluster has and does
//	raygo stop --address HOST:PORT      # every node of that cluster exits
//	raygo slurm script --nodes 4 -- ./prog   # a batch script for sbatch
//	raygo microbenchmark [--json]       # Ray's microbenchmark on an embedded cluster
//
// See docs/cli.md.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

func main() {
	if err := newApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "raygo:", err)
		os.Exit(1)
	}
}

// newApp builds the command line. Commands return errors; only main exits.
func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "raygo",
		Usage:           "start, inspect and stop raygo clusters",
		Version:         runtime.Version,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {}, // main reports errors and exits
		Commands:        []*cli.Command{startCommand(), stopCommand(), statusCommand(), slurmCommand(), microbenchmarkCommand(), benchCommand(), versionCommand()},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the raygo release, wire protocol and Go version",
		Action: func(c *cli.Context) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			_, err := fmt.Fprintf(c.App.Writer, "raygo %s (wire protocol v%d, %s)\n", runtime.Version, wire.Version, goVersion)
			return err
		},
	}
}

// usageError keeps flag mistakes short: the error and where to look,
// instead of the whole help text.
func usageError(c *cli.Context, err error, _ bool) error {
	name := c.Command.HelpName // "raygo slurm script" for a subcommand
	if name == "" {
		name = "raygo " + c.Command.Name
	}
	return fmt.Errorf("%w (see `%s --help`)", err, name)
}
