package launcher_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/launcher"
	"github.com/raygo/raygo/slurm"
)

// env is an injected environment for DetectRole.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// with returns a copy of e with kv ("K=V" or "K=" to set empty, "-K" to
// delete) applied.
func (e env) with(kv ...string) env {
	out := maps.Clone(e)
	for _, s := range kv {
		if k, ok := strings.CutPrefix(s, "-"); ok {
			delete(out, k)
			continue
		}
		k, v, _ := strings.Cut(s, "=")
		out[k] = v
	}
	return out
}

// noManual is a command line that gives no role.
var noManual = launcher.Manual{Rank: -1}

func detect(t *testing.T, m launcher.Manual, e env) launcher.Role {
	t.Helper()
	r, err := launcher.DetectRole(m, e.lookup)
	if err != nil {
		t.Fatalf("DetectRole: %v", err)
	}
	return r
}

func detectErr(t *testing.T, m launcher.Manual, e env, want ...string) error {
	t.Helper()
	_, err := launcher.DetectRole(m, e.lookup)
	if err == nil {
		t.Fatalf("DetectRole succeeded, want an error mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	return err
}

// slurmStep is what slurmstepd sets for task 1 of
// `srun -N3 --ntasks-per-node=1 --cpus-per-task=16 --mem-per-cpu=4G --gpus-per-node=2`
// in job 4242 (Slurm 23.11).
var slurmStep = env{
	"SLURM_JOB_ID":              "4242",
	"SLURM_JOBID":               "4242",
	"SLURM_STEP_ID":             "0",
	"SLURM_STEPID":              "0",
	"SLURM_JOB_NAME":            "pipeline",
	"SLURM_JOB_PARTITION":       "gpu",
	"SLURM_SUBMIT_DIR":          "/home/alice/run42",
	"SLURMD_NODENAME":           "gpu002",
	"SLURM_JOB_NODELIST":        "gpu[001-003]",
	"SLURM_NODELIST":            "gpu[001-003]",
	"SLURM_STEP_NODELIST":       "gpu[001-003]",
	"SLURM_JOB_NUM_NODES":       "3",
	"SLURM_NNODES":              "3",
	"SLURM_STEP_NUM_NODES":      "3",
	"SLURM_NODEID":              "1",
	"SLURM_PROCID":              "1",
	"SLURM_LOCALID":             "0",
	"SLURM_NTASKS":              "3",
	"SLURM_NPROCS":              "3",
	"SLURM_STEP_NUM_TASKS":      "3",
	"SLURM_TASKS_PER_NODE":      "1(x3)",
	"SLURM_STEP_TASKS_PER_NODE": "1(x3)",
	"SLURM_CPUS_ON_NODE":        "32",
	"SLURM_CPUS_PER_TASK":       "16",
	"SLURM_JOB_CPUS_PER_NODE":   "32(x3)",
	"SLURM_MEM_PER_CPU":         "4096",
	"SLURM_GPUS_ON_NODE":        "2",
	"SLURM_STEP_GPUS":           "2,3",
	"SLURM_JOB_GPUS":            "2,3",
	"CUDA_VISIBLE_DEVICES":      "2,3",
	"SLURM_JOB_START_TIME":      "1700000000",
	"SLURM_JOB_END_TIME":        "1700007200",
	"TMPDIR":                    "/tmp",
	"HOSTNAME":                  "gpu002",
}

func TestDetectRoleSlurm(t *testing.T) {
	r := detect(t, noManual, slurmStep)
	if r.System != launcher.SystemSlurm || r.Rank != 1 || r.WorldSize != 3 {
		t.Errorf("role %s rank %d of %d, want slurm rank 1 of 3", r.System, r.Rank, r.WorldSize)
	}
	if r.Key != "slurm-4242.0" {
		t.Errorf("key %q, want slurm-4242.0 (job.step)", r.Key)
	}
	if want := []string{"gpu001", "gpu002", "gpu003"}; !reflect.DeepEqual(r.Hosts, want) {
		t.Errorf("hosts %v, want %v", r.Hosts, want)
	}
	if r.Head != "" {
		t.Errorf("head %q: under Slurm the head is found through the rendezvous", r.Head)
	}
	if r.Slurm == nil || r.Slurm.JobID != "4242" || r.Slurm.CPUsPerTask != 16 {
		t.Errorf("Slurm job %+v not kept in the role", r.Slurm)
	}
	want := map[string]string{"system": "slurm", "job": "4242", "node-name": "gpu002", "node-index": "1", "partition": "gpu"}
	if !reflect.DeepEqual(r.Labels, want) {
		t.Errorf("labels %v, want %v", r.Labels, want)
	}

	// Another step of the same job is another launch.
	if r2 := detect(t, noManual, slurmStep.with("SLURM_STEP_ID=1", "SLURM_STEPID=1")); r2.Key == r.Key {
		t.Errorf("steps 0 and 1 share key %q", r.Key)
	}
	// Rank 0 of the same step shares the key.
	r0 := detect(t, noManual, slurmStep.with("SLURM_PROCID=0", "SLURM_NODEID=0", "SLURMD_NODENAME=gpu001"))
	if r0.Key != r.Key || r0.Rank != 0 {
		t.Errorf("rank 0: key %q rank %d, want key %q rank 0", r0.Key, r0.Rank, r.Key)
	}
	// The same job and step on another Slurm cluster is another launch.
	ca := detect(t, noManual, slurmStep.with("SLURM_CLUSTER_NAME=alpha"))
	cb := detect(t, noManual, slurmStep.with("SLURM_CLUSTER_NAME=beta"))
	if ca.Key == cb.Key || ca.Key == r.Key || !strings.Contains(ca.Key, "alpha") {
		t.Errorf("clusters alpha and beta: keys %q and %q", ca.Key, cb.Key)
	}
}

func TestDetectRoleSlurmErrors(t *testing.T) {
	t.Run("job without step", func(t *testing.T) {
		// The batch script, or a shell from salloc: no SLURM_STEP_ID.
		batch := slurmStep.with("-SLURM_STEP_ID", "-SLURM_STEPID", "-SLURM_STEP_NODELIST", "-SLURM_STEP_NUM_NODES",
			"-SLURM_STEP_NUM_TASKS", "-SLURM_STEP_TASKS_PER_NODE", "-SLURM_STEP_GPUS")
		detectErr(t, noManual, batch, "not in a job step", "srun")
	})
	t.Run("two tasks per node", func(t *testing.T) {
		two := slurmStep.with("SLURM_NTASKS=6", "SLURM_NPROCS=6", "SLURM_STEP_NUM_TASKS=6",
			"SLURM_TASKS_PER_NODE=2(x3)", "SLURM_STEP_TASKS_PER_NODE=2(x3)", "SLURM_PROCID=3")
		detectErr(t, noManual, two, "6 tasks on 3 nodes", "--ntasks-per-node=1")
	})
	t.Run("contradiction", func(t *testing.T) {
		// slurm.FromEnv's errors come through, naming both variables.
		bad := slurmStep.with("SLURM_PROCID=3")
		err := detectErr(t, noManual, bad, "SLURM_PROCID", "SLURM_STEP_NUM_TASKS")
		var ee *slurm.EnvError
		if !errors.Is(err, slurm.ErrBadEnv) || !errors.As(err, &ee) {
			t.Errorf("%v: want a *slurm.EnvError wrapping slurm.ErrBadEnv", err)
		} else if ee.Var != "SLURM_PROCID" || ee.Other != "SLURM_STEP_NUM_TASKS" {
			t.Errorf("EnvError names %s and %s", ee.Var, ee.Other)
		}
		detectErr(t, noManual, slurmStep.with("SLURM_STEP_NODELIST=gpu[001-002]"), "SLURM_STEP_NODELIST", "2 nodes")
		detectErr(t, noManual, slurmStep.with("SLURM_STEP_NODELIST=gpu[003-001]"), "SLURM_STEP_NODELIST")
	})
}

func TestDetectRoleOpenMPI(t *testing.T) {
	ompi := env{
		"OMPI_COMM_WORLD_RANK":       "1",
		"OMPI_COMM_WORLD_SIZE":       "4",
		"OMPI_COMM_WORLD_LOCAL_RANK": "0",
		"OMPI_MCA_orte_hnp_uri":      "2919825408.0;tcp://10.1.0.5,192.168.7.5:40321",
		"OMPI_MCA_ess_base_jobid":    "2919825409",
		"PMIX_NAMESPACE":             "2919825409",
		"PMIX_RANK":                  "1",
	}
	r := detect(t, noManual, ompi)
	if r.System != launcher.SystemMPI || r.Rank != 1 || r.WorldSize != 4 || r.Head != "" {
		t.Errorf("role %+v, want mpirun rank 1 of 4 without a head", r)
	}
	if !strings.HasPrefix(r.Key, "mpi-") || strings.ContainsAny(r.Key, ";:/,") {
		t.Errorf("key %q: want mpi- and only file-name characters", r.Key)
	}
	if r0 := detect(t, noManual, ompi.with("OMPI_COMM_WORLD_RANK=0", "PMIX_RANK=0")); r0.Key != r.Key {
		t.Errorf("ranks 0 and 1 of one mpirun have keys %q and %q", r0.Key, r.Key)
	}
	other := ompi.with("OMPI_MCA_orte_hnp_uri=2919890944.0;tcp://10.1.0.5:40999", "OMPI_MCA_ess_base_jobid=2919890945",
		"PMIX_NAMESPACE=2919890945")
	if r2 := detect(t, noManual, other); r2.Key == r.Key {
		t.Errorf("two mpiruns share key %q", r.Key)
	}
	if r3 := detect(t, noManual, ompi.with("RAYGO_LAUNCH_KEY=run 42")); r3.Key != "mpi-run_42" {
		t.Errorf("RAYGO_LAUNCH_KEY: key %q, want mpi-run_42", r3.Key)
	}
	if r4 := detect(t, noManual, ompi.with("RAYGO_HEAD=10.1.0.5:6380")); r4.Head != "10.1.0.5:6380" {
		t.Errorf("RAYGO_HEAD: head %q", r4.Head)
	}
	// Open MPI 5 (PRRTE) has no orte_hnp_uri: the PMIx namespace names the launch.
	prte := env{"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3", "PMIX_NAMESPACE": "prterun-login1-81234@1", "PMIX_RANK": "2"}
	if r5 := detect(t, noManual, prte); r5.Key != "mpi-prterun-login1-81234_1" || r5.Rank != 2 {
		t.Errorf("Open MPI 5: key %q rank %d", r5.Key, r5.Rank)
	}

	detectErr(t, noManual, ompi.with("OMPI_COMM_WORLD_RANK=4"), "OMPI_COMM_WORLD_RANK=\"4\"", "OMPI_COMM_WORLD_SIZE=\"4\"")
	detectErr(t, noManual, ompi.with("OMPI_COMM_WORLD_SIZE=four"), "OMPI_COMM_WORLD_SIZE")
}

func TestDetectRolePMI(t *testing.T) {
	// MPICH's Hydra: PMI_FD is a descriptor number and names no launch.
	hydra := env{"PMI_RANK": "2", "PMI_SIZE": "3", "PMI_FD": "6", "MPI_LOCALNRANKS": "1", "MPI_LOCALRANKID": "0"}
	err := detectErr(t, noManual, hydra, "RAYGO_LAUNCH_KEY")
	if errors.Is(err, launcher.ErrNoRole) {
		t.Errorf("under mpiexec: %v is ErrNoRole, want advice on RAYGO_LAUNCH_KEY", err)
	}
	r := detect(t, noManual, hydra.with("RAYGO_LAUNCH_KEY=run-4711-1700000000"))
	if r.System != launcher.SystemMPI || r.Rank != 2 || r.WorldSize != 3 || r.Key != "mpi-run-4711-1700000000" {
		t.Errorf("role %+v, want mpirun rank 2 of 3, key mpi-run-4711-1700000000", r)
	}
	// Proxies on different nodes have different PMI_PORTs: the key must not change.
	r1 := detect(t, noManual, hydra.with("RAYGO_LAUNCH_KEY=run-4711-1700000000", "PMI_RANK=0", "-PMI_FD", "PMI_PORT=node7:41234"))
	if r1.Key != r.Key {
		t.Errorf("ranks of one launch have keys %q and %q", r.Key, r1.Key)
	}
	detectErr(t, noManual, hydra.with("PMI_SIZE=", "RAYGO_LAUNCH_KEY=k"), "PMI_SIZE")
}

func TestDetectRoleYARN(t *testing.T) {
	yarn := env{
		"CONTAINER_ID":     "container_e17_1410901177871_0001_01_000005",
		"NM_HOST":          "nm3.example.org",
		"NM_PORT":          "45454",
		"RAYGO_RANK":       "2",
		"RAYGO_WORLD_SIZE": "4",
	}
	r := detect(t, noManual, yarn)
	if r.System != launcher.SystemYARN || r.Rank != 2 || r.WorldSize != 4 {
		t.Errorf("role %+v, want yarn rank 2 of 4", r)
	}
	if r.Key != "yarn-1410901177871_0001_01" {
		t.Errorf("key %q, want yarn-1410901177871_0001_01 (the application attempt)", r.Key)
	}
	if r.Labels["container"] != yarn["CONTAINER_ID"] || r.Labels["nm-host"] != "nm3.example.org" {
		t.Errorf("labels %v", r.Labels)
	}
	// Another container of the same attempt shares the key ...
	if r0 := detect(t, noManual, yarn.with("CONTAINER_ID=container_e17_1410901177871_0001_01_000002", "RAYGO_RANK=0")); r0.Key != r.Key {
		t.Errorf("containers of one attempt: keys %q and %q", r0.Key, r.Key)
	}
	// ... also without the epoch (Hadoop 2.x IDs) ...
	if r1 := detect(t, noManual, yarn.with("CONTAINER_ID=container_1410901177871_0001_01_000003")); r1.Key != r.Key {
		t.Errorf("container ID without epoch: key %q, want %q", r1.Key, r.Key)
	}
	// ... and a second attempt or another application does not.
	for _, cid := range []string{"container_e17_1410901177871_0001_02_000005", "container_e17_1410901177871_0002_01_000005"} {
		if r2 := detect(t, noManual, yarn.with("CONTAINER_ID="+cid)); r2.Key == r.Key {
			t.Errorf("%s shares key %q with attempt 0001_01", cid, r.Key)
		}
	}
	detectErr(t, noManual, yarn.with("-RAYGO_RANK"), yarn["CONTAINER_ID"], "RAYGO_RANK")
	detectErr(t, noManual, yarn.with("RAYGO_RANK=4"), "RAYGO_RANK=\"4\"", "RAYGO_WORLD_SIZE=\"4\"")
	// Without NM_HOST it is not taken for YARN.
	_, err := launcher.DetectRole(noManual, yarn.with("-NM_HOST").lookup)
	if !errors.Is(err, launcher.ErrNoRole) {
		t.Errorf("CONTAINER_ID without NM_HOST: %v, want ErrNoRole", err)
	}
}

func TestDetectRoleKubernetes(t *testing.T) {
	k8s := env{
		"JOB_COMPLETION_INDEX": "2",
		"RAYGO_WORLD_SIZE":     "4",
		"RAYGO_HEAD":           "train-0.train:6380",
		"HOSTNAME":             "train-2",
	}
	r := detect(t, noManual, k8s)
	if r.System != launcher.SystemK8s || r.Rank != 2 || r.WorldSize != 4 || r.Head != "train-0.train:6380" {
		t.Errorf("role %+v, want kubernetes rank 2 of 4 with head train-0.train:6380", r)
	}
	if r.Labels["rank"] != "2" || r.Labels["system"] != "kubernetes" {
		t.Errorf("labels %v", r.Labels)
	}
	// Rank 0 may leave RAYGO_HEAD out (it then publishes through the
	// rendezvous directory); the others need it.
	if r0 := detect(t, noManual, k8s.with("JOB_COMPLETION_INDEX=0", "-RAYGO_HEAD")); r0.Rank != 0 {
		t.Errorf("rank 0 without RAYGO_HEAD: %+v", r0)
	}
	detectErr(t, noManual, k8s.with("-RAYGO_HEAD"), "RAYGO_HEAD")
	detectErr(t, noManual, k8s.with("JOB_COMPLETION_INDEX=4"), "RAYGO_WORLD_SIZE=\"4\"", "JOB_COMPLETION_INDEX=4")
	detectErr(t, noManual, k8s.with("-RAYGO_WORLD_SIZE"), "RAYGO_WORLD_SIZE")
	detectErr(t, noManual, k8s.with("JOB_COMPLETION_INDEX=x"), "JOB_COMPLETION_INDEX=\"x\"")
}

func TestDetectRoleManual(t *testing.T) {
	r := detect(t, launcher.Manual{Rank: 1, WorldSize: 3, Key: "run 7"}, nil)
	if r.System != launcher.SystemManual || r.Rank != 1 || r.WorldSize != 3 || r.Key != "manual-run_7" || r.Head != "" {
		t.Errorf("--rank 1 --world-size 3 --key 'run 7': %+v", r)
	}
	r = detect(t, launcher.Manual{Rank: 0, WorldSize: 2, Head: "127.0.0.1:6380"}, nil)
	if r.Head != "127.0.0.1:6380" || r.Key != "manual-127.0.0.1_6380" {
		t.Errorf("--head: %+v", r)
	}
	// The command line wins over the launch system's environment.
	if r = detect(t, launcher.Manual{Rank: 2, WorldSize: 3, Key: "k"}, slurmStep); r.System != launcher.SystemManual || r.Rank != 2 {
		t.Errorf("--rank under srun: %+v", r)
	}
	detectErr(t, launcher.Manual{Rank: 1, WorldSize: 3}, nil, "--head", "--key")
	detectErr(t, launcher.Manual{Rank: 3, WorldSize: 3, Key: "k"}, nil, "--rank 3 --world-size 3")
	detectErr(t, launcher.Manual{Rank: 1, Key: "k"}, nil, "--world-size 0")
	detectErr(t, launcher.Manual{Rank: -1, WorldSize: 3, Key: "k"}, nil, "--rank -1")

	_, err := launcher.DetectRole(noManual, env{"HOME": "/home/alice"}.lookup)
	if !errors.Is(err, launcher.ErrNoRole) {
		t.Errorf("no launcher: %v, want ErrNoRole", err)
	}
}

func TestDetectRoleNodesFile(t *testing.T) {
	me, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nodes := write("nodes", "# head first\nother-a.example.org\n\n"+me+"   # this host\nother-b.example.org\n")
	r := detect(t, launcher.Manual{Rank: -1, NodesFile: nodes, Key: "k"}, nil)
	if r.Rank != 1 || r.WorldSize != 3 || r.Key != "manual-k" {
		t.Errorf("rank %d of %d key %q, want rank 1 of 3 (the line naming %s) key manual-k", r.Rank, r.WorldSize, r.Key, me)
	}
	if want := []string{"other-a.example.org", me, "other-b.example.org"}; !reflect.DeepEqual(r.Hosts, want) {
		t.Errorf("hosts %v, want %v", r.Hosts, want)
	}
	// --rank wins over the host name.
	if r = detect(t, launcher.Manual{Rank: 2, NodesFile: nodes}, nil); r.Rank != 2 {
		t.Errorf("--rank 2: rank %d", r.Rank)
	}
	// Without --key every rank uses the file's path.
	if r.Key != detect(t, launcher.Manual{Rank: 0, NodesFile: nodes}, nil).Key {
		t.Error("ranks of one nodes file have different keys")
	}

	dup := write("dup", me+"\nother-a.example.org\n"+me+"\n")
	detectErr(t, launcher.Manual{Rank: -1, NodesFile: dup}, nil, "more than once", "--rank")
	if r = detect(t, launcher.Manual{Rank: 2, NodesFile: dup}, nil); r.Rank != 2 || r.WorldSize != 3 {
		t.Errorf("duplicates with --rank 2: %+v", r)
	}
	absent := write("absent", "other-a.example.org\nother-b.example.org\n")
	detectErr(t, launcher.Manual{Rank: -1, NodesFile: absent}, nil, "does not name this host", me)
	detectErr(t, launcher.Manual{Rank: 2, NodesFile: absent}, nil, "--rank 2", "2 hosts")
	detectErr(t, launcher.Manual{Rank: -1, NodesFile: write("empty", "# nothing\n\n")}, nil, "names no hosts")
	detectErr(t, launcher.Manual{Rank: -1, NodesFile: filepath.Join(dir, "missing")}, nil, "nodes file")
}
