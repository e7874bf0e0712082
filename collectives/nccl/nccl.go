package nccl

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/raygo/raygo/collectives/backend"
)

// Name is the name the backend is registered under.
const Name = "nccl"

func init() {
	backend.Register(Name, func(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
		b, err := New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}

// Option names, as given in backend.Config.Options.
const (
	// OptDevice is the CUDA device (an index among the visible ones) this
	// rank uses. By default it is the rank's index among the ranks on its
	// node, modulo the number of visible devices.
	OptDevice = "nccl.device"
	// OptStagingBytes bounds the device memory each communicator keeps to
	// stage host slices (default DefaultStagingBytes); larger messages
	// move in chunks. At least 64.
	OptStagingBytes = "nccl.staging_bytes"
	// OptP2P, "true" (the default) or "false", says whether Send and Recv
	// are available. Each rank then creates one NCCL unique id per peer
	// while the backend is built (with the real NCCL, each holds a
	// listening socket and a thread until the pair's first message), and
	// the communicator for a pair of ranks is built at its first message.
	OptP2P = "nccl.p2p"
)

// DefaultStagingBytes is the default of OptStagingBytes.
const DefaultStagingBytes = 64 << 20

// Environment variables that name the libraries to load. Without them the
// dynamic loader's search path is tried with the names in NCCLLibraries
// and CUDARuntimeLibraries, in order.
const (
	EnvNCCLLibrary   = "RAYGO_NCCL_LIBRARY"
	EnvCUDARTLibrary = "RAYGO_CUDART_LIBRARY"
)

// NCCLLibraries and CUDARuntimeLibraries are the names tried, in order,
// when the environment names no library.
var (
	NCCLLibraries        = []string{"libnccl.so.2", "libnccl.so"}
	CUDARuntimeLibraries = []string{"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"}
)

// DeviceBuffer is memory on this rank's GPU: Count elements of DType at
// Ptr, a device address from cudaMalloc or any CUDA allocator.
type DeviceBuffer struct {
	Ptr   uintptr
	Count int
	DType backend.DType
}

// Bytes is the buffer's size in bytes.
func (d DeviceBuffer) Bytes() int { return d.Count * d.DType.Size() }

func (d DeviceBuffer) check(name string) error {
	switch {
	case !d.DType.Valid():
		return fmt.Errorf("%s buffer has element type %v", name, d.DType)
	case d.Count < 0:
		return fmt.Errorf("%s buffer has %d elements", name, d.Count)
	case d.Count > 0 && d.Ptr == 0:
		return fmt.Errorf("%s buffer of %d elements is at address 0", name, d.Count)
	}
	return nil
}

// Stream is a CUDA stream (a cudaStream_t). Zero is the legacy default
// stream.
type Stream uintptr

// Completion says whether a device operation waits for its work to
// finish.
type Completion uint8

const (
	// Wait polls the stream until the operation has finished, and aborts
	// the communicator if ctx ends first.
	Wait Completion = iota
	// NoWait returns once the operation is enqueued on the stream; the
	// caller orders later work on the stream or calls Synchronize.
	NoWait
)

// Version is an NCCL release.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// decodeVersion reads ncclGetVersion's code: major*10000+minor*100+patch
// from 2.9 on, major*1000+minor*100+patch before.
func decodeVersion(code int) Version {
	if code >= 10000 {
		return Version{code / 10000, code % 10000 / 100, code % 100}
	}
	return Version{code / 1000, code % 1000 / 100, code % 100}
}

// Info describes the libraries Probe loaded.
type Info struct {
	NCCLPath   string  // the NCCL library's file
	CUDARTPath string  // the CUDA runtime's file
	Version    Version // NCCL's version
	Devices    int     // CUDA devices visible to this process
}

var (
	// ErrNoCgo is returned by every call in a build without cgo.
	ErrNoCgo = errors.New("nccl needs a cgo build (CGO_ENABLED=1, on Linux or another Unix)")
	// ErrAborted is wrapped by calls on a communicator that was aborted
	// after an earlier failure, a context's end or Close.
	ErrAborted = errors.New("nccl: communicator aborted")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("nccl: backend closed")
)

// LoadError says that a library could not be loaded or lacks a symbol.
type LoadError struct {
	Library string // "NCCL" or "CUDA runtime"
	Path    string // the file (or the names tried)
	Symbol  string // the missing symbol; empty when the library did not load
	Env     string // the environment variable that names the library
	Err     error  // the dynamic loader's message
}

func (e *LoadError) Error() string {
	if e.Symbol != "" {
		return fmt.Sprintf("nccl: the %s library %s lacks the symbol %s: %v", e.Library, e.Path, e.Symbol, e.Err)
	}
	return fmt.Sprintf("nccl: cannot load the %s library %s: %v (set %s to its path)", e.Library, e.Path, e.Err, e.Env)
}

func (e *LoadError) Unwrap() error { return e.Err }

// NCCLError is a failed NCCL call.
type NCCLError struct {
	Call   string // the function, such as "ncclAllReduce"
	Result int    // its ncclResult_t
	Msg    string // ncclGetErrorString's text
}

func (e *NCCLError) Error() string {
	return fmt.Sprintf("%s: %s (ncclResult_t %d)", e.Call, e.Msg, e.Result)
}

// CUDAError is a failed CUDA runtime call.
type CUDAError struct {
	Call string // the function, such as "cudaMalloc"
	Code int    // its cudaError_t
	Msg  string // cudaGetErrorString's text
}

func (e *CUDAError) Error() string {
	return fmt.Sprintf("%s: %s (cudaError_t %d)", e.Call, e.Msg, e.Code)
}

// NCCL's enumerations (nccl.h).
const (
	ncclInt8     = 0
	ncclUint8    = 1
	ncclInt32    = 2
	ncclInt64    = 4
	ncclFloat16  = 6
	ncclFloat32  = 7
	ncclFloat64  = 8
	ncclBfloat16 = 9

	ncclSum  = 0
	ncclProd = 1
	ncclMax  = 2
	ncclMin  = 3
	ncclAvg  = 4

	ncclInProgress = 7
)

// kinds maps an element type and a reduction to NCCL's, checking that
// version has them: bfloat16 and avg came with NCCL 2.10.
func kinds(v Version, path string, dt backend.DType, op backend.Op) (ndt, nop int, err error) {
	if ndt, err = ncclType(v, path, dt); err != nil {
		return 0, 0, err
	}
	switch op {
	case backend.Sum:
		nop = ncclSum
	case backend.Prod:
		nop = ncclProd
	case backend.Min:
		nop = ncclMin
	case backend.Max:
		nop = ncclMax
	case backend.Avg:
		if !v.AtLeast(2, 10) {
			return 0, 0, fmt.Errorf("avg needs NCCL 2.10 or later; %s is NCCL %v", path, v)
		}
		nop = ncclAvg
	default:
		return 0, 0, fmt.Errorf("unknown reduction %v", op)
	}
	return ndt, nop, nil
}

// ncclType maps an element type to NCCL's.
func ncclType(v Version, path string, dt backend.DType) (ndt int, err error) {
	switch dt {
	case backend.F32:
		ndt = ncclFloat32
	case backend.F64:
		ndt = ncclFloat64
	case backend.I32:
		ndt = ncclInt32
	case backend.I64:
		ndt = ncclInt64
	case backend.U8:
		ndt = ncclUint8
	case backend.F16:
		ndt = ncclFloat16
	case backend.BF16:
		if !v.AtLeast(2, 10) {
			return 0, fmt.Errorf("bfloat16 needs NCCL 2.10 or later; %s is NCCL %v", path, v)
		}
		ndt = ncclBfloat16
	default:
		return 0, fmt.Errorf("unknown element type %v", dt)
	}
	return ndt, nil
}

// options are one rank's settings.
type options struct {
	device  int // -1: by node-local index
	staging int
	p2p     bool
}

func parseOptions(opts map[string]string) (options, error) {
	o := options{device: -1, staging: DefaultStagingBytes, p2p: true}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		if strings.HasPrefix(k, "nccl.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		switch k {
		case OptDevice:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("nccl: option %s=%q: want a device index (0 or more)", k, v)
			}
			o.device = n
		case OptStagingBytes:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 64 || n > 1<<40 {
				return o, fmt.Errorf("nccl: option %s=%q: want a size in bytes, at least 64", k, v)
			}
			o.staging = int(n)
		case OptP2P:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("nccl: option %s=%q: want true or false", k, v)
			}
			o.p2p = b
		default:
			return o, fmt.Errorf("nccl: unknown option %s (known: %s, %s, %s)", k, OptDevice, OptStagingBytes, OptP2P)
		}
	}
	return o, nil
}

