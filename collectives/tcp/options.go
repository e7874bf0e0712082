package tcp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// options are the backend's settings; see the package documentation for
// what each key means and how its default was chosen.
type options struct {
	ringAbove  int           // allreduce and reduce: ring at or above this many bytes
	chainAbove int           // broadcast: pipelined chain at or above this many bytes
	chunk      int           // pipeline chunk, bytes
	sockBuf    int           // SO_SNDBUF and SO_RCVBUF, bytes; 0 leaves the system's
	lazy       bool          // connect to a peer on first use instead of at start
	spin       time.Duration // how long a waiting call polls before it sleeps
}

func defaultOptions() options {
	return options{
		ringAbove:  256 << 10,
		chainAbove: 256 << 10,
		chunk:      512 << 10,
		sockBuf:    0,
		spin:       50 * time.Microsecond,
	}
}

// optionKeys lists every key this backend accepts, with a short
// description for error messages.
var optionKeys = map[string]string{
	"tcp.ring_above":  "allreduce and reduce use the ring at or above this many bytes (default 256KiB)",
	"tcp.chain_above": "broadcast uses a pipelined chain at or above this many bytes (default 256KiB)",
	"tcp.chunk":       "pipeline chunk in bytes (default 512KiB)",
	"tcp.sockbuf":     "socket send and receive buffer in bytes; 0 (the default) keeps the system's automatic sizing",
	"tcp.connect":     "eager (connect every pair at start, the default) or lazy (on first use)",
	"tcp.spin":        "how long a waiting call keeps polling its sockets before it sleeps, a Go duration (default 50us)",
}

func validKeys() string {
	keys := make([]string, 0, len(optionKeys))
	for k := range optionKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// parseOptions reads the "tcp." keys of m and rejects unknown ones.
// Keys without that prefix belong to other backends and are ignored.
func parseOptions(m map[string]string) (options, error) {
	o := defaultOptions()
	for k, v := range m {
		if !strings.HasPrefix(k, "tcp.") {
			continue
		}
		var err error
		switch k {
		case "tcp.ring_above":
			o.ringAbove, err = parseBytes(v)
		case "tcp.chain_above":
			o.chainAbove, err = parseBytes(v)
		case "tcp.chunk":
			o.chunk, err = parseBytes(v)
			if err == nil && o.chunk < 64 {
				err = fmt.Errorf("must be at least 64 bytes")
			}
		case "tcp.sockbuf":
			o.sockBuf, err = parseBytes(v)
		case "tcp.spin":
			o.spin, err = time.ParseDuration(v)
			if err == nil && o.spin < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "tcp.connect":
			switch v {
			case "eager":
				o.lazy = false
			case "lazy":
				o.lazy = true
			default:
				err = fmt.Errorf("want eager or lazy")
			}
		default:
			return o, fmt.Errorf("collectives: tcp: unknown option %q (valid: %s)", k, validKeys())
		}
		if err != nil {
			return o, fmt.Errorf("collectives: tcp: option %s=%q: %v", k, v, err)
		}
	}
	o.chunk &^= 7 // whole elements of every type
	return o, nil
}

// parseBytes reads a byte count: a plain integer or one with a binary
// suffix (K, KiB, M, MiB, G, GiB; case does not matter).
func parseBytes(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/int64(mult) {
		return 0, fmt.Errorf("want a byte count such as 65536, 64K or 1MiB")
	}
	return int(n) * mult, nil
}
