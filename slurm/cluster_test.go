package slurm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScriptOnCluster submits a Script to a real Slurm cluster, with a
// stand-in for raygo-launch that records its arguments and environment and
// waits for the early-warning signal. It reads the environments back with
// FromEnv. It takes about a minute, so it is opt-in:
//
//	shared/slurm/start-slurm.sh
//	SLURM_CONF=/tmp/raygo-slurm/etc/slurm.conf RAYGO_SLURM_TEST=1 go test -run OnCluster ./slurm/
//
// It needs 2 nodes with a GPU each, and a temporary directory that the
// nodes share (true of the one-machine test cluster).
func TestScriptOnCluster(t *testing.T) {
	if os.Getenv("RAYGO_SLURM_TEST") != "1" {
		t.Skip("set RAYGO_SLURM_TEST=1 (and SLURM_CONF) to run against a Slurm cluster")
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// No space in this name: the test cluster's proctrack/linuxproc cannot
	// signal a process whose name holds one (the args test quoting instead).
	launcher := filepath.Join(dir, "fake-launch")
	err := os.WriteFile(launcher, []byte(`#!/bin/bash
out="`+dir+`/task-$SLURM_PROCID"
trap 'date +%s.%N > "$out.signal"; exit 0' USR1
date +%s.%N > "$out.start"
printf '%s\n' "$@" > "$out.args"
env > "$out.env"
for i in $(seq 1 240); do sleep 0.5; done
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"./prog", "it's", "a b", "", "$HOME", "*"}
	script, err := Script(ScriptOptions{
		JobName: "raygo-test", Nodes: 2, GPUsPerNode: 1, Time: "1", WarnBefore: 50 * time.Second,
		Output: filepath.Join(dir, "out-%j.txt"), Launcher: launcher, Command: args,
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sbatch", "--parsable", file)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("scancel", id).Run() })

	// Wait for the job to end: the signal makes the stand-in exit.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		state, _ := exec.Command("squeue", "-h", "-j", id, "-o", "%T").Output()
		if len(bytes.TrimSpace(state)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 3 minutes", id, state)
		}
		time.Sleep(time.Second)
	}
	output, _ := os.ReadFile(filepath.Join(dir, "out-"+id+".txt"))

	var keys []string
	var nodes []string
	for rank := range 2 {
		prefix := filepath.Join(dir, fmt.Sprintf("task-%d", rank))
		gotArgs, err := os.ReadFile(prefix + ".args")
		if err != nil {
			t.Fatalf("task %d did not run: %v\njob output:\n%s", rank, err, output)
		}
		if want := append([]string{"--"}, args...); !slices.Equal(strings.Split(strings.TrimSuffix(string(gotArgs), "\n"), "\n"), want) {
			t.Errorf("task %d args = %q, want %q", rank, gotArgs, want)
		}
		if _, err := os.Stat(prefix + ".signal"); err != nil {
			start, _ := os.ReadFile(prefix + ".start")
			t.Errorf("task %d (started %s) got no SIGUSR1 before the time limit\njob output:\n%s", rank, start, output)
		}
		envText, err := os.ReadFile(prefix + ".env")
		if err != nil {
			t.Fatal(err)
		}
		j, err := FromEnv(lookupOf(string(envText)))
		if err != nil {
			t.Fatalf("task %d: FromEnv: %v", rank, err)
		}
		if j.JobID != id || j.ProcID != rank || j.NodeID != rank || j.NumNodes != 2 || j.NTasks != 2 ||
			j.Name != "raygo-test" || j.NodeName != j.Nodes[j.NodeID] || len(j.StepGPUs) != 1 {
			t.Errorf("task %d: FromEnv = %+v", rank, j)
		}
		keys = append(keys, j.RendezvousKey())
		nodes = append(nodes, j.NodeName)
	}
	if keys[0] != keys[1] || nodes[0] == nodes[1] {
		t.Errorf("rendezvous keys %q on nodes %q: want one key, two nodes", keys, nodes)
	}
}
