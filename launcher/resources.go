package launcher

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/resources"
	"github.com/raygo/raygo/runtime/wire"
)

// ResourceFlags override what the allocation says. Zero values (and -1 for
// GPUs) mean "not given".
type ResourceFlags struct {
	CPUs   float64
	GPUs   int
	Memory int64
	Custom map[string]float64
}

// NodeResources works out what this node offers: flags first, then the
// allocation (under Slurm: CPUs per task or on the node, memory per node or
// per CPU, the step's GPUs), then what the machine has (CPU affinity and
// cgroup limits, memory, GPUs through NVML). It also returns the GPU IDs to
// hand out in CUDA_VISIBLE_DEVICES, and an error naming any variables that
// contradict each other.
func NodeResources(role Role, f ResourceFlags, det resources.Node) (wire.Resources, []string, error) {
	res, gpus := runtime.NodeResources(det)
	if j := role.Slurm; j != nil {
		switch {
		case j.CPUsPerTask > 0:
			res["CPU"] = float64(j.CPUsPerTask)
		case j.CPUsOnNode > 0:
			res["CPU"] = float64(j.CPUsOnNode)
		}
		if det.CPUs > 0 && res["CPU"] > det.CPUs {
			// Slurm may count hyperthreads the cgroup does not give us.
			res["CPU"] = det.CPUs
		}
		switch {
		case j.MemPerNode > 0:
			res["memory"] = float64(j.MemPerNode)
		case j.MemPerCPU > 0:
			res["memory"] = float64(j.MemPerCPU) * res["CPU"]
		}
		if det.MemoryBytes > 0 && res["memory"] > float64(det.MemoryBytes) {
			res["memory"] = float64(det.MemoryBytes)
		}
		ids, err := slurmGPUs(role)
		if err != nil {
			return nil, nil, err
		}
		if ids != nil {
			gpus = ids
		}
	}
	if f.CPUs > 0 {
		res["CPU"] = f.CPUs
	}
	if f.Memory > 0 {
		res["memory"] = float64(f.Memory)
	}
	if f.GPUs >= 0 {
		if f.GPUs <= len(gpus) {
			gpus = gpus[:f.GPUs]
		} else {
			// Declare the rest with the lowest device numbers not in use
			// (CUDA_VISIBLE_DEVICES=2,3 and --num-gpus 3: 2,3,0).
			for i := 0; len(gpus) < f.GPUs; i++ {
				if id := strconv.Itoa(i); !slices.Contains(gpus, id) {
					gpus = append(gpus, id)
				}
			}
		}
	}
	delete(res, "GPU")
	if len(gpus) > 0 {
		res["GPU"] = float64(len(gpus))
	}
	for k, v := range f.Custom {
		res[k] = v
	}
	if res["CPU"] <= 0 {
		return nil, nil, fmt.Errorf("this node offers no CPUs (resources %v)", res)
	}
	return res, gpus, nil
}

// slurmGPUs reads the step's GPUs: the devices CUDA_VISIBLE_DEVICES lists
// (Slurm sets it to the step's GPUs), else SLURM_STEP_GPUS / SLURM_JOB_GPUS,
// else SLURM_GPUS_ON_NODE devices numbered from 0 (with NoDevFiles, Slurm
// cannot name them). nil means Slurm says nothing about GPUs.
func slurmGPUs(role Role) ([]string, error) {
	j := role.Slurm
	var ids []string
	var from string // the variable ids came from, for errors
	switch {
	case j.CUDAVisibleDevices != nil && !j.GPUNoDevFiles:
		ids, from = append([]string{}, j.CUDAVisibleDevices...), "CUDA_VISIBLE_DEVICES"
	case j.StepGPUs != nil:
		for _, g := range j.StepGPUs {
			ids = append(ids, strconv.Itoa(g))
		}
		from = "SLURM_STEP_GPUS"
	case j.JobGPUs != nil:
		for _, g := range j.JobGPUs {
			ids = append(ids, strconv.Itoa(g))
		}
		from = "SLURM_JOB_GPUS"
	case j.GPUsOnNode > 0:
		for i := 0; i < j.GPUsOnNode; i++ {
			ids = append(ids, strconv.Itoa(i))
		}
	default:
		return nil, nil
	}
	if from != "" && j.GPUsOnNode > 0 && len(ids) != j.GPUsOnNode && !j.GPUNoDevFiles {
		return nil, fmt.Errorf("slurm: SLURM_GPUS_ON_NODE=%d contradicts %s=%s (%d devices)", j.GPUsOnNode, from, strings.Join(ids, ","), len(ids))
	}
	return ids, nil
}
