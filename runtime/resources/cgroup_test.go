package resources

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot builds a file system root holding files (path relative to the
// root, contents).
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	mountV2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	mountV1 = "" +
		"24 23 0:21 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n" +
		"33 24 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory\n" +
		"34 24 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct\n" +
		"35 24 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,cpuset\n"
)

func TestCgroupV2SlurmJob(t *testing.T) {
	job := "sys/fs/cgroup/system.slice/slurmstepd.scope/job_42"
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":    "0::/system.slice/slurmstepd.scope/job_42/step_0/user/task_0\n",
		"proc/self/mountinfo": mountV2,
		// The job holds the limits; the step and task below say "max".
		job + "/memory.max":                    "8589934592\n",
		job + "/cpu.max":                       "400000 100000\n",
		job + "/step_0/memory.max":             "max\n",
		job + "/step_0/cpu.max":                "max 100000\n",
		job + "/step_0/user/task_0/memory.max": "max\n",
		"sys/fs/cgroup/cgroup.controllers":     "cpuset cpu memory\n",
	})
	got := readCgroupLimits(root)
	if got.memory != 8<<30 || got.cpus != 4 {
		t.Errorf("limits = %+v, want 8 GiB and 4 CPUs", got)
	}
}

func TestCgroupV2Container(t *testing.T) {
	// With a cgroup namespace the container's cgroup is the mount's top.
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":           "0::/\n",
		"proc/self/mountinfo":        mountV2,
		"sys/fs/cgroup/memory.max":   "1073741824\n",
		"sys/fs/cgroup/cpu.max":      "150000 100000\n",
		"sys/fs/cgroup/cgroup.procs": "1\n",
	})
	got := readCgroupLimits(root)
	if got.memory != 1<<30 || got.cpus != 1.5 {
		t.Errorf("limits = %+v, want 1 GiB and 1.5 CPUs", got)
	}
}

func TestCgroupV1(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup": "" +
			"5:cpuset:/slurm/uid_1000/job_7/step_0\n" +
			"4:cpu,cpuacct:/slurm/uid_1000/job_7/step_0\n" +
			"3:memory:/slurm/uid_1000/job_7/step_0\n" +
			"1:name=systemd:/user.slice\n" +
			"0::/user.slice\n",
		"proc/self/mountinfo": mountV1,
		// Unlimited at the step, limited at the job, unlimited at the top.
		"sys/fs/cgroup/memory/slurm/uid_1000/job_7/step_0/memory.limit_in_bytes":  "9223372036854771712\n",
		"sys/fs/cgroup/memory/slurm/uid_1000/job_7/memory.limit_in_bytes":         "4294967296\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":                              "9223372036854771712\n",
		"sys/fs/cgroup/cpu,cpuacct/slurm/uid_1000/job_7/step_0/cpu.cfs_quota_us":  "-1\n",
		"sys/fs/cgroup/cpu,cpuacct/slurm/uid_1000/job_7/step_0/cpu.cfs_period_us": "100000\n",
		"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":                              "-1\n",
		"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us":                             "100000\n",
	})
	got := readCgroupLimits(root)
	// The unlimited value is a limit too, but larger than any machine;
	// Detect takes the smaller of it and the machine's memory.
	if got.memory != 4<<30 || got.cpus != 0 {
		t.Errorf("limits = %+v, want 4 GiB and no CPU quota", got)
	}
}

func TestCgroupV1ContainerWithoutNamespace(t *testing.T) {
	// /proc/self/cgroup names the host's path; the mount shows only the
	// container's cgroup, rooted at that path or elsewhere.
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup": "" +
			"4:memory:/docker/abc123\n" +
			"3:cpu,cpuacct:/docker/abc123\n",
		"proc/self/mountinfo": "" +
			"33 24 0:28 /docker/abc123 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n" +
			"34 24 0:29 /other /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n",
		"sys/fs/cgroup/memory/memory.limit_in_bytes":  "536870912\n",
		"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  "50000\n",
		"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
	})
	got := readCgroupLimits(root)
	if got.memory != 512<<20 || got.cpus != 0.5 {
		t.Errorf("limits = %+v, want 512 MiB and 0.5 CPUs", got)
	}
}

func TestCgroupMissingOrMalformed(t *testing.T) {
	if got := readCgroupLimits(t.TempDir()); got != (cgroupLimits{}) {
		t.Errorf("empty root: limits = %+v, want none", got)
	}
	root := fakeRoot(t, map[string]string{
		"proc/self/cgroup":         "garbage\n0::/\n",
		"proc/self/mountinfo":      "not a mount line\n" + mountV2,
		"sys/fs/cgroup/memory.max": "lots\n",
		"sys/fs/cgroup/cpu.max":    "100000\n",
	})
	if got := readCgroupLimits(root); got != (cgroupLimits{}) {
		t.Errorf("malformed files: limits = %+v, want none", got)
	}
}

func TestCgroupThisMachine(t *testing.T) {
	l := readCgroupLimits("/")
	t.Logf("cgroup limits here: memory %d, CPUs %v", l.memory, l.cpus)
}
