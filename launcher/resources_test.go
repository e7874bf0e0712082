package launcher_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/launcher"
	"github.com/raygo/raygo/runtime/resources"
	"github.com/raygo/raygo/runtime/wire"
)

// bigNode is what detection finds on the machine: more than the
// allocation gives, so the allocation decides.
var bigNode = resources.Node{CPUs: 64, MemoryBytes: 512 << 30, Custom: map[string]float64{}}

// noFlags is a command line that overrides nothing.
var noFlags = launcher.ResourceFlags{GPUs: -1}

func slurmResources(t *testing.T, e env, f launcher.ResourceFlags, det resources.Node) (wire.Resources, []string, error) {
	t.Helper()
	role := detect(t, noManual, e)
	return launcher.NodeResources(role, f, det)
}

func TestNodeResourcesSlurm(t *testing.T) {
	res, gpus, err := slurmResources(t, slurmStep, noFlags, bigNode)
	if err != nil {
		t.Fatal(err)
	}
	// --cpus-per-task=16 beats SLURM_CPUS_ON_NODE=32; memory is
	// --mem-per-cpu=4G times those 16 CPUs; the GPUs are the step's.
	want := wire.Resources{"CPU": 16, "memory": 16 * 4096 << 20, "GPU": 2}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("resources %v, want %v", res, want)
	}
	if !reflect.DeepEqual(gpus, []string{"2", "3"}) {
		t.Errorf("GPU IDs %v, want [2 3] from CUDA_VISIBLE_DEVICES", gpus)
	}

	// Without --cpus-per-task: the CPUs on the node; --mem: per node.
	res, _, err = slurmResources(t, slurmStep.with("-SLURM_CPUS_PER_TASK", "-SLURM_MEM_PER_CPU", "SLURM_MEM_PER_NODE=65536"), noFlags, bigNode)
	if err != nil {
		t.Fatal(err)
	}
	if res["CPU"] != 32 || res["memory"] != 64<<30 {
		t.Errorf("CPUs on node and memory per node: %v, want 32 CPUs and 64 GiB", res)
	}

	// Slurm's count is capped by what the cgroup gives this process.
	small := resources.Node{CPUs: 8, MemoryBytes: 16 << 30}
	res, _, err = slurmResources(t, slurmStep, noFlags, small)
	if err != nil {
		t.Fatal(err)
	}
	if res["CPU"] != 8 || res["memory"] != 16<<30 {
		t.Errorf("on a smaller cgroup: %v, want 8 CPUs and 16 GiB", res)
	}
}

func TestNodeResourcesSlurmGPUs(t *testing.T) {
	cases := []struct {
		name string
		env  env
		want []string
	}{
		{"CUDA_VISIBLE_DEVICES", slurmStep, []string{"2", "3"}},
		{"SLURM_STEP_GPUS without CUDA_VISIBLE_DEVICES", slurmStep.with("-CUDA_VISIBLE_DEVICES"), []string{"2", "3"}},
		{"SLURM_JOB_GPUS only", slurmStep.with("-CUDA_VISIBLE_DEVICES", "-SLURM_STEP_GPUS", "SLURM_JOB_GPUS=0-1"), []string{"0", "1"}},
		// gres.conf without device files: Slurm cannot say which GPUs,
		// only how many.
		{"NoDevFiles", slurmStep.with("CUDA_VISIBLE_DEVICES=NoDevFiles", "-SLURM_STEP_GPUS", "-SLURM_JOB_GPUS"), []string{"0", "1"}},
		{"no GPUs", slurmStep.with("-CUDA_VISIBLE_DEVICES", "-SLURM_STEP_GPUS", "-SLURM_JOB_GPUS", "-SLURM_GPUS_ON_NODE"), nil},
	}
	for _, c := range cases {
		res, gpus, err := slurmResources(t, c.env, noFlags, bigNode)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(gpus, c.want) || res["GPU"] != float64(len(c.want)) {
			t.Errorf("%s: GPU IDs %v (GPU %v), want %v", c.name, gpus, res["GPU"], c.want)
		}
	}

	// A contradiction names both variables.
	_, _, err := slurmResources(t, slurmStep.with("CUDA_VISIBLE_DEVICES=0,1,2", "-SLURM_STEP_GPUS", "-SLURM_JOB_GPUS"), noFlags, bigNode)
	if err == nil {
		t.Fatal("SLURM_GPUS_ON_NODE=2 with three CUDA_VISIBLE_DEVICES accepted")
	}
	for _, w := range []string{"SLURM_GPUS_ON_NODE=2", "CUDA_VISIBLE_DEVICES=0,1,2"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	_, _, err = slurmResources(t, slurmStep.with("-CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS=0-3"), noFlags, bigNode)
	if err == nil || !strings.Contains(err.Error(), "SLURM_STEP_GPUS=0,1,2,3") || !strings.Contains(err.Error(), "SLURM_GPUS_ON_NODE=2") {
		t.Errorf("SLURM_GPUS_ON_NODE=2 with SLURM_STEP_GPUS=0-3: %v", err)
	}
}

func TestNodeResourcesFlagsOverride(t *testing.T) {
	f := launcher.ResourceFlags{CPUs: 4, GPUs: 1, Memory: 1 << 30, Custom: map[string]float64{"license": 2}}
	res, gpus, err := slurmResources(t, slurmStep, f, bigNode)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Resources{"CPU": 4, "memory": 1 << 30, "GPU": 1, "license": 2}
	if !reflect.DeepEqual(res, want) || !reflect.DeepEqual(gpus, []string{"2"}) {
		t.Errorf("with flags: %v %v, want %v [2]", res, gpus, want)
	}
	// More GPUs than the step's declares more, without reusing a device.
	_, gpus, err = slurmResources(t, slurmStep, launcher.ResourceFlags{GPUs: 4}, bigNode)
	if err != nil || !reflect.DeepEqual(gpus, []string{"2", "3", "0", "1"}) {
		t.Errorf("--num-gpus 4 with CUDA_VISIBLE_DEVICES=2,3: %v, %v; want [2 3 0 1]", gpus, err)
	}
	// --num-gpus 0 hides the step's GPUs.
	res, gpus, err = slurmResources(t, slurmStep, launcher.ResourceFlags{GPUs: 0}, bigNode)
	if err != nil {
		t.Fatal(err)
	}
	if _, has := res["GPU"]; has || len(gpus) != 0 {
		t.Errorf("--num-gpus 0: %v %v", res, gpus)
	}
	// Without Slurm: flags over detection.
	res, _, err = launcher.NodeResources(launcher.Role{System: launcher.SystemManual}, launcher.ResourceFlags{CPUs: 3, GPUs: -1}, bigNode)
	if err != nil || res["CPU"] != 3 || res["memory"] != float64(bigNode.MemoryBytes) {
		t.Errorf("by hand with --num-cpus 3: %v, %v", res, err)
	}
	// A node with no CPUs is an error, not a node nobody can use.
	if _, _, err := launcher.NodeResources(launcher.Role{}, noFlags, resources.Node{}); err == nil || !strings.Contains(err.Error(), "no CPUs") {
		t.Errorf("no CPUs: %v", err)
	}
}
