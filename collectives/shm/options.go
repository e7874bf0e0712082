package shm

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Option names, as given in backend.Config.Options.
const (
	// OptSlotBytes is the size of one rank's slot in each of the two
	// stages through which collectives move (default DefaultSlotBytes).
	// A multiple of 64 from 4096 to 1 GiB; it is raised to 64 bytes per
	// rank when smaller.
	OptSlotBytes = "shm.slot_bytes"
	// OptRingBytes is the size of the ring that carries Send from one
	// rank to another (default: 8 MiB shared among the size×(size-1)
	// rings, each between 4 KiB and 256 KiB). A multiple of 64 from 4096
	// to 1 GiB.
	OptRingBytes = "shm.ring_bytes"
	// OptDir is the directory the segment is created in (default
	// /dev/shm, or os.TempDir() when /dev/shm is missing).
	OptDir = "shm.dir"
)

// DefaultSlotBytes is the default of OptSlotBytes.
const DefaultSlotBytes = 128 << 10

const (
	minBytes  = 4 << 10
	maxBytes  = 1 << 30
	ringTotal = 8 << 20 // default budget shared by the rings
	ringMax   = 256 << 10
)

// options are the settings of one rank.
type options struct {
	slot, ring int
	ringSet    bool // ring was given rather than derived from the budget
	dir        string
}

func parseOptions(opts map[string]string, size int) (options, error) {
	o := options{slot: DefaultSlotBytes}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		if !strings.HasPrefix(k, "shm.") {
			continue
		}
		switch k {
		case OptSlotBytes, OptRingBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < minBytes || n > maxBytes || n%64 != 0 {
				return o, fmt.Errorf("option %s=%q: want a multiple of 64 from %d to %d bytes", k, v, minBytes, maxBytes)
			}
			if k == OptSlotBytes {
				o.slot = int(n)
			} else {
				o.ring, o.ringSet = int(n), true
			}
		case OptDir:
			if v == "" {
				return o, fmt.Errorf("option %s is empty", k)
			}
			o.dir = v
		default:
			return o, fmt.Errorf("unknown option %s (known: %s, %s, %s)", k, OptSlotBytes, OptRingBytes, OptDir)
		}
	}
	o.slot = max(o.slot, 64*size)
	if !o.ringSet {
		o.ring = defaultRing(size)
	}
	return o, nil
}

// defaultRing shares ringTotal among the size×(size-1) rings, rounded
// down to a power of two between minBytes and ringMax.
func defaultRing(size int) int {
	if size < 2 {
		return minBytes
	}
	per := ringTotal / (size * (size - 1))
	r := minBytes
	for r*2 <= per && r*2 <= ringMax {
		r *= 2
	}
	return r
}
