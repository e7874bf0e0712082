package slurm_test

import (
	"errors"
	"fmt"

	"github.com/raygo/raygo/slurm"
)

func ExampleExpand() {
	hosts, err := slurm.Expand("node[001-003,010],gpu-[1-2]")
	if err != nil {
		panic(err)
	}
	fmt.Println(hosts)

	_, err = slurm.Expand("node[5-2]")
	fmt.Println(err)
	// Output:
	// [node001 node002 node003 node010 gpu-1 gpu-2]
	// slurm: bad hostlist "node[5-2]" at byte 5: range "5-2" runs backwards (5 > 2)
}

func ExampleCompress() {
	fmt.Println(slurm.Compress([]string{"node001", "node002", "node003", "node010", "gpu-1", "gpu-2"}))
	// Output:
	// node[001-003,010],gpu-[1-2]
}

func ExampleFromEnv() {
	env := map[string]string{
		"SLURM_JOB_ID":        "4242",
		"SLURM_STEP_ID":       "0",
		"SLURM_STEP_NODELIST": "node[1-2]",
		"SLURM_NNODES":        "2",
		"SLURM_NODEID":        "1",
		"SLURM_PROCID":        "1",
		"SLURM_NTASKS":        "2",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	job, err := slurm.FromEnv(lookup)
	if err != nil {
		panic(err)
	}
	fmt.Println(job.RendezvousKey(), job.Nodes, job.ProcID)

	env["SLURM_NODEID"] = "2"
	_, err = slurm.FromEnv(lookup)
	fmt.Println(err)

	_, err = slurm.FromEnv(func(string) (string, bool) { return "", false })
	fmt.Println(errors.Is(err, slurm.ErrNotInSlurm))
	// Output:
	// 4242.0 [node1 node2] 1
	// slurm: SLURM_NODEID="2" contradicts SLURM_NNODES="2": node ID 2 is not below the 2 nodes
	// true
}

// What `raygo slurm script --nodes 4 --gpus-per-node 4 --time 1:00:00 -- ./prog args` writes.
func ExampleScript() {
	script, err := slurm.Script(slurm.ScriptOptions{
		Nodes:       4,
		GPUsPerNode: 4,
		Time:        "1:00:00",
		Command:     []string{"./prog", "args"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Print(script)
	// Output:
	// #!/bin/bash
	// # raygo batch job, written by `raygo slurm script`. Submit it with: sbatch FILE
	// # sbatch reads the #SBATCH lines up to the first command; options on its
	// # command line override them.
	//
	// # The job's name in squeue and sacct.
	// #SBATCH --job-name=raygo
	// # Nodes for the raygo cluster.
	// #SBATCH --nodes=4
	// # One task per node: raygo-launch, which brings up raygo on its node;
	// # raygo spreads the work over the node's CPUs and GPUs itself.
	// #SBATCH --ntasks-per-node=1
	// # No CPU count given: take whole nodes, so that raygo may use every CPU
	// # and no other job shares them.
	// #SBATCH --exclusive
	// # All of each node's memory, as the job has whole nodes.
	// #SBATCH --mem=0
	// # GPUs on each node.
	// #SBATCH --gpus-per-node=4
	// # Wall-clock limit, 1 hour; Slurm ends the job when it runs out.
	// #SBATCH --time=1:00:00
	// # Output of this script and of every task; %x is the job name, %j the job ID.
	// #SBATCH --output=%x-%j.out
	// # Early warning: SIGUSR1 120 s before the time limit, to this batch shell
	// # only (B:); see below for how it reaches raygo.
	// #SBATCH --signal=B:USR1@120
	//
	// # srun runs raygo-launch once per node; it reads the job's SLURM_* variables,
	// # joins the nodes into one raygo cluster and runs the program.
	// # exec replaces this shell with srun, so the early warning goes to srun,
	// # which passes it on to every raygo-launch. Were bash still here, SIGUSR1
	// # would kill it and end the job early.
	// exec srun raygo-launch -- ./prog args
}

func ExampleParseTimeLimit() {
	for _, s := range []string{"90", "1:30:00", "2-12", "1:75"} {
		d, err := slurm.ParseTimeLimit(s)
		fmt.Println(d, err)
	}
	// Output:
	// 1h30m0s <nil>
	// 1h30m0s <nil>
	// 60h0m0s <nil>
	// 0s time limit "1:75": want MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, with minutes and seconds below 60 and hours after days below 24
}
