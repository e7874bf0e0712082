package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Environments captured on the Slurm 22.05.8 test cluster (shared/slurm).

// batchEnv is the batch script of
// sbatch -J envtest -N 2 --ntasks-per-node=1 --gpus-per-node=1 --mem=512 --time=1:00:00.
const batchEnv = `
CUDA_VISIBLE_DEVICES=0
GPU_DEVICE_ORDINAL=0
SLURMD_NODENAME=node1
SLURM_CLUSTER_NAME=raygo
SLURM_CPUS_ON_NODE=1
SLURM_GPUS_ON_NODE=1
SLURM_GPUS_PER_NODE=1
SLURM_GTIDS=0
SLURM_JOBID=1
SLURM_JOB_CPUS_PER_NODE=1(x2)
SLURM_JOB_GPUS=0
SLURM_JOB_ID=1
SLURM_JOB_NAME=envtest
SLURM_JOB_NODELIST=node[1-2]
SLURM_JOB_NUM_NODES=2
SLURM_JOB_PARTITION=debug
SLURM_LOCALID=0
SLURM_MEM_PER_NODE=512
SLURM_NNODES=2
SLURM_NODEID=0
SLURM_NODELIST=node[1-2]
SLURM_NODE_ALIASES=(null)
SLURM_NPROCS=2
SLURM_NTASKS=2
SLURM_NTASKS_PER_NODE=1
SLURM_PRIO_PROCESS=0
SLURM_PROCID=0
SLURM_SUBMIT_DIR=/tmp/envcap
SLURM_SUBMIT_HOST=vm
SLURM_TASKS_PER_NODE=1(x2)
SLURM_TASK_PID=30367
TMPDIR=/tmp
`

// taskEnv is task 1 of `srun` (no options) in that batch script.
const taskEnv = `
CUDA_VISIBLE_DEVICES=0
SLURMD_NODENAME=node2
SLURM_CPUS_ON_NODE=1
SLURM_DISTRIBUTION=cyclic
SLURM_GPUS_ON_NODE=1
SLURM_GPUS_PER_NODE=1
SLURM_GTIDS=1
SLURM_JOBID=1
SLURM_JOB_CPUS_PER_NODE=1(x2)
SLURM_JOB_GPUS=0
SLURM_JOB_ID=1
SLURM_JOB_NAME=envtest
SLURM_JOB_NODELIST=node[1-2]
SLURM_JOB_NUM_NODES=2
SLURM_JOB_PARTITION=debug
SLURM_LOCALID=0
SLURM_MEM_PER_NODE=512
SLURM_NNODES=2
SLURM_NODEID=1
SLURM_NODELIST=node[1-2]
SLURM_NPROCS=2
SLURM_NTASKS=2
SLURM_NTASKS_PER_NODE=1
SLURM_PROCID=1
SLURM_STEPID=0
SLURM_STEP_GPUS=0
SLURM_STEP_ID=0
SLURM_STEP_NODELIST=node[1-2]
SLURM_STEP_NUM_NODES=2
SLURM_STEP_NUM_TASKS=2
SLURM_STEP_TASKS_PER_NODE=1(x2)
SLURM_SUBMIT_DIR=/tmp/envcap
SLURM_TASKS_PER_NODE=1(x2)
TMPDIR=/tmp
`

