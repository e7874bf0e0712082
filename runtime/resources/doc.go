// Package resources detects what a node can offer to the scheduler: the
// logical CPUs this process may use, its memory, its NVIDIA GPUs and any
// custom resources named by the operator.
//
// Detection respects the limits a batch system or container puts on the
// process, since those, not the hardware, are what tasks can use:
//
//   - CPUs counts the CPUs in the process's affinity mask (Slurm's
//     --cpus-per-task, taskset, a cgroup cpuset), capped by a cgroup CPU
//     quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us), which may make it
//     fractional.
//   - MemoryBytes is the machine's total memory, capped by the smallest
//     cgroup memory limit on the way from the process's cgroup to the root
//     (v2 memory.max, v1 memory.limit_in_bytes).
//   - GPUs come from NVML, loaded at run time; a node without the NVIDIA
//     library simply has no GPUs. CUDA_VISIBLE_DEVICES, when set, restricts
//     them with CUDA's own rules, and names them even where NVML is absent.
//
// NVML needs cgo on Linux. Elsewhere, or with CGO_ENABLED=0, the package
// builds the same API and reports GPUs only from CUDA_VISIBLE_DEVICES.
//
// Concurrency: all functions are safe to call from many goroutines. NVML
// calls are serialised by one package lock, since go-nvml keeps global state
// while a library is loaded.
package resources