// chunkOf is how many bytes of each of parts regions move per step when
// a message of total bytes per region is staged in at most limit bytes:
// a multiple of unit (the element size), at least one unit, at most
// total. Every rank computes the same from the same arguments.
func chunkOf(total, unit, limit, parts int) int {
	c := limit / parts / unit * unit
	if c < unit {
		c = unit
	}
	return min(c, total)
}

// localIndex is rank's index among the ranks that share its node, or rank
// itself when members is empty.
func localIndex(members []backend.Member, rank int) int {
	if len(members) <= rank {
		return rank
	}
	node, n := members[rank].Node, 0
	for _, m := range members[:rank] {
		if m.Node == node {
			n++
		}
	}
	return n
}

func checkConfig(cfg backend.Config) error {
	switch {
	case cfg.Size < 1:
		return fmt.Errorf("nccl: group %q has %d ranks", cfg.Group, cfg.Size)
	case cfg.Rank < 0 || cfg.Rank >= cfg.Size:
		return fmt.Errorf("nccl: group %q: rank %d is outside 0..%d", cfg.Group, cfg.Rank, cfg.Size-1)
	case cfg.Members != nil && len(cfg.Members) != cfg.Size:
		return fmt.Errorf("nccl: group %q: %d members for %d ranks", cfg.Group, len(cfg.Members), cfg.Size)
	case cfg.Size > 1 && cfg.Rendezvous == nil:
		return fmt.Errorf("nccl: group %q: %d ranks need a rendezvous to share the NCCL unique id", cfg.Group, cfg.Size)
	}
	return nil
}
