package mpi

import (
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/collectives/backend"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseLaunch(t *testing.T) {
	slurmStep := []string{"SLURM_JOB_ID", "41", "SLURM_STEP_ID", "3", "SLURM_PROCID", "2", "SLURM_NTASKS", "4", "SLURMD_NODENAME", "node2"}
	for _, tc := range []struct {
		name       string
		env        []string
		vars       string
		rank, size int
		key        string // "" none, "*" any
	}{
		{"Open MPI mpirun", []string{"OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "3", "OMPI_MCA_ess_base_jobid", "1921777665", "OMPI_MCA_orte_hnp_uri", "1921777664.0;tcp://10.0.0.1:59563"},
			"OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE", 1, 3, "ompi-19217776651921777664.0_tcp___10.0.0.1_59563"},
		// mpirun inside an sbatch script: the batch step's Slurm variables
		// are stale, Open MPI's win.
		{"Open MPI under sbatch", append([]string{"OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4", "OMPI_MCA_ess_base_jobid", "7"}, "SLURM_JOB_ID", "41", "SLURM_PROCID", "0", "SLURM_NTASKS", "1"),
			"OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE", 3, 4, "ompi-7"},
		{"Hydra on one node", []string{"PMI_RANK", "1", "PMI_SIZE", "2", "PMI_FD", "6", "MPI_LOCALNRANKS", "2"},
			"PMI_RANK/PMI_SIZE", 1, 2, "*"},
		{"Hydra on several nodes", []string{"PMI_RANK", "1", "PMI_SIZE", "4", "PMI_FD", "6", "MPI_LOCALNRANKS", "2"},
			"PMI_RANK/PMI_SIZE", 1, 4, ""},
		{"Hydra with a key", []string{"PMI_RANK", "1", "PMI_SIZE", "4", "MPI_LOCALNRANKS", "2", "RAYGO_LAUNCH_KEY", "run 7"},
			"PMI_RANK/PMI_SIZE", 1, 4, "key-run_7"},
		{"srun --mpi=pmi2", append([]string{"PMI_RANK", "2", "PMI_SIZE", "4", "PMI_FD", "5", "PMI_JOBID", "41.3"}, slurmStep...),
			"PMI_RANK/PMI_SIZE", 2, 4, "slurm-41.3"},
		{"srun --mpi=pmix", append([]string{"PMIX_RANK", "2", "PMIX_NAMESPACE", "slurm.pmix.41.3"}, slurmStep...),
			"PMIX_RANK/SLURM_NTASKS", 2, 4, "pmix-slurm.pmix.41.3"},
		{"srun without --mpi", slurmStep, "SLURM_PROCID/SLURM_NTASKS", 2, 4, "slurm-41.3"},
		{"srun, step task count", append([]string{"SLURM_STEP_NUM_TASKS", "3", "SLURM_CLUSTER_NAME", "raygo"}, slurmStep...),
			"SLURM_PROCID/SLURM_STEP_NUM_TASKS", 2, 3, "slurm-raygo-41.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLaunch(envOf(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if l.Vars != tc.vars || l.Rank != tc.rank || l.Size != tc.size {
				t.Errorf("got %s rank %d of %d, want %s rank %d of %d", l.Vars, l.Rank, l.Size, tc.vars, tc.rank, tc.size)
			}
			switch {
			case tc.key == "*" && !strings.HasPrefix(l.Key, "parent-"):
				t.Errorf("key %q, want one naming the parent", l.Key)
			case tc.key != "*" && l.Key != tc.key:
				t.Errorf("key %q, want %q", l.Key, tc.key)
			}
			if l.Node == "" {
				t.Error("no node name")
			}
		})
	}
}

func TestParseLaunchErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"nothing", nil, "not started by mpirun"},
		{"batch script", []string{"SLURM_JOB_ID", "41", "SLURM_PROCID", "0", "SLURM_NTASKS", "4"}, "not started by mpirun"},
		{"rank past size", []string{"OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "3"}, `OMPI_COMM_WORLD_RANK="3" and OMPI_COMM_WORLD_SIZE="3" are not`},
		{"no size", []string{"PMI_RANK", "0"}, `PMI_SIZE=""`},
		{"pmix without a size", []string{"PMIX_RANK", "0"}, `PMIX_SIZE=""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLaunch(envOf(tc.env...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if tc.want == "not started by mpirun" && !errors.Is(err, ErrNoLauncher) {
				t.Fatalf("%v is not ErrNoLauncher", err)
			}
		})
	}
}

func TestShortKey(t *testing.T) {
	if got := shortKey("a/b c..d"); got != "a_b_c..d" {
		t.Errorf("got %q", got)
	}
	if got := shortKey("../x"); got != "_._x" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("x", 100)
	a, b := shortKey(long), shortKey(long+"y")
	if len(a) > 64 || a == b {
		t.Errorf("long keys: %q and %q", a, b)
	}
}

func TestOptions(t *testing.T) {
	o, err := parseOptions(map[string]string{"mpi.max_count": "5", "tcp.ring_above": "1", "mpi.host": "127.0.0.1"})
	if err != nil || o.maxCount != 5 || o.host != "127.0.0.1" || len(o.others) != 1 || o.others["tcp.ring_above"] != "1" {
		t.Fatalf("got %+v, %v", o, err)
	}
	for _, bad := range []map[string]string{{"mpi.max_count": "0"}, {"mpi.max_count": "3000000000"}, {"mpi.nope": "1"}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestCheckWorld(t *testing.T) {
	w := Info{Rank: 1, Size: 3}
	cfg := backend.Config{Group: "g"}
	if err := checkWorld(&cfg, w, "X"); err != nil || cfg.Rank != 1 || cfg.Size != 3 {
		t.Fatalf("size 0: %+v, %v", cfg, err)
	}
	cfg = backend.Config{Group: "g", Rank: 1, Size: 3}
	if err := checkWorld(&cfg, w, "X"); err != nil {
		t.Fatal(err)
	}
	cfg = backend.Config{Group: "g", Rank: 0, Size: 3}
	if err := checkWorld(&cfg, w, "X"); err == nil || !strings.Contains(err.Error(), "X says this process is rank 1 of 3") {
		t.Fatalf("wrong rank: %v", err)
	}
	cfg = backend.Config{Group: "g", Rank: 1, Size: 3, Members: make([]backend.Member, 2)}
	if err := checkWorld(&cfg, w, "X"); err == nil {
		t.Fatal("two members for three ranks accepted")
	}
}
