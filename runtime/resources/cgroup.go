package resources

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cgroupLimits are the limits the process's cgroups put on it. Reading them
// is best effort: a file that is missing or unreadable sets no limit.
type cgroupLimits struct {
	memory uint64  // the smallest memory limit in bytes; 0 if none
	cpus   float64 // the smallest CPU quota, in CPUs; 0 if none
}

// mount is a cgroup file system from /proc/self/mountinfo.
type mount struct {
	root        string   // the cgroup path shown at point
	point       string   // where it is mounted
	v2          bool     // cgroup2, else a v1 hierarchy
	controllers []string // v1 super options, among them its controllers
}

// readCgroupLimits reads the limits of the calling process. root is the
// file system root, "/" except in tests: /proc/self/cgroup, /proc/self/
// mountinfo and the cgroup mounts are read under it. Every level from the
// process's cgroup up to the top of what is mounted counts, since a Slurm
// job's limit is set on the job's cgroup and its tasks sit below it.
func readCgroupLimits(root string) cgroupLimits {
	procs, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return cgroupLimits{}
	}
	info, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return cgroupLimits{}
	}
	mounts := parseMountinfo(string(info))

	var l cgroupLimits
	lowerMemory := func(v uint64) {
		if v > 0 && (l.memory == 0 || v < l.memory) {
			l.memory = v
		}
	}
	lowerCPUs := func(v float64) {
		if v > 0 && (l.cpus == 0 || v < l.cpus) {
			l.cpus = v
		}
	}
	// Each line is hierarchy-ID:controller-list:cgroup-path; v2 has an
	// empty controller list.
	for _, line := range strings.Split(string(procs), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		controllers, cgPath := parts[1], parts[2]
		for _, m := range mounts {
			switch {
			case controllers == "" && m.v2:
				walkCgroup(root, m, cgPath, func(dir string) {
					lowerMemory(readMemoryMax(filepath.Join(dir, "memory.max")))
					lowerCPUs(readCPUMax(filepath.Join(dir, "cpu.max")))
				})
			case controllers != "" && !m.v2:
				names := strings.Split(controllers, ",")
				memory := slices.Contains(names, "memory") && slices.Contains(m.controllers, "memory")
				cpu := slices.Contains(names, "cpu") && slices.Contains(m.controllers, "cpu")
				if !memory && !cpu {
					continue
				}
				walkCgroup(root, m, cgPath, func(dir string) {
					if memory {
						lowerMemory(readUint(filepath.Join(dir, "memory.limit_in_bytes")))
					}
					if cpu {
						lowerCPUs(readCFSQuota(dir))
					}
				})
			}
		}
	}
	return l
}

// walkCgroup calls visit with the directory of cgPath under m and of each
// of its ancestors that m shows, from the leaf up.
func walkCgroup(root string, m mount, cgPath string, visit func(dir string)) {
	rel := "/"
	if m.root == "/" {
		rel = path.Clean(cgPath)
	} else if r, ok := strings.CutPrefix(path.Clean(cgPath), m.root); ok && (r == "" || r[0] == '/') {
		rel = path.Clean("/" + r)
	}
	// Otherwise the process's cgroup lies outside what m shows (a
	// container without a cgroup namespace); m's top is the closest.
	for {
		dir := filepath.Join(root, m.point, rel)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			visit(dir)
		}
		if rel == "/" {
			return
		}
		rel = path.Dir(rel)
	}
}

// parseMountinfo returns the cgroup mounts in a /proc/self/mountinfo.
func parseMountinfo(info string) []mount {
	var mounts []mount
	for _, line := range strings.Split(info, "\n") {
		// ID parent major:minor root point options [optional...] - type source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		m := mount{root: f[3], point: f[4]}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			// The super options name the hierarchy's controllers.
			m.controllers = strings.Split(g[2], ",")
		default:
			continue
		}
		mounts = append(mounts, m)
	}
	return mounts
}

func readTrimmed(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readUint reads a file holding one unsigned number; 0 if it does not.
func readUint(file string) uint64 {
	v, err := strconv.ParseUint(readTrimmed(file), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// readMemoryMax reads a cgroup v2 memory.max: bytes, or "max" for none.
func readMemoryMax(file string) uint64 {
	return readUint(file) // "max" does not parse and gives 0, no limit
}

// readCPUMax reads a cgroup v2 cpu.max, "quota period" in microseconds or
// "max period", as a number of CPUs; 0 for none.
func readCPUMax(file string) float64 {
	quota, period, ok := strings.Cut(readTrimmed(file), " ")
	if !ok {
		return 0
	}
	return cpuQuota(quota, period)
}

// readCFSQuota reads a cgroup v1 cpu.cfs_quota_us (-1 for none) and
// cpu.cfs_period_us as a number of CPUs; 0 for none.
func readCFSQuota(dir string) float64 {
	return cpuQuota(readTrimmed(filepath.Join(dir, "cpu.cfs_quota_us")),
		readTrimmed(filepath.Join(dir, "cpu.cfs_period_us")))
}

func cpuQuota(quota, period string) float64 {
	q, err := strconv.ParseFloat(quota, 64)
	if err != nil || q <= 0 {
		return 0
	}
	p, err := strconv.ParseFloat(period, 64)
	if err != nil || p <= 0 {
		return 0
	}
	return q / p
}
