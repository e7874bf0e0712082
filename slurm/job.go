package slurm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrNotInSlurm is returned by FromEnv outside a Slurm job.
var ErrNotInSlurm = errors.New("slurm: not in a Slurm job (SLURM_JOB_ID is not set)")

// ErrBadEnv is wrapped by every *EnvError.
var ErrBadEnv = errors.New("slurm: bad Slurm environment")

// EnvError is a Slurm environment variable that is malformed, or that
// contradicts another one.
type EnvError struct {
	Var   string // the variable at fault, e.g. "SLURM_NODEID"
	Value string
	// Other and OtherValue name the variable that Var contradicts; Other
	// is "" when Var is simply malformed.
	Other      string
	OtherValue string
	Problem    string // what is wrong
	Err        error  // the underlying error, e.g. a *HostlistError; may be nil
}

func (e *EnvError) Error() string {
	if e.Other == "" {
		return fmt.Sprintf("slurm: %s=%q: %s", e.Var, e.Value, e.Problem)
	}
	return fmt.Sprintf("slurm: %s=%q contradicts %s=%q: %s", e.Var, e.Value, e.Other, e.OtherValue, e.Problem)
}

// Unwrap makes errors.Is(err, ErrBadEnv) true, and exposes Err.
func (e *EnvError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBadEnv}
	}
	return []error{ErrBadEnv, e.Err}
}

// Job is what a process learns about its Slurm job and step from the
// SLURM_* variables that slurmstepd sets. Counts and IDs are 0, and
// strings "", when Slurm did not set them.
//
// Slurm sets different variables in different places: inside a job step
// (a task started by srun) everything below is set; in the batch script,
// or a shell from salloc, there is no step, so StepID is "", Nodes is the
// job's nodes, and most per-task values are missing.
type Job struct {
	JobID     string // SLURM_JOB_ID (older name SLURM_JOBID), decimal
	StepID    string // SLURM_STEP_ID (SLURM_STEPID), decimal; "" outside a step
	Name      string // SLURM_JOB_NAME
	Partition string // SLURM_JOB_PARTITION
	SubmitDir string // SLURM_SUBMIT_DIR: where sbatch, salloc or srun ran
	TmpDir    string // SLURM_TMPDIR if set (some sites set it), else TMPDIR
	NodeName  string // SLURMD_NODENAME: this node's Slurm name

	// JobNodes are the job's nodes (SLURM_JOB_NODELIST, or SLURM_NODELIST),
	// expanded, in Slurm's order.
	JobNodes []string
	// Nodes are the nodes of this step (SLURM_STEP_NODELIST), or JobNodes
	// outside a step; NodeID indexes them.
	Nodes []string
	// NumNodes is len(Nodes), checked against SLURM_STEP_NUM_NODES,
	// SLURM_NNODES or SLURM_JOB_NUM_NODES.
	NumNodes int
	NodeID   int // SLURM_NODEID: this node's index in Nodes
	ProcID   int // SLURM_PROCID: this task's rank, 0..NTasks-1
	LocalID  int // SLURM_LOCALID: this task's index among the step's tasks on this node
	// NTasks is the number of tasks: of the step (SLURM_STEP_NUM_TASKS) in
	// a step, else of the job (SLURM_NTASKS, SLURM_NPROCS).
	NTasks int
	// TasksPerNode is the number of tasks on each of Nodes
	// (SLURM_STEP_TASKS_PER_NODE in a step, else SLURM_TASKS_PER_NODE);
	// nil if not set.
	TasksPerNode []int

	CPUsOnNode  int // SLURM_CPUS_ON_NODE: CPUs this job has on this node
	CPUsPerTask int // SLURM_CPUS_PER_TASK: set only when the job asked for it
	// JobCPUsPerNode is SLURM_JOB_CPUS_PER_NODE (Slurm writes
	// "32(x2),16"), one count for each of JobNodes; nil if not set.
	JobCPUsPerNode []int

	MemPerNode uint64 // bytes: SLURM_MEM_PER_NODE (MiB), set when the job asked for --mem
	MemPerCPU  uint64 // bytes: SLURM_MEM_PER_CPU (MiB), set when the job asked for --mem-per-cpu

	GPUsOnNode int // SLURM_GPUS_ON_NODE: GPUs this job has on this node
	// JobGPUs (SLURM_JOB_GPUS) are the indices of the job's GPUs on this
	// node, and StepGPUs (SLURM_STEP_GPUS) those of this task's step, which
	// with --gpus-per-task are only this task's; nil if not set.
	JobGPUs, StepGPUs []int
	// CUDAVisibleDevices is CUDA_VISIBLE_DEVICES split at commas: nil when
	// unset, empty (not nil) when set to "" (no GPU visible).
	CUDAVisibleDevices []string
	// GPUNoDevFiles is true when CUDA_VISIBLE_DEVICES is "NoDevFiles",
	// which Slurm writes when the job has GPUs but gres.conf names no
	// device files for them, so it cannot say which ones.
	GPUNoDevFiles bool

	// StartTime and EndTime come from SLURM_JOB_START_TIME and
	// SLURM_JOB_END_TIME (Unix seconds), which Slurm 23.02 and later set;
	// zero otherwise. EndTime is when the time limit runs out.
	StartTime, EndTime time.Time
	// TimeLimit is EndTime - StartTime, or 0 when either is unknown.
	TimeLimit time.Duration
}

