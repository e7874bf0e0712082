package slurm

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/script")

var scriptCases = []struct {
	name string
	opts ScriptOptions
}{
	// raygo slurm script --nodes 4 --gpus-per-node 4 --time 1:00:00 -- ./prog args
	{"gpu-nodes", ScriptOptions{Nodes: 4, GPUsPerNode: 4, Time: "1:00:00", Command: []string{"./prog", "args"}}},
	{"minimal", ScriptOptions{Command: []string{"./prog"}}},
	{"everything", ScriptOptions{
		JobName: "train-7b", Nodes: 16, CPUsPerTask: 64, GPUsPerNode: 8, GPUType: "h100", Mem: "500G",
		Time: "2-12:00:00", Partition: "gpu", Account: "proj42", Output: "logs/%x-%j.log",
		WarnBefore: 10 * time.Minute, Launcher: "/opt/raygo/bin/raygo-launch",
		Command: []string{"/home/me/train", "--config", "my config.yaml", "--name=it's", "", "$HOME", "a;b", "*"},
	}},
	{"no-warning", ScriptOptions{Nodes: 2, CPUsPerTask: 8, Time: "30", NoWarning: true, Command: []string{"python3", "-c", `print("hi")`}}},
}

func TestScriptGolden(t *testing.T) {
	for _, tc := range scriptCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "script", tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Script(%+v) =\n%s\nwant (%s)\n%s", tc.opts, got, file, want)
			}
		})
	}
}

func TestScriptDoesNotChangeOptions(t *testing.T) {
	opts := ScriptOptions{Command: []string{"./prog"}}
	if _, err := Script(opts); err != nil {
		t.Fatal(err)
	}
	if opts.JobName != "" || opts.Nodes != 0 {
		t.Errorf("Script changed its argument: %+v", opts)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":              "''",
		"./prog":        "./prog",
		"--lr=0.1":      "--lr=0.1",
		"a b":           "'a b'",
		"it's":          `'it'\''s'`,
		"$HOME":         "'$HOME'",
		"~":             "'~'",
		"a\nb":          "'a\nb'",
		"{a,b}":         "'{a,b}'",
		"héllo":         "'héllo'",
		"user@host:%j,": "user@host:%j,",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseTimeLimit(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30":           30 * time.Minute,
		"90":           90 * time.Minute,
		"30:30":        30*time.Minute + 30*time.Second,
		"90:00":        90 * time.Minute,
		"1:00:00":      time.Hour,
		"100:00:00":    100 * time.Hour,
		"2-0":          48 * time.Hour,
		"2-3:04":       51*time.Hour + 4*time.Minute,
		"2-03:04:05":   51*time.Hour + 4*time.Minute + 5*time.Second,
		"0:01":         time.Second,
		"36500-0":      36500 * 24 * time.Hour,
		"00000001:0:0": time.Hour,
	} {
		got, err := ParseTimeLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseTimeLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "0", "0:00", "0-0", "1:2:3:4", "1-2:3:4:5", "1-25", "1:61", "1:00:61", "1:60:00", "-1", "-5:00",
		" 5", "5 ", "1h", "infinite", "unlimited", "1-", "1--2", "1-2-3", ":", "1::2", "1.5",
		"999999999-0", "9999999999",
	} {
		if got, err := ParseTimeLimit(in); err == nil {
			t.Errorf("ParseTimeLimit(%q) = %v, want an error", in, got)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := ScriptOptions{Command: []string{"./prog"}}
	for _, tc := range []struct {
		edit func(*ScriptOptions)
		want string
	}{
		{func(o *ScriptOptions) { o.Command = nil }, `Command "" (srun): no program to run`},
		{func(o *ScriptOptions) { o.Command = []string{""} }, `Command "" (srun): no program to run`},
		{func(o *ScriptOptions) { o.Command = []string{"a", "b\x00"} }, `arguments may not hold NUL bytes`},
		{func(o *ScriptOptions) { o.Nodes = -1 }, `Nodes "-1" (--nodes): must be at least 1`},
		{func(o *ScriptOptions) { o.CPUsPerTask = -2 }, `CPUsPerTask "-2" (--cpus-per-task)`},
		{func(o *ScriptOptions) { o.GPUsPerNode = -1 }, `GPUsPerNode "-1" (--gpus-per-node)`},
		{func(o *ScriptOptions) { o.GPUType = "a100" }, `GPUType "a100" (--gpus-per-node): needs GPUsPerNode`},
		{func(o *ScriptOptions) { o.GPUType, o.GPUsPerNode = "a100:2", 1 }, `GPUType "a100:2"`},
		{func(o *ScriptOptions) { o.Mem = "64GB" }, `Mem "64GB" (--mem)`},
		{func(o *ScriptOptions) { o.Mem = "G" }, `Mem "G" (--mem)`},
		{func(o *ScriptOptions) { o.Mem = "-1" }, `Mem "-1" (--mem)`},
		{func(o *ScriptOptions) { o.Time = "1:2:3:4" }, `Time (--time): time limit "1:2:3:4": want MM, MM:SS`},
		{func(o *ScriptOptions) { o.Time = "0" }, `zero means no limit`},
		{func(o *ScriptOptions) { o.Time = "2" }, `WarnBefore "2m0s" (--signal): not shorter than the time limit 2`},
		{func(o *ScriptOptions) { o.WarnBefore = 1500 * time.Millisecond }, `WarnBefore "1.5s" (--signal): want whole seconds`},
		{func(o *ScriptOptions) { o.WarnBefore = 20 * time.Hour }, `WarnBefore "20h0m0s"`},
		{func(o *ScriptOptions) { o.WarnBefore = -time.Second }, `WarnBefore "-1s"`},
		{func(o *ScriptOptions) { o.JobName = "my job" }, `JobName "my job" (--job-name): may not hold white space`},
		{func(o *ScriptOptions) { o.Partition = "a\nb" }, `Partition "a\nb" (--partition)`},
		{func(o *ScriptOptions) { o.Account = `x"y` }, `Account "x\"y" (--account)`},
		{func(o *ScriptOptions) { o.Output = `C:\out` }, `Output "C:\\out" (--output)`},
	} {
		o := ok
		tc.edit(&o)
		err := o.Validate()
		if !errors.Is(err, ErrBadScriptOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error with %q", o, err, tc.want)
		}
		if _, err := Script(o); err == nil {
			t.Errorf("Script(%+v) succeeded", o)
		}
	}

	for _, o := range []ScriptOptions{
		{Command: []string{"x"}, NoWarning: true, WarnBefore: -time.Hour, Time: "1"}, // warning off: not checked
		{Command: []string{"x"}, Time: "3"},
		{Command: []string{"x"}, Mem: "0"},
		{Command: []string{"x"}, Mem: "1t"},
		{Command: []string{"x"}, GPUsPerNode: 1, GPUType: "nvidia_a100-80gb.x"},
		{Command: []string{"x"}, WarnBefore: 65535 * time.Second},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	o := ScriptOptions{Nodes: -1, Mem: "x"}
	err := o.Validate()
	for _, want := range []string{"Nodes", "Mem", "Command"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}
