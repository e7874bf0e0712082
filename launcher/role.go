package launcher

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/raygo/raygo/slurm"
)

// Launch systems a role can come from.
const (
	SystemSlurm  = "slurm"
	SystemMPI    = "mpirun"
	SystemYARN   = "yarn"
	SystemK8s    = "kubernetes"
	SystemManual = "manual"
)

// Role is what this raygo-launch process is in its job: rank 0 runs the
// head and the driver; the others run node agents.
type Role struct {
	System    string // which launcher started us
	Rank      int
	WorldSize int
	// Key names the job (and step) for rendezvous: the same in every rank
	// of one launch, different for every other launch.
	Key string
	// Head is the head's address when the launch system gives it (by hand,
	// Kubernetes); otherwise rank 0 publishes it through the rendezvous.
	Head string
	// Hosts are the expected hosts by rank, when the launch system says
	// (Slurm's node list); used to name nodes that never joined.
	Hosts []string
	Slurm *slurm.Job // set under Slurm
	// Labels describe the node: system, rank, and what the system tells
	// (Slurm: partition, job ID, node name).
	Labels map[string]string
}

// Manual is a role given on the command line (--rank, --world-size,
// --head, --key) or read from a nodes file; zero fields mean "not given".
type Manual struct {
	Rank      int // -1: not given
	WorldSize int
	Head      string
	Key       string
	NodesFile string
}

// ErrNoRole means no launch system was recognised and no role was given.
var ErrNoRole = errors.New("cannot tell this process's rank: not under srun, mpirun, YARN or a Kubernetes indexed job; give --rank and --world-size (and --head or a shared --rendezvous-dir)")