// RendezvousKey names this job step, the same for every task of the step
// and different for every other step: JobID + "." + StepID. Outside a step
// it uses "batch", Slurm's name for the batch script's step.
func (j *Job) RendezvousKey() string {
	step := j.StepID
	if step == "" {
		step = "batch"
	}
	return j.JobID + "." + step
}

// FromEnv reads the Slurm job this process runs in from its environment,
// looked up by lookup (nil means os.LookupEnv). Outside a job (neither
// SLURM_JOB_ID nor SLURM_JOBID set) it returns nil, ErrNotInSlurm.
//
// Empty variables count as unset, except CUDA_VISIBLE_DEVICES. Errors are
// *EnvError (wrapping ErrBadEnv) and name the variables involved: a
// malformed number or list, a node list that does not expand (the error
// also wraps the *HostlistError), or two variables that contradict each
// other, such as SLURM_NODEID >= SLURM_NNODES, SLURM_PROCID >=
// SLURM_NTASKS, or a node list whose length is not SLURM_NNODES.
func FromEnv(lookup func(string) (string, bool)) (*Job, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	e := env{lookup: lookup}
	j := &Job{}

	idVar := "SLURM_JOB_ID"
	j.JobID = e.get(idVar)
	if j.JobID == "" {
		idVar = "SLURM_JOBID"
		if j.JobID = e.get(idVar); j.JobID == "" {
			return nil, ErrNotInSlurm
		}
	}
	if _, err := e.uint(idVar); err != nil {
		return nil, err
	}
	if old := e.get("SLURM_JOBID"); idVar == "SLURM_JOB_ID" && old != "" && old != j.JobID {
		return nil, e.contradiction("SLURM_JOBID", "SLURM_JOB_ID", "the two name the same job")
	}
	stepVar := "SLURM_STEP_ID"
	if e.get(stepVar) == "" {
		stepVar = "SLURM_STEPID"
	}
	if j.StepID = e.get(stepVar); j.StepID != "" {
		if _, err := e.uint(stepVar); err != nil {
			return nil, err
		}
	}
	j.Name = e.get("SLURM_JOB_NAME")
	j.Partition = e.get("SLURM_JOB_PARTITION")
	j.SubmitDir = e.get("SLURM_SUBMIT_DIR")
	if j.TmpDir = e.get("SLURM_TMPDIR"); j.TmpDir == "" {
		j.TmpDir = e.get("TMPDIR")
	}
	j.NodeName = e.get("SLURMD_NODENAME")

	if err := e.nodes(j); err != nil {
		return nil, err
	}
	if err := e.tasks(j); err != nil {
		return nil, err
	}
	if err := e.resources(j); err != nil {
		return nil, err
	}
	if err := e.times(j); err != nil {
		return nil, err
	}
	return j, nil
}

