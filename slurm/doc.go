// Package slurm is what raygo knows about Slurm, the batch system of most
// HPC clusters: its hostlist syntax, the job a process runs in, and batch
// scripts that start raygo on a job's nodes. It runs no Slurm command and
// needs no Slurm library.
//
// Hostlists. Slurm writes sets of nodes compactly, as in
// "node[001-004,010],gpu-[1-2]". Expand lists the hosts of such an
// expression, in the order `scontrol show hostnames` does, and Compress
// writes hosts back as one, like `scontrol show hostlist`, so that
// Expand(Compress(hosts)) is hosts. Expand also takes text after a bracket
// (n[1-3]-ib), which Slurm 22.05 does not, and it refuses expressions of
// more than MaxHosts hosts.
//
// The job. Inside a job, FromEnv reads the SLURM_* variables into a Job:
// IDs, the nodes of the job and of the step, this task's rank and node,
// CPUs, memory and GPUs, and the time limit where Slurm tells it. It checks
// the variables against each other, so a broken environment is an error
// naming the variables at fault rather than a wrong rank. Job.RendezvousKey
// names the step, so that the tasks of one srun can find each other.
//
// Batch scripts. Script writes an sbatch script that runs a program under
// raygo-launch, one task per node, with a comment for each choice. By
// default it takes whole nodes and asks Slurm to send SIGUSR1 two minutes
// before the time limit; the script passes the signal on to raygo-launch
// (see Script for why that takes exec).
//
// Errors wrap ErrBadHostlist (*HostlistError), ErrBadEnv (*EnvError) or
// ErrBadScriptOptions, and FromEnv returns ErrNotInSlurm outside a job.
//
// Concurrency: the package keeps no state; all its functions may be called
// from many goroutines at once.
package slurm