// DetectRole works out this process's role from the command line first,
// then from the environment of the launch system that started it. lookup
// reads the environment (nil: os.LookupEnv).
func DetectRole(m Manual, lookup func(string) (string, bool)) (Role, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if m.NodesFile != "" {
		return fromNodesFile(m, get)
	}
	if m.Rank >= 0 || m.WorldSize > 0 {
		return manualRole(m)
	}
	if get("SLURM_JOB_ID") != "" || get("SLURM_JOBID") != "" {
		if get("SLURM_STEP_ID") == "" && get("SLURM_STEPID") == "" {
			return Role{}, errors.New("in a Slurm job but not in a job step: start raygo-launch with srun (srun raygo-launch -- ./prog), one task per node")
		}
		j, err := slurm.FromEnv(lookup)
		if err != nil {
			return Role{}, fmt.Errorf("slurm: %w", err)
		}
		if j.NTasks != j.NumNodes {
			return Role{}, fmt.Errorf("slurm: the step has %d tasks on %d nodes; run one raygo-launch per node (srun --ntasks-per-node=1)", j.NTasks, j.NumNodes)
		}
		labels := map[string]string{"system": SystemSlurm, "job": j.JobID, "node-name": j.NodeName,
			"node-index": strconv.Itoa(j.NodeID)}
		if j.Partition != "" {
			labels["partition"] = j.Partition
		}
		// Job IDs are unique only within one Slurm cluster; sites with
		// several clusters often share home directories.
		key := "slurm-" + j.RendezvousKey()
		if c := get("SLURM_CLUSTER_NAME"); c != "" {
			key = "slurm-" + sanitizeKey(c) + "-" + j.RendezvousKey()
		}
		return Role{System: SystemSlurm, Rank: j.ProcID, WorldSize: j.NTasks, Key: key,
			Hosts: j.Nodes, Slurm: j, Labels: labels}, nil
	}
	// Open MPI, then MPICH and other PMI launchers.
	for _, v := range [][3]string{
		{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_MCA_orte_hnp_uri"},
		{"PMI_RANK", "PMI_SIZE", "PMI_FD"},
		{"PMIX_RANK", "PMIX_SIZE", "PMIX_NAMESPACE"},
	} {
		if get(v[0]) == "" {
			continue
		}
		rank, err1 := strconv.Atoi(get(v[0]))
		size, err2 := strconv.Atoi(get(v[1]))
		if err1 != nil || err2 != nil || rank < 0 || size < 1 || rank >= size {
			return Role{}, fmt.Errorf("mpirun: %s=%q and %s=%q are not a rank and a size", v[0], get(v[0]), v[1], get(v[1]))
		}
		// Only values that are the same in every rank of one launch and
		// differ between launches can name it. MPICH's Hydra sets none:
		// PMI_FD is a descriptor number (the same in every launch) and
		// PMI_PORT its local proxy's address (different on every node).
		key := get("OMPI_MCA_orte_hnp_uri") + get("OMPI_MCA_ess_base_jobid") + get("PMIX_NAMESPACE")
		if k := get("RAYGO_LAUNCH_KEY"); k != "" {
			key = k
		}
		if key == "" {
			return Role{}, fmt.Errorf("mpirun: nothing in the environment names this launch; set RAYGO_LAUNCH_KEY to the same value for every rank and a new one for every launch (MPICH: mpiexec -genv RAYGO_LAUNCH_KEY run-$$-$(date +%%s) ...)")
		}
		return Role{System: SystemMPI, Rank: rank, WorldSize: size, Key: "mpi-" + sanitizeKey(key), Head: get("RAYGO_HEAD"),
			Labels: map[string]string{"system": SystemMPI, "rank": strconv.Itoa(rank)}}, nil
	}
	if cid := get("CONTAINER_ID"); cid != "" && get("NM_HOST") != "" {
		return yarnRole(cid, get)
	}
	if idx := get("JOB_COMPLETION_INDEX"); idx != "" {
		rank, err := strconv.Atoi(idx)
		size, err2 := strconv.Atoi(get("RAYGO_WORLD_SIZE"))
		if err != nil || rank < 0 {
			return Role{}, fmt.Errorf("kubernetes: JOB_COMPLETION_INDEX=%q is not a rank", idx)
		}
		if err2 != nil || size < 1 || rank >= size {
			return Role{}, fmt.Errorf("kubernetes: RAYGO_WORLD_SIZE=%q must be the job's completions (> JOB_COMPLETION_INDEX=%d)", get("RAYGO_WORLD_SIZE"), rank)
		}
		head := get("RAYGO_HEAD")
		if head == "" && rank != 0 {
			return Role{}, errors.New("kubernetes: RAYGO_HEAD must name rank 0's pod and port (e.g. myjob-0.myjob:6380)")
		}
		return Role{System: SystemK8s, Rank: rank, WorldSize: size, Key: "k8s-" + sanitizeKey(get("HOSTNAME")), Head: head,
			Labels: map[string]string{"system": SystemK8s, "rank": idx}}, nil
	}
	return Role{}, ErrNoRole
}

func manualRole(m Manual) (Role, error) {
	if m.Rank < 0 || m.WorldSize < 1 || m.Rank >= m.WorldSize {
		return Role{}, fmt.Errorf("--rank %d --world-size %d: need 0 <= rank < world size", m.Rank, m.WorldSize)
	}
	if m.Head == "" && m.Key == "" {
		return Role{}, errors.New("by hand: give --head HOST:PORT (rank 0 listens there), or --key NAME with a --rendezvous-dir every rank can read")
	}
	key := m.Key
	if key == "" {
		key = m.Head
	}
	return Role{System: SystemManual, Rank: m.Rank, WorldSize: m.WorldSize, Key: "manual-" + sanitizeKey(key), Head: m.Head,
		Labels: map[string]string{"system": SystemManual, "rank": strconv.Itoa(m.Rank)}}, nil
}

// fromNodesFile reads one host per line (blank lines and # comments
// skipped); rank 0 is the first line, and this process's rank is the line
// naming this host (or --rank when several lines name it).
func fromNodesFile(m Manual, get func(string) string) (Role, error) {
	b, err := os.ReadFile(m.NodesFile)
	if err != nil {
		return Role{}, fmt.Errorf("nodes file: %w", err)
	}
	hosts, err := ParseNodesFile(b)
	if err != nil {
		return Role{}, fmt.Errorf("nodes file %s: %w", m.NodesFile, err)
	}
	if len(hosts) == 0 {
		return Role{}, fmt.Errorf("nodes file %s names no hosts", m.NodesFile)
	}
	rank := m.Rank
	if rank < 0 {
		me, _ := os.Hostname()
		for i, h := range hosts {
			if h == me || strings.SplitN(h, ".", 2)[0] == strings.SplitN(me, ".", 2)[0] {
				if rank >= 0 {
					return Role{}, fmt.Errorf("nodes file %s names this host (%s) more than once: give --rank", m.NodesFile, me)
				}
				rank = i
			}
		}
		if rank < 0 {
			return Role{}, fmt.Errorf("nodes file %s does not name this host (%s): give --rank", m.NodesFile, me)
		}
	}
	if rank >= len(hosts) {
		return Role{}, fmt.Errorf("--rank %d but nodes file %s has %d hosts", rank, m.NodesFile, len(hosts))
	}
	key := m.Key
	if key == "" {
		key = m.NodesFile
	}
	return Role{System: SystemManual, Rank: rank, WorldSize: len(hosts), Key: "manual-" + sanitizeKey(key), Head: m.Head, Hosts: hosts,
		Labels: map[string]string{"system": SystemManual, "rank": strconv.Itoa(rank)}}, nil
}

// ParseNodesFile reads one host per line; blank lines and # comments are
// skipped. A line that is not a plausible host name is an error naming it.
func ParseNodesFile(b []byte) ([]string, error) {
	var hosts []string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if len(line) > 253 || strings.ContainsAny(line, " \t\x00/\\") {
			return nil, fmt.Errorf("line %d: %q is not a host name", n+1, line)
		}
		hosts = append(hosts, line)
	}
	return hosts, nil
}

// yarnRole: YARN starts one container per node; the application master
// (or the user's launch script) exports RAYGO_RANK and RAYGO_WORLD_SIZE
// into each container's environment, and every container shares a
// rendezvous directory on HDFS-fuse or NFS.
func yarnRole(cid string, get func(string) string) (Role, error) {
	rank, err := strconv.Atoi(get("RAYGO_RANK"))
	size, err2 := strconv.Atoi(get("RAYGO_WORLD_SIZE"))
	if err != nil || err2 != nil || rank < 0 || size < 1 || rank >= size {
		return Role{}, fmt.Errorf("yarn: container %s: RAYGO_RANK=%q and RAYGO_WORLD_SIZE=%q must give this container's rank and the number of containers", cid, get("RAYGO_RANK"), get("RAYGO_WORLD_SIZE"))
	}
	// container_e17_1410901177871_0001_01_000005 -> application attempt 1410901177871_0001_01.
	app := cid
	if parts := strings.Split(cid, "_"); len(parts) >= 5 {
		app = strings.Join(parts[len(parts)-4:len(parts)-1], "_")
	}
	return Role{System: SystemYARN, Rank: rank, WorldSize: size, Key: "yarn-" + sanitizeKey(app), Head: get("RAYGO_HEAD"),
		Labels: map[string]string{"system": SystemYARN, "rank": strconv.Itoa(rank), "container": cid, "nm-host": get("NM_HOST")}}, nil
}

func sanitizeKey(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[len(out)-64:]
	}
	return out
}