// env reads and checks variables for FromEnv.
type env struct {
	lookup func(string) (string, bool)
}

// get returns the trimmed value of name, "" if unset.
func (e env) get(name string) string {
	v, _ := e.lookup(name)
	return strings.TrimSpace(v)
}

// first returns the first of names that is set, and its value.
func (e env) first(names ...string) (string, string) {
	for _, n := range names {
		if v := e.get(n); v != "" {
			return n, v
		}
	}
	return "", ""
}

func (e env) malformed(name, problem string, err error) *EnvError {
	return &EnvError{Var: name, Value: e.get(name), Problem: problem, Err: err}
}

// badHostlist reports the *HostlistError err from expanding name.
func (e env) badHostlist(name string, err error) *EnvError {
	problem := err.Error()
	var he *HostlistError
	if errors.As(err, &he) {
		problem = fmt.Sprintf("bad hostlist at byte %d: %s", he.Offset, he.Problem)
	}
	return e.malformed(name, problem, err)
}

func (e env) contradiction(name, other, problem string) *EnvError {
	return &EnvError{Var: name, Value: e.get(name), Other: other, OtherValue: e.get(other), Problem: problem}
}

// uint parses name as a non-negative decimal number; 0 if unset.
func (e env) uint(name string) (uint64, error) {
	v := e.get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, e.malformed(name, "not a non-negative decimal number", nil)
	}
	return n, nil
}

// int parses name as a count or index that fits an int; 0 if unset.
func (e env) int(name string) (int, error) {
	n, err := e.uint(name)
	if err != nil {
		return 0, err
	}
	if n > MaxHosts*1024 {
		return 0, e.malformed(name, "number too large", nil)
	}
	return int(n), nil
}

// nodes fills in JobNodes, Nodes, NumNodes, NodeID and JobCPUsPerNode.
func (e env) nodes(j *Job) error {
	jobListVar, jobList := e.first("SLURM_JOB_NODELIST", "SLURM_NODELIST")
	if jobListVar != "" {
		hosts, err := Expand(jobList)
		if err != nil {
			return e.badHostlist(jobListVar, err)
		}
		j.JobNodes = hosts
		// SLURM_NNODES is the job's count only outside a step.
		counts := []string{"SLURM_JOB_NUM_NODES"}
		if e.get("SLURM_STEP_NODELIST") == "" {
			counts = append(counts, "SLURM_NNODES")
		}
		if err := e.checkLen(jobListVar, len(hosts), counts...); err != nil {
			return err
		}
	}

	listVar, counts := jobListVar, []string{"SLURM_NNODES", "SLURM_JOB_NUM_NODES"}
	j.Nodes = j.JobNodes
	if step := e.get("SLURM_STEP_NODELIST"); step != "" {
		hosts, err := Expand(step)
		if err != nil {
			return e.badHostlist("SLURM_STEP_NODELIST", err)
		}
		j.Nodes = hosts
		listVar, counts = "SLURM_STEP_NODELIST", []string{"SLURM_NNODES", "SLURM_STEP_NUM_NODES"}
		if err := e.checkLen(listVar, len(hosts), counts...); err != nil {
			return err
		}
	}
	// The count the node ID is checked against, by the name a user knows.
	countVar, _ := e.first(counts...)
	if listVar != "" {
		j.NumNodes = len(j.Nodes)
		if countVar == "" {
			countVar = listVar
		}
	} else if countVar != "" { // no node list at all: take the count on trust
		n, err := e.int(countVar)
		if err != nil {
			return err
		}
		j.NumNodes = n
	}

	var err error
	if j.NodeID, err = e.int("SLURM_NODEID"); err != nil {
		return err
	}
	if countVar != "" && e.get("SLURM_NODEID") != "" && j.NodeID >= j.NumNodes {
		return e.contradiction("SLURM_NODEID", countVar,
			fmt.Sprintf("node ID %d is not below the %d nodes", j.NodeID, j.NumNodes))
	}

	if v := e.get("SLURM_JOB_CPUS_PER_NODE"); v != "" {
		if j.JobCPUsPerNode, err = e.counts("SLURM_JOB_CPUS_PER_NODE"); err != nil {
			return err
		}
		if jobListVar != "" && len(j.JobCPUsPerNode) != len(j.JobNodes) {
			return e.contradiction("SLURM_JOB_CPUS_PER_NODE", jobListVar,
				fmt.Sprintf("%d CPU counts for %d nodes", len(j.JobCPUsPerNode), len(j.JobNodes)))
		}
	}
	return nil
}