// subsetStepEnv is task 1 of `srun -N1 -n2 --gpus-per-task=1` inside
// salloc -N2 -n4 --gpus-per-node=2 --mem-per-cpu=100: the step has one of
// the job's two nodes, and SLURM_NNODES and SLURM_NTASKS are the step's.
const subsetStepEnv = `
CUDA_VISIBLE_DEVICES=1
SLURMD_NODENAME=node1
SLURM_CPUS_ON_NODE=2
SLURM_GPUS_ON_NODE=2
SLURM_GPUS_PER_NODE=2
SLURM_JOB_CPUS_PER_NODE=2(x2)
SLURM_JOB_ID=3
SLURM_JOB_NODELIST=node[1-2]
SLURM_JOB_NUM_NODES=2
SLURM_LOCALID=1
SLURM_MEM_PER_CPU=100
SLURM_NNODES=1
SLURM_NODEID=0
SLURM_NODELIST=node[1-2]
SLURM_NTASKS=2
SLURM_PROCID=1
SLURM_STEPID=0
SLURM_STEP_GPUS=1
SLURM_STEP_ID=0
SLURM_STEP_NODELIST=node1
SLURM_STEP_NUM_NODES=1
SLURM_STEP_NUM_TASKS=2
SLURM_STEP_TASKS_PER_NODE=2
SLURM_TASKS_PER_NODE=2
TMPDIR=/tmp
`

