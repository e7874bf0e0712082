package resources

import (
	"errors"
	"fmt"
)

// defaultNVMLPath is the NVML library loaded when Options.NVMLPath is "".
const defaultNVMLPath = "libnvidia-ml.so.1"

// ErrNotNVML means the library at Options.NVMLPath loaded but is not NVML.
var ErrNotNVML = errors.New("resources: not an NVML library")

// NVMLError is an NVML call that failed.
type NVMLError struct {
	Call   string // the NVML call, as go-nvml names it, e.g. "DeviceGetName"
	Device string // the device index or UUID the call was about; "" if none
	Code   int    // the nvmlReturn_t code
	Msg    string // NVML's description of Code
}

func (e *NVMLError) Error() string {
	if e.Device == "" {
		return fmt.Sprintf("resources: nvml %s: %s", e.Call, e.Msg)
	}
	return fmt.Sprintf("resources: nvml %s (device %s): %s", e.Call, e.Device, e.Msg)
}

// DetectGPUs reports the NVIDIA GPUs this process may use, in CUDA order.
//
// It loads NVML from opts.NVMLPath for the duration of the call. If the
// library cannot be loaded, or loads but finds no NVIDIA driver, the node
// has no GPUs as far as NVML knows, and DetectGPUs returns the devices that
// CUDA_VISIBLE_DEVICES lists, with Index (or UUID) only, as Slurm sets it
// for a job's GPUs; with the variable unset it returns (nil, nil).
//
// With NVML, CUDA_VISIBLE_DEVICES (when set) selects devices by index, UUID
// or UUID prefix, and MIG instances by UUID; as in CUDA, the first entry
// that names no device ends the list. Devices the process is not permitted
// to open (a Slurm or container device cgroup) are left out.
//
// Errors are *NVMLError, or wrap ErrNotNVML when opts.NVMLPath names a
// library that is not NVML.
func DetectGPUs(opts Options) ([]GPU, error) {
	vis := parseVisible(opts.lookupEnv())
	if vis.set && len(vis.entries) == 0 {
		return nil, nil // every device hidden: no need to load NVML
	}
	path := opts.NVMLPath
	if path == "" {
		path = defaultNVMLPath
	}
	gpus, loaded, err := nvmlGPUs(path, vis)
	if err != nil {
		return nil, err
	}
	if !loaded {
		return listedGPUs(vis.entries), nil
	}
	return gpus, nil
}
