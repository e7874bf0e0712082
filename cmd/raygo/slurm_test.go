package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/slurm"
)

// TestSlurmScript checks that each flag of `raygo slurm script` reaches
// slurm.Script, that the program's words after -- arrive unchanged, and that
// the result is a shell script bash accepts.
func TestSlurmScript(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		opts  slurm.ScriptOptions
		lines []string // must appear as whole lines
	}{
		{
			name: "every flag",
			args: []string{"--nodes", "4", "--gpus-per-node", "2", "--cpus-per-task", "8", "--mem", "64G",
				"--time", "2:00:00", "--partition", "gpu", "--account", "proj7", "--job-name", "pca",
				"--output", "logs/%x-%j.out", "--", "./pipeline", "--input", "a b", "it's", "$HOME", "--nodes", "9"},
			opts: slurm.ScriptOptions{Nodes: 4, GPUsPerNode: 2, CPUsPerTask: 8, Mem: "64G", Time: "2:00:00",
				Partition: "gpu", Account: "proj7", JobName: "pca", Output: "logs/%x-%j.out",
				Command: []string{"./pipeline", "--input", "a b", "it's", "$HOME", "--nodes", "9"}},
			lines: []string{"#SBATCH --nodes=4", "#SBATCH --gpus-per-node=2", "#SBATCH --cpus-per-task=8",
				"#SBATCH --mem=64G", "#SBATCH --time=2:00:00", "#SBATCH --partition=gpu", "#SBATCH --account=proj7",
				"#SBATCH --job-name=pca", "#SBATCH --output=logs/%x-%j.out",
				`exec srun --cpus-per-task=8 raygo-launch -- ./pipeline --input 'a b' 'it'\''s' '$HOME' --nodes 9`},
		},
		{
			name:  "defaults: one whole node",
			args:  []string{"--", "./prog"},
			opts:  slurm.ScriptOptions{Nodes: 1, Command: []string{"./prog"}},
			lines: []string{"#SBATCH --nodes=1", "#SBATCH --exclusive", "#SBATCH --mem=0", "exec srun raygo-launch -- ./prog"},
		},
		{
			name:  "short job, earlier warning",
			args:  []string{"--time", "10", "--warn-before", "90s", "--", "./prog"},
			opts:  slurm.ScriptOptions{Nodes: 1, Time: "10", WarnBefore: 90 * time.Second, Command: []string{"./prog"}},
			lines: []string{"#SBATCH --time=10", "#SBATCH --signal=B:USR1@90"},
		},
		{
			name: "no warning",
			args: []string{"--time", "2", "--warn-before", "0", "--", "./prog"},
			opts: slurm.ScriptOptions{Nodes: 1, Time: "2", NoWarning: true, Command: []string{"./prog"}},
		},
		{
			name:  "GPU type, no --",
			args:  []string{"--nodes", "2", "--gpus-per-node", "a100:4", "./train", "-epochs", "3"},
			opts:  slurm.ScriptOptions{Nodes: 2, GPUsPerNode: 4, GPUType: "a100", Command: []string{"./train", "-epochs", "3"}},
			lines: []string{"#SBATCH --gpus-per-node=a100:4", "exec srun raygo-launch -- ./train -epochs 3"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"raygo", "slurm", "script"}, c.args...)
			if err := newApp(&stdout, &stderr).Run(args); err != nil {
				t.Fatalf("raygo slurm script: %v\n%s", err, stderr.String())
			}
			want, err := slurm.Script(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := stdout.String()
			if got != want {
				t.Errorf("raygo slurm script %s printed\n%s\nwant slurm.Script(%+v):\n%s", strings.Join(c.args, " "), got, c.opts, want)
			}
			have := map[string]bool{}
			for _, l := range strings.Split(got, "\n") {
				have[l] = true
			}
			for _, l := range c.lines {
				if !have[l] {
					t.Errorf("no line %q in\n%s", l, got)
				}
			}
			if c.opts.NoWarning && strings.Contains(got, "--signal") {
				t.Errorf("--warn-before 0, but the script asks for a signal:\n%s", got)
			}
			if bash, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command(bash, "-n")
				cmd.Stdin = strings.NewReader(got)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("bash -n rejects the script: %v\n%s", err, out)
				}
			}
		})
	}
}

func TestSlurmScriptErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
		bad  bool // the error wraps slurm.ErrBadScriptOptions
	}{
		{[]string{}, "no program", false},
		{[]string{"--nodes", "2"}, "no program", false},
		{[]string{"--gpus-per-node", "four", "--", "./p"}, `--gpus-per-node "four": want N or TYPE:N`, false},
		{[]string{"--gpus-per-node", ":4", "--", "./p"}, `--gpus-per-node ":4"`, false},
		{[]string{"--gpus-per-node", "a100:0", "--", "./p"}, `--gpus-per-node "a100:0"`, false},
		{[]string{"--nodes", "many", "--", "./p"}, `invalid value "many" for flag -nodes`, false},
		{[]string{"--bogus", "--", "./p"}, "(see `raygo slurm script --help`)", false},
		{[]string{"--nodes", "-1", "--", "./p"}, "--nodes", true},
		{[]string{"--time", "0", "--", "./p"}, "zero means no limit", true},
		{[]string{"--time", "1:99", "--", "./p"}, `time limit "1:99"`, true},
		{[]string{"--mem", "3X", "--", "./p"}, "--mem", true},
		{[]string{"--partition", "a b", "--", "./p"}, "--partition", true},
		{[]string{"--job-name", "x'y", "--", "./p"}, "--job-name", true},
		{[]string{"--time", "2", "--", "./p"}, "not shorter than the time limit", true},
		{[]string{"--warn-before", "1.5s", "--", "./p"}, "whole seconds", true},
		{[]string{"--warn-before", "-1s", "--", "./p"}, "--warn-before -1s: may not be negative", false},
	} {
		var stdout, stderr bytes.Buffer
		err := newApp(&stdout, &stderr).Run(append([]string{"raygo", "slurm", "script"}, c.args...))
		switch {
		case err == nil:
			t.Errorf("raygo slurm script %s: no error; printed\n%s", strings.Join(c.args, " "), stdout.String())
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("raygo slurm script %s: error %q, want one containing %q", strings.Join(c.args, " "), err, c.want)
		case errors.Is(err, slurm.ErrBadScriptOptions) != c.bad:
			t.Errorf("raygo slurm script %s: errors.Is(%v, slurm.ErrBadScriptOptions) = %v", strings.Join(c.args, " "), err, !c.bad)
		}
		if err != nil && stdout.Len() > 0 {
			t.Errorf("raygo slurm script %s failed but printed\n%s", strings.Join(c.args, " "), stdout.String())
		}
	}
}