// lookupOf parses KEY=VALUE lines, then applies edits: "KEY=VALUE" sets,
// "-KEY" unsets.
func lookupOf(env string, edits ...string) func(string) (string, bool) {
	m := map[string]string{}
	for _, line := range strings.Split(env, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	for _, e := range edits {
		if k, ok := strings.CutPrefix(e, "-"); ok {
			delete(m, k)
		} else if k, v, ok := strings.Cut(e, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvBatch(t *testing.T) {
	j, err := FromEnv(lookupOf(batchEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{
		JobID: "1", Name: "envtest", Partition: "debug", SubmitDir: "/tmp/envcap", TmpDir: "/tmp", NodeName: "node1",
		JobNodes: []string{"node1", "node2"}, Nodes: []string{"node1", "node2"}, NumNodes: 2,
		NTasks: 2, TasksPerNode: []int{1, 1},
		CPUsOnNode: 1, JobCPUsPerNode: []int{1, 1},
		MemPerNode: 512 << 20,
		GPUsOnNode: 1, JobGPUs: []int{0}, CUDAVisibleDevices: []string{"0"},
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("FromEnv =\n%+v\nwant\n%+v", j, want)
	}
	if got := j.RendezvousKey(); got != "1.batch" {
		t.Errorf("RendezvousKey = %q, want 1.batch", got)
	}
}

func TestFromEnvTask(t *testing.T) {
	j, err := FromEnv(lookupOf(taskEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{
		JobID: "1", StepID: "0", Name: "envtest", Partition: "debug", SubmitDir: "/tmp/envcap", TmpDir: "/tmp", NodeName: "node2",
		JobNodes: []string{"node1", "node2"}, Nodes: []string{"node1", "node2"}, NumNodes: 2, NodeID: 1,
		ProcID: 1, NTasks: 2, TasksPerNode: []int{1, 1},
		CPUsOnNode: 1, JobCPUsPerNode: []int{1, 1},
		MemPerNode: 512 << 20,
		GPUsOnNode: 1, JobGPUs: []int{0}, StepGPUs: []int{0}, CUDAVisibleDevices: []string{"0"},
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("FromEnv =\n%+v\nwant\n%+v", j, want)
	}
	if got := j.RendezvousKey(); got != "1.0" {
		t.Errorf("RendezvousKey = %q, want 1.0", got)
	}
}

func TestFromEnvSubsetStep(t *testing.T) {
	j, err := FromEnv(lookupOf(subsetStepEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{
		JobID: "3", StepID: "0", TmpDir: "/tmp", NodeName: "node1",
		JobNodes: []string{"node1", "node2"}, Nodes: []string{"node1"}, NumNodes: 1,
		ProcID: 1, LocalID: 1, NTasks: 2, TasksPerNode: []int{2},
		CPUsOnNode: 2, JobCPUsPerNode: []int{2, 2},
		MemPerCPU:  100 << 20,
		GPUsOnNode: 2, StepGPUs: []int{1}, CUDAVisibleDevices: []string{"1"},
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("FromEnv =\n%+v\nwant\n%+v", j, want)
	}
}

func TestFromEnvNotInSlurm(t *testing.T) {
	j, err := FromEnv(lookupOf("HOME=/root\nSLURM_NNODES=2"))
	if j != nil || !errors.Is(err, ErrNotInSlurm) {
		t.Errorf("FromEnv = %v, %v; want nil, ErrNotInSlurm", j, err)
	}
	j, err = FromEnv(lookupOf(batchEnv, "SLURM_JOB_ID=", "-SLURM_JOBID"))
	if j != nil || !errors.Is(err, ErrNotInSlurm) {
		t.Errorf("empty SLURM_JOB_ID: FromEnv = %v, %v; want nil, ErrNotInSlurm", j, err)
	}
}

func TestFromEnvVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		edits []string
		check func(*Job) bool
	}{
		{"old job ID name", batchEnv, []string{"-SLURM_JOB_ID"}, func(j *Job) bool { return j.JobID == "1" }},
		{"old step ID name", taskEnv, []string{"-SLURM_STEP_ID"}, func(j *Job) bool { return j.RendezvousKey() == "1.0" }},
		{"SLURM_TMPDIR wins", batchEnv, []string{"SLURM_TMPDIR=/local/job1"}, func(j *Job) bool { return j.TmpDir == "/local/job1" }},
		{"NoDevFiles", batchEnv, []string{"CUDA_VISIBLE_DEVICES=NoDevFiles"},
			func(j *Job) bool { return j.GPUNoDevFiles && j.CUDAVisibleDevices == nil }},
		{"no GPU visible", batchEnv, []string{"CUDA_VISIBLE_DEVICES="},
			func(j *Job) bool { return j.CUDAVisibleDevices != nil && len(j.CUDAVisibleDevices) == 0 }},
		{"CUDA UUIDs", batchEnv, []string{"CUDA_VISIBLE_DEVICES=GPU-1a2b, MIG-3c4d"},
			func(j *Job) bool { return reflect.DeepEqual(j.CUDAVisibleDevices, []string{"GPU-1a2b", "MIG-3c4d"}) }},
		{"GPU lists", batchEnv, []string{"SLURM_JOB_GPUS=0,2-3", "SLURM_GPUS_ON_NODE=3"},
			func(j *Job) bool { return reflect.DeepEqual(j.JobGPUs, []int{0, 2, 3}) && j.GPUsOnNode == 3 }},
		{"CPUs per node mixed", batchEnv, []string{"SLURM_JOB_NODELIST=n[1-3]", "SLURM_JOB_NUM_NODES=3", "SLURM_NNODES=3",
			"SLURM_TASKS_PER_NODE=1(x3)", "SLURM_JOB_CPUS_PER_NODE=32(x2),16", "SLURM_CPUS_PER_TASK=16"},
			func(j *Job) bool {
				return reflect.DeepEqual(j.JobCPUsPerNode, []int{32, 32, 16}) && j.CPUsPerTask == 16 && j.NumNodes == 3
			}},
		{"time limit (Slurm 23.02+)", batchEnv, []string{"SLURM_JOB_START_TIME=1700000000", "SLURM_JOB_END_TIME=1700003600"},
			func(j *Job) bool {
				return j.TimeLimit == time.Hour && j.EndTime.Equal(time.Unix(1700003600, 0)) && j.StartTime.Equal(time.Unix(1700000000, 0))
			}},
		{"white space", batchEnv, []string{"SLURM_NNODES= 2 ", "SLURM_JOB_NODELIST= node[1-2]\n"}, func(j *Job) bool { return j.NumNodes == 2 }},
		{"no node list", "SLURM_JOB_ID=7\nSLURM_NNODES=4\nSLURM_NODEID=3", nil,
			func(j *Job) bool { return j.NumNodes == 4 && j.NodeID == 3 && j.Nodes == nil }},
		{"bare job ID", "SLURM_JOB_ID=7", nil, func(j *Job) bool { return j.JobID == "7" && j.NumNodes == 0 }},
	} {
		j, err := FromEnv(lookupOf(tc.env, tc.edits...))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.check(j) {
			t.Errorf("%s: got %+v", tc.name, j)
		}
	}
}

func TestFromEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env   string
		edits []string
		want  string // the exact error
	}{
		{batchEnv, []string{"SLURM_NODEID=2"},
			`slurm: SLURM_NODEID="2" contradicts SLURM_NNODES="2": node ID 2 is not below the 2 nodes`},
		{batchEnv, []string{"SLURM_PROCID=2"},
			`slurm: SLURM_PROCID="2" contradicts SLURM_NTASKS="2": rank 2 is not below the 2 tasks`},
		{taskEnv, []string{"SLURM_PROCID=5"},
			`slurm: SLURM_PROCID="5" contradicts SLURM_STEP_NUM_TASKS="2": rank 5 is not below the 2 tasks`},
		{batchEnv, []string{"SLURM_NNODES=3"},
			`slurm: SLURM_JOB_NODELIST="node[1-2]" contradicts SLURM_NNODES="3": the list has 2 nodes, not 3`},
		{batchEnv, []string{"SLURM_JOB_NUM_NODES=4"},
			`slurm: SLURM_JOB_NODELIST="node[1-2]" contradicts SLURM_JOB_NUM_NODES="4": the list has 2 nodes, not 4`},
		{subsetStepEnv, []string{"SLURM_STEP_NUM_NODES=2"},
			`slurm: SLURM_STEP_NODELIST="node1" contradicts SLURM_STEP_NUM_NODES="2": the list has 1 nodes, not 2`},
		{subsetStepEnv, []string{"SLURM_NODEID=1", "-SLURM_NNODES", "-SLURM_STEP_NUM_NODES"},
			`slurm: SLURM_NODEID="1" contradicts SLURM_STEP_NODELIST="node1": node ID 1 is not below the 1 nodes`},
		{subsetStepEnv, []string{"SLURM_LOCALID=2"},
			`slurm: SLURM_LOCALID="2" contradicts SLURM_STEP_TASKS_PER_NODE="2": local ID 2 is not below the 2 tasks on node 0`},
		{subsetStepEnv, []string{"SLURM_STEP_TASKS_PER_NODE=3"},
			`slurm: SLURM_STEP_TASKS_PER_NODE="3" contradicts SLURM_STEP_NUM_TASKS="2": the counts add up to 3 tasks, not 2`},
		{batchEnv, []string{"SLURM_TASKS_PER_NODE=1(x3)"},
			`slurm: SLURM_TASKS_PER_NODE="1(x3)" contradicts SLURM_JOB_NODELIST="node[1-2]": 3 task counts for 2 nodes`},
		{batchEnv, []string{"SLURM_JOB_CPUS_PER_NODE=32(x2),16"},
			`slurm: SLURM_JOB_CPUS_PER_NODE="32(x2),16" contradicts SLURM_JOB_NODELIST="node[1-2]": 3 CPU counts for 2 nodes`},
		{batchEnv, []string{"SLURM_JOBID=2"},
			`slurm: SLURM_JOBID="2" contradicts SLURM_JOB_ID="1": the two name the same job`},
		{batchEnv, []string{"SLURM_JOB_START_TIME=200", "SLURM_JOB_END_TIME=100"},
			`slurm: SLURM_JOB_END_TIME="100" contradicts SLURM_JOB_START_TIME="200": the job ends before it starts`},
		{batchEnv, []string{"SLURM_NODEID=-1"}, `slurm: SLURM_NODEID="-1": not a non-negative decimal number`},
		{batchEnv, []string{"SLURM_NTASKS=two"}, `slurm: SLURM_NTASKS="two": not a non-negative decimal number`},
		{batchEnv, []string{"SLURM_JOB_ID=1x"}, `slurm: SLURM_JOB_ID="1x": not a non-negative decimal number`},
		{taskEnv, []string{"SLURM_STEP_ID=batch"}, `slurm: SLURM_STEP_ID="batch": not a non-negative decimal number`},
		{batchEnv, []string{"SLURM_CPUS_ON_NODE=99999999999999"}, `slurm: SLURM_CPUS_ON_NODE="99999999999999": number too large`},
		{batchEnv, []string{"SLURM_MEM_PER_NODE=18446744073709551615"},
			`slurm: SLURM_MEM_PER_NODE="18446744073709551615": too many MiB to count in bytes`},
		{batchEnv, []string{"SLURM_JOB_CPUS_PER_NODE=32(2)"},
			`slurm: SLURM_JOB_CPUS_PER_NODE="32(2)": "32(2)" is not COUNT or COUNT(xREPEAT)`},
		{batchEnv, []string{"SLURM_JOB_CPUS_PER_NODE=32(x0)"},
			`slurm: SLURM_JOB_CPUS_PER_NODE="32(x0)": "32(x0)" is not COUNT or COUNT(xREPEAT)`},
		{batchEnv, []string{"SLURM_JOB_CPUS_PER_NODE=1,,1"},
			`slurm: SLURM_JOB_CPUS_PER_NODE="1,,1": "" is not COUNT or COUNT(xREPEAT)`},
		{batchEnv, []string{"SLURM_JOB_CPUS_PER_NODE=1(x99999999)"},
			`slurm: SLURM_JOB_CPUS_PER_NODE="1(x99999999)": more than 1000000 entries`},
		{batchEnv, []string{"SLURM_JOB_GPUS=0,x"}, `slurm: SLURM_JOB_GPUS="0,x": "x" is not a GPU index or range`},
		{batchEnv, []string{"SLURM_JOB_GPUS=3-1"}, `slurm: SLURM_JOB_GPUS="3-1": "3-1" is not a GPU index or range`},
		{batchEnv, []string{"SLURM_JOB_END_TIME=99999999999999"}, `slurm: SLURM_JOB_END_TIME="99999999999999": not a Unix time`},
		{batchEnv, []string{"SLURM_JOB_NODELIST=node[2-1]"},
			`slurm: SLURM_JOB_NODELIST="node[2-1]": bad hostlist at byte 5: range "2-1" runs backwards (2 > 1)`},
	} {
		j, err := FromEnv(lookupOf(tc.env, tc.edits...))
		var ee *EnvError
		if j != nil || !errors.As(err, &ee) || !errors.Is(err, ErrBadEnv) {
			t.Errorf("%v: FromEnv = %v, %v; want an *EnvError", tc.edits, j, err)
			continue
		}
		if got := err.Error(); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.edits, err, tc.want)
		}
	}
}

func TestFromEnvBadNodelistWrapsHostlistError(t *testing.T) {
	_, err := FromEnv(lookupOf(taskEnv, "SLURM_STEP_NODELIST=node[1-"))
	var he *HostlistError
	if !errors.As(err, &he) || !errors.Is(err, ErrBadHostlist) || !errors.Is(err, ErrBadEnv) {
		t.Fatalf("got %v, want an error wrapping both ErrBadEnv and a *HostlistError", err)
	}
	if !strings.Contains(err.Error(), "SLURM_STEP_NODELIST") {
		t.Errorf("error %q does not name the variable", err)
	}
}

func TestFromEnvNilLookup(t *testing.T) {
	t.Setenv("SLURM_JOB_ID", "42")
	t.Setenv("SLURM_STEP_ID", "3")
	j, err := FromEnv(nil)
	if err != nil || j.RendezvousKey() != "42.3" {
		t.Errorf("FromEnv(nil) = %+v, %v", j, err)
	}
}
