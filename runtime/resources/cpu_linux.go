package resources

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// affinityCPUs counts the CPUs in this process's affinity mask, which
// reflects taskset, Slurm's CPU binding and a cgroup cpuset. It falls back
// to runtime.NumCPU, itself the mask at start-up, if the call fails.
func affinityCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		if n := set.Count(); n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}
