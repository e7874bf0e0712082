package resources

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/mem"
)

// GPU is one NVIDIA device the node can use.
type GPU struct {
	// Index is the device's index as NVML and nvidia-smi number it, which
	// is also what CUDA_VISIBLE_DEVICES takes. It is -1 where unknown: a
	// device named by UUID in CUDA_VISIBLE_DEVICES on a node without NVML.
	Index int
	// UUID is the device's UUID ("GPU-…", or "MIG-…" for a MIG instance);
	// empty where NVML is unavailable and the device was named by index.
	UUID string
	// Name is the product name, e.g. "NVIDIA H100 80GB HBM3"; empty
	// without NVML.
	Name string
	// MemoryBytes is the device's total memory; 0 without NVML or where the
	// device does not report it.
	MemoryBytes uint64
}

// ID returns the string that names the device in CUDA_VISIBLE_DEVICES: its
// UUID where known, else its index.
func (g GPU) ID() string {
	if g.UUID != "" {
		return g.UUID
	}
	return strconv.Itoa(g.Index)
}

// Node is what one node offers.
type Node struct {
	// CPUs is the number of logical CPUs this process may use: its affinity
	// mask, capped by a cgroup CPU quota (which may make it fractional).
	CPUs float64
	// MemoryBytes is the total memory, capped by a cgroup memory limit
	// where one is set and smaller.
	MemoryBytes uint64
	// GPUs are the NVIDIA devices this process may use, in CUDA order.
	GPUs []GPU
	// Custom holds operator-defined resources by name (see ParseCustom).
	// Detect leaves it empty but not nil.
	Custom map[string]float64
}

// Options configures detection. The zero value detects the real node.
type Options struct {
	// NVMLPath overrides the NVML library to load; "" means the default,
	// libnvidia-ml.so.1, found by the dynamic loader.
	NVMLPath string
	// Env looks up an environment variable; nil means os.LookupEnv. Tests
	// inject their own.
	Env func(string) (string, bool)
}

func (o Options) lookupEnv() func(string) (string, bool) {
	if o.Env != nil {
		return o.Env
	}
	return os.LookupEnv
}

// Detect reports what this node offers to this process. On error the
// returned Node still holds whatever was detected before the failure, so a
// caller may log the error and go on with CPUs and memory.
func Detect(opts Options) (Node, error) {
	limits := readCgroupLimits("/")
	n := Node{
		CPUs:   float64(affinityCPUs()),
		Custom: map[string]float64{},
	}
	if limits.cpus > 0 && limits.cpus < n.CPUs {
		n.CPUs = limits.cpus
	}

	vm, err := mem.VirtualMemory()
	if err != nil {
		return n, fmt.Errorf("resources: mem.VirtualMemory: %w", err)
	}
	n.MemoryBytes = vm.Total
	if limits.memory > 0 && limits.memory < n.MemoryBytes {
		n.MemoryBytes = limits.memory
	}

	gpus, err := DetectGPUs(opts)
	if err != nil {
		return n, err
	}
	n.GPUs = gpus
	return n, nil
}

// String returns a one-line summary such as
// "2 CPUs, 23.4 GiB, 1 GPU, ib_port=1".
func (n Node) String() string {
	var b strings.Builder
	cpus := strconv.FormatFloat(n.CPUs, 'f', -1, 64)
	fmt.Fprintf(&b, "%s %s, %s, %d %s",
		cpus, plural(n.CPUs == 1, "CPU"),
		FormatBytes(n.MemoryBytes),
		len(n.GPUs), plural(len(n.GPUs) == 1, "GPU"))
	names := make([]string, 0, len(n.Custom))
	for name := range n.Custom {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, ", %s=%s", name, strconv.FormatFloat(n.Custom[name], 'f', -1, 64))
	}
	return b.String()
}

func plural(one bool, word string) string {
	if one {
		return word
	}
	return word + "s"
}

// FormatBytes formats b in binary units with one decimal: "512 B",
// "1.5 KiB", "23.4 GiB". Sizes of a TiB or more use TiB.
func FormatBytes(b uint64) string {
	if b < 1024 {
		return fmt.Sprintf("%d B", b)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v := float64(b) / 1024
	u := 0
	// Move up while the value would print as 1024.0 or more.
	for u < len(units)-1 && v >= 1023.95 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