// checkLen checks that each of the count variables that is set equals n,
// the length of the list in listVar.
func (e env) checkLen(listVar string, n int, counts ...string) error {
	for _, c := range counts {
		if e.get(c) == "" {
			continue
		}
		want, err := e.int(c)
		if err != nil {
			return err
		}
		if want != n {
			return e.contradiction(listVar, c, fmt.Sprintf("the list has %d nodes, not %d", n, want))
		}
	}
	return nil
}

// tasks fills in ProcID, LocalID, NTasks and TasksPerNode.
func (e env) tasks(j *Job) error {
	inStep := e.get("SLURM_STEP_NODELIST") != "" || j.StepID != ""
	var err error
	if j.ProcID, err = e.int("SLURM_PROCID"); err != nil {
		return err
	}
	if j.LocalID, err = e.int("SLURM_LOCALID"); err != nil {
		return err
	}
	ntasksVar, _ := e.first("SLURM_NTASKS", "SLURM_NPROCS")
	tpnVar := "SLURM_TASKS_PER_NODE"
	if inStep {
		ntasksVar, _ = e.first("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")
		if e.get("SLURM_STEP_TASKS_PER_NODE") != "" {
			tpnVar = "SLURM_STEP_TASKS_PER_NODE"
		}
	}
	if ntasksVar != "" {
		if j.NTasks, err = e.int(ntasksVar); err != nil {
			return err
		}
		if e.get("SLURM_PROCID") != "" && j.ProcID >= j.NTasks {
			return e.contradiction("SLURM_PROCID", ntasksVar,
				fmt.Sprintf("rank %d is not below the %d tasks", j.ProcID, j.NTasks))
		}
	}
	if e.get(tpnVar) == "" {
		return nil
	}
	if j.TasksPerNode, err = e.counts(tpnVar); err != nil {
		return err
	}
	nodesVar := "SLURM_STEP_NODELIST"
	if e.get(nodesVar) == "" {
		nodesVar, _ = e.first("SLURM_JOB_NODELIST", "SLURM_NODELIST")
	}
	if nodesVar != "" && len(j.TasksPerNode) != len(j.Nodes) {
		return e.contradiction(tpnVar, nodesVar,
			fmt.Sprintf("%d task counts for %d nodes", len(j.TasksPerNode), len(j.Nodes)))
	}
	if tpnVar == "SLURM_STEP_TASKS_PER_NODE" && ntasksVar == "SLURM_STEP_NUM_TASKS" {
		sum := 0
		for _, n := range j.TasksPerNode {
			sum += n
		}
		if sum != j.NTasks {
			return e.contradiction(tpnVar, ntasksVar,
				fmt.Sprintf("the counts add up to %d tasks, not %d", sum, j.NTasks))
		}
	}
	if e.get("SLURM_LOCALID") != "" && e.get("SLURM_NODEID") != "" && j.NodeID < len(j.TasksPerNode) &&
		j.LocalID >= j.TasksPerNode[j.NodeID] {
		return e.contradiction("SLURM_LOCALID", tpnVar,
			fmt.Sprintf("local ID %d is not below the %d tasks on node %d", j.LocalID, j.TasksPerNode[j.NodeID], j.NodeID))
	}
	return nil
}

