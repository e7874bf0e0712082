package resources

import (
	"slices"
	"strconv"
	"strings"
)

// visibleEnv is the variable that restricts the GPUs a CUDA process sees.
const visibleEnv = "CUDA_VISIBLE_DEVICES"

// visibility is a parsed CUDA_VISIBLE_DEVICES.
type visibility struct {
	set     bool     // the variable is set; if not, every device is visible
	entries []string // device indices or UUIDs (or UUID prefixes), in order
}

// parseVisible reads CUDA_VISIBLE_DEVICES. Following CUDA, an empty value,
// "NoDevFiles" or "-1" hides every device, and an entry that cannot name a
// device (empty, negative, not an integer though it starts like one) hides
// itself and every entry after it.
func parseVisible(env func(string) (string, bool)) visibility {
	v, ok := env(visibleEnv)
	if !ok {
		return visibility{}
	}
	vis := visibility{set: true}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if !validEntry(e) {
			break
		}
		vis.entries = append(vis.entries, e)
	}
	return vis
}

func validEntry(e string) bool {
	switch {
	case e == "" || e == "NoDevFiles":
		return false
	case strings.ContainsAny(e[:1], "+-0123456789"):
		_, ok := entryIndex(e)
		return ok
	}
	return true
}

// entryIndex returns the device index e names, if e is an index.
func entryIndex(e string) (int, bool) {
	if e == "" || e[0] < '0' || e[0] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(e)
	return n, err == nil
}

// listedGPUs describes the devices entries name without asking NVML: an
// index gives a GPU with that Index, anything else a GPU with that UUID and
// Index -1. Repeats are dropped.
func listedGPUs(entries []string) []GPU {
	var gpus []GPU
	seen := map[string]bool{}
	for _, e := range entries {
		g := GPU{Index: -1, UUID: e}
		if n, ok := entryIndex(e); ok {
			g = GPU{Index: n}
		}
		if !seen[g.ID()] {
			seen[g.ID()] = true
			gpus = append(gpus, g)
		}
	}
	return gpus
}

// pick returns the positions in all of the devices entries name, in the
// order named, skipping repeats. An entry names a device by index, by UUID
// or by an unambiguous UUID prefix, as CUDA allows. pick stops at the first
// entry that names no device in all and returns it and the entries after it
// as rest; the caller may resolve it another way (a MIG instance UUID) or,
// as CUDA does, stop there.
func pick(all []GPU, entries []string) (idx []int, rest []string) {
	for i, e := range entries {
		at := find(all, e)
		if at < 0 {
			return idx, entries[i:]
		}
		if !slices.Contains(idx, at) {
			idx = append(idx, at)
		}
	}
	return idx, nil
}

func find(all []GPU, e string) int {
	if n, ok := entryIndex(e); ok {
		for i, g := range all {
			if g.Index == n {
				return i
			}
		}
		return -1
	}
	match := -1
	for i, g := range all {
		switch {
		case g.UUID == e:
			return i
		case strings.HasPrefix(g.UUID, e):
			if match >= 0 {
				return -1 // ambiguous prefix
			}
			match = i
		}
	}
	return match
}
