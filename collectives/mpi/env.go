package mpi

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
)

// ErrNoLauncher means the environment names no MPI launcher: the process
// was not started by mpirun, mpiexec or srun.
var ErrNoLauncher = errors.New("mpi: not started by mpirun, mpiexec or srun: none of OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK or SLURM_PROCID (in a job step) is set")

// launch is what the launcher's environment says about this process.
type launch struct {
	// Vars names the variables that gave the rank and size, such as
	// "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE".
	Vars       string
	Rank, Size int
	// Key names this launch: the same in every rank of it and different
	// in every other launch. Empty when the environment has no such name.
	Key string
	// Node is the name of this process's node (SLURMD_NODENAME, else the
	// host name).
	Node string
}

// parseLaunch reads the launcher's environment through get. Variables of
// the launcher that started the process directly come first: mpirun run
// inside a Slurm job inherits SLURM_PROCID from the batch step, so Open
// MPI's and PMI's own variables win over Slurm's.
func parseLaunch(get func(string) string) (launch, error) {
	num := func(rv, sv string) (int, int, error) {
		r, err1 := strconv.Atoi(get(rv))
		s, err2 := strconv.Atoi(get(sv))
		if err1 != nil || err2 != nil || s < 1 || r < 0 || r >= s {
			return 0, 0, fmt.Errorf("mpi: %s=%q and %s=%q are not a rank and a world size", rv, get(rv), sv, get(sv))
		}
		return r, s, nil
	}
	var l launch
	var err error
	switch {
	case get("OMPI_COMM_WORLD_RANK") != "":
		l.Vars = "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE"
		if l.Rank, l.Size, err = num("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"); err != nil {
			return launch{}, err
		}
		if id := get("OMPI_MCA_ess_base_jobid") + get("OMPI_MCA_orte_hnp_uri"); id != "" {
			l.Key = "ompi-" + shortKey(id)
		} else if ns := get("PMIX_NAMESPACE"); ns != "" {
			l.Key = "pmix-" + shortKey(ns)
		}
	case get("PMI_RANK") != "":
		// MPICH's Hydra, Intel MPI, or srun --mpi=pmi2.
		l.Vars = "PMI_RANK/PMI_SIZE"
		if l.Rank, l.Size, err = num("PMI_RANK", "PMI_SIZE"); err != nil {
			return launch{}, err
		}
		switch {
		case slurmStep(get) != "" && get("SLURM_PROCID") == get("PMI_RANK") && slurmTasks(get) == get("PMI_SIZE"):
			l.Key = slurmStep(get) // srun --mpi=pmi2
		case get("PMI_JOBID") != "":
			l.Key = "pmi-" + shortKey(get("PMI_JOBID"))
		case get("MPI_LOCALNRANKS") == get("PMI_SIZE"):
			// Hydra names no launch, but when every rank is on this
			// node they share one parent, its proxy.
			l.Key = parentKey()
		}
	case get("PMIX_RANK") != "":
		l.Vars = "PMIX_RANK/PMIX_SIZE"
		sizeVar := "PMIX_SIZE"
		if get(sizeVar) == "" && get("SLURM_PROCID") == get("PMIX_RANK") {
			sizeVar = "SLURM_STEP_NUM_TASKS"
			if get(sizeVar) == "" {
				sizeVar = "SLURM_NTASKS"
			}
			l.Vars = "PMIX_RANK/" + sizeVar
		}
		if l.Rank, l.Size, err = num("PMIX_RANK", sizeVar); err != nil {
			return launch{}, err
		}
		if ns := get("PMIX_NAMESPACE"); ns != "" {
			l.Key = "pmix-" + shortKey(ns)
		}
	case get("SLURM_PROCID") != "" && slurmStep(get) != "":
		sizeVar := "SLURM_STEP_NUM_TASKS"
		if get(sizeVar) == "" {
			sizeVar = "SLURM_NTASKS"
		}
		l.Vars = "SLURM_PROCID/" + sizeVar
		if l.Rank, l.Size, err = num("SLURM_PROCID", sizeVar); err != nil {
			return launch{}, err
		}
		l.Key = slurmStep(get)
	default:
		return launch{}, ErrNoLauncher
	}
	if k := get("RAYGO_LAUNCH_KEY"); k != "" {
		l.Key = "key-" + shortKey(k)
	}
	l.Node = get("SLURMD_NODENAME")
	if l.Node == "" {
		l.Node, _ = os.Hostname()
	}
	return l, nil
}

// slurmStep is the rendezvous key of the Slurm job step this process is
// in, or "" outside a step (the batch script is not one).
func slurmStep(get func(string) string) string {
	job := get("SLURM_JOB_ID")
	if job == "" {
		job = get("SLURM_JOBID")
	}
	step := get("SLURM_STEP_ID")
	if step == "" {
		step = get("SLURM_STEPID")
	}
	if job == "" || step == "" {
		return ""
	}
	key := "slurm-" + job + "." + step
	if c := get("SLURM_CLUSTER_NAME"); c != "" {
		key = "slurm-" + c + "-" + job + "." + step
	}
	return shortKey(key)
}

func slurmTasks(get func(string) string) string {
	if n := get("SLURM_STEP_NUM_TASKS"); n != "" {
		return n
	}
	return get("SLURM_NTASKS")
}

// parentKey names this process's parent: its host, pid and start time
// (so that a reused pid names another launch).
func parentKey() string {
	host, _ := os.Hostname()
	ppid := os.Getppid()
	start := ""
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ppid)); err == nil {
		// Field 22 (starttime) counts from the field after the command
		// name, which may hold spaces but ends at the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 19 {
				start = f[19]
			}
		}
	}
	return shortKey(fmt.Sprintf("parent-%s-%d-%s", host, ppid, start))
}

// shortKey makes s safe as a file name: letters, digits, '.', '_' and
// '-' are kept (others become '_'), and a long s is cut and followed by a
// hash of the whole.
func shortKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] == '.' {
		b[0] = '_'
	}
	if len(b) <= 64 {
		return string(b)
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%s-%016x", b[:40], h.Sum64())
}