// counts parses Slurm's compressed list of counts, e.g. "32(x2),16" for
// 32, 32, 16.
func (e env) counts(name string) ([]int, error) {
	var out []int
	for _, item := range strings.Split(e.get(name), ",") {
		item = strings.TrimSpace(item)
		value, repeat := item, "1"
		if open := strings.IndexByte(item, '('); open >= 0 {
			if !strings.HasPrefix(item[open:], "(x") || !strings.HasSuffix(item, ")") {
				return nil, e.malformed(name, fmt.Sprintf("%q is not COUNT or COUNT(xREPEAT)", item), nil)
			}
			value, repeat = item[:open], item[open+2:len(item)-1]
		}
		v, err1 := strconv.ParseUint(value, 10, 31)
		r, err2 := strconv.ParseUint(repeat, 10, 31)
		if err1 != nil || err2 != nil || r == 0 {
			return nil, e.malformed(name, fmt.Sprintf("%q is not COUNT or COUNT(xREPEAT)", item), nil)
		}
		if uint64(len(out))+r > MaxHosts {
			return nil, e.malformed(name, fmt.Sprintf("more than %d entries", MaxHosts), nil)
		}
		for range r {
			out = append(out, int(v))
		}
	}
	return out, nil
}

// resources fills in the CPU, memory and GPU fields.
func (e env) resources(j *Job) error {
	var err error
	if j.CPUsOnNode, err = e.int("SLURM_CPUS_ON_NODE"); err != nil {
		return err
	}
	if j.CPUsPerTask, err = e.int("SLURM_CPUS_PER_TASK"); err != nil {
		return err
	}
	if j.MemPerNode, err = e.mebibytes("SLURM_MEM_PER_NODE"); err != nil {
		return err
	}
	if j.MemPerCPU, err = e.mebibytes("SLURM_MEM_PER_CPU"); err != nil {
		return err
	}
	if j.GPUsOnNode, err = e.int("SLURM_GPUS_ON_NODE"); err != nil {
		return err
	}
	if j.JobGPUs, err = e.indices("SLURM_JOB_GPUS"); err != nil {
		return err
	}
	if j.StepGPUs, err = e.indices("SLURM_STEP_GPUS"); err != nil {
		return err
	}
	if v, ok := e.lookup("CUDA_VISIBLE_DEVICES"); ok {
		v = strings.TrimSpace(v)
		switch {
		case v == "NoDevFiles":
			j.GPUNoDevFiles = true
		case v == "":
			j.CUDAVisibleDevices = []string{}
		default:
			for _, d := range strings.Split(v, ",") {
				j.CUDAVisibleDevices = append(j.CUDAVisibleDevices, strings.TrimSpace(d))
			}
		}
	}
	return nil
}

// mebibytes parses name as a number of MiB and returns bytes.
func (e env) mebibytes(name string) (uint64, error) {
	n, err := e.uint(name)
	if err != nil {
		return 0, err
	}
	if n > (^uint64(0))>>20 {
		return 0, e.malformed(name, "too many MiB to count in bytes", nil)
	}
	return n << 20, nil
}

// indices parses a comma-separated list of GPU indices, allowing ranges
// such as "0-3"; nil if unset.
func (e env) indices(name string) ([]int, error) {
	v := e.get(name)
	if v == "" {
		return nil, nil
	}
	var out []int
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return nil, e.malformed(name, fmt.Sprintf("%q is not a GPU index or range", item), nil)
		}
		for i := a; i <= b; i++ {
			out = append(out, int(i))
		}
	}
	return out, nil
}

// times fills in StartTime, EndTime and TimeLimit.
func (e env) times(j *Job) error {
	start, err := e.uint("SLURM_JOB_START_TIME")
	if err != nil {
		return err
	}
	end, err := e.uint("SLURM_JOB_END_TIME")
	if err != nil {
		return err
	}
	const maxUnix = 1 << 40 // year 36812: beyond is not a timestamp
	if start > maxUnix {
		return e.malformed("SLURM_JOB_START_TIME", "not a Unix time", nil)
	}
	if end > maxUnix {
		return e.malformed("SLURM_JOB_END_TIME", "not a Unix time", nil)
	}
	if start > 0 {
		j.StartTime = time.Unix(int64(start), 0)
	}
	if end > 0 {
		j.EndTime = time.Unix(int64(end), 0)
	}
	if start > 0 && end > 0 {
		if end < start {
			return e.contradiction("SLURM_JOB_END_TIME", "SLURM_JOB_START_TIME", "the job ends before it starts")
		}
		j.TimeLimit = time.Duration(end-start) * time.Second
	}
	return nil
}
