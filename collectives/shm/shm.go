package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/collectives/backend"
)

// Name is the name the backend is registered under.
const Name = "shm"

func init() { backend.Register(Name, New) }

// Errors. Calls wrap them with the group, the rank and the operation.
var (
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("shm: backend closed")
	// ErrPeerExited: a rank waited for has exited.
	ErrPeerExited = errors.New("shm: peer process exited")
	// ErrMismatch: the ranks called different operations, or the same
	// operation with different lengths or roots.
	ErrMismatch = errors.New("shm: ranks disagree on the call")
	// ErrAbandoned: a rank waited for has failed a call or closed its end
	// of the group, and will not arrive.
	ErrAbandoned = errors.New("shm: the group was abandoned")
)

// Backend is one rank's end of a shared-memory group. Its methods follow
// backend.Backend; it also implements backend.Reducer, Gatherer,
// Scatterer and AllToAller.
//
// Concurrency: collective calls come one at a time (they share step and
// the scratch slices); Send and Recv may run beside each other, each
// touching only its own ring; Close may come from any goroutine. mu is
// the only lock: every call holds it shared, Close exclusively, so that
// the segment is unmapped only once no call uses it. Everything shared
// with other ranks is in the segment, and each word there has a single
// writer (see segment.go), except the abort word, which the first rank
// to fail sets by compare-and-swap.
type Backend struct {
	group      string
	rank, size int
	geo        geometry
	mem        []byte                   // the mapped segment
	abort      *atomic.Uint64           // see markAbort
	fastMode   [nClasses]*atomic.Uint64 // see tune.go
	pids       []int                    // each rank's process, for the liveness check

	ctr   [nKinds][]*atomic.Uint64 // ctr[kind][rank]
	desc  [][2][2]*atomic.Uint64   // desc[rank][stage]: what the rank's data at that stage is
	slots [2][][]byte              // slots[stage][rank]
	stage [2][]byte                // a whole stage, every rank's slot in order

	send, recv []ring           // send[peer], recv[peer]; empty at rank itself
	sendTail   []*atomic.Uint64 // sendTail[peer] = send[peer].tail
	recvHead   []*atomic.Uint64 // recvHead[peer] = recv[peer].head

	spinFor time.Duration // how long a wait spins before it yields (see wait.go)
	nt      bool          // this allreduce writes the stages with non-temporal stores (see tune.go)
	tune    [nClasses]tuner

	step   uint64 // steps of collective calls so far (identical on every rank)
	others []int  // every rank but this one
	single [][]int
	srcs   [][]byte // scratch list of reduction sources
	acc    []byte   // scratch accumulator for reductions of 3 or more sources

	mu     sync.RWMutex // held shared by calls, exclusively by Close
	closed atomic.Bool
}

var (
	_ backend.Backend    = (*Backend)(nil)
	_ backend.Reducer    = (*Backend)(nil)
	_ backend.Gatherer   = (*Backend)(nil)
	_ backend.Scatterer  = (*Backend)(nil)
	_ backend.AllToAller = (*Backend)(nil)
)

// New builds cfg.Rank's end of the group: rank 0 creates the segment and
// sends its name through cfg.Rendezvous, every rank maps it, and once
// all have, rank 0 unlinks it. Every rank must be on the same node.
func New(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	b, err := open(ctx, cfg)
	if err != nil {
		return nil, err // not a nil *Backend in a non-nil interface
	}
	return b, nil
}

func open(ctx context.Context, cfg backend.Config) (*Backend, error) {
	if cfg.Size < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return nil, fmt.Errorf("shm: group %q: rank %d of %d ranks", cfg.Group, cfg.Rank, cfg.Size)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("shm: group %q rank %d: "+format, append([]any{cfg.Group, cfg.Rank}, args...)...)
	}
	if err := sameNode(cfg); err != nil {
		return nil, fail("%w", err)
	}
	o, err := parseOptions(cfg.Options, cfg.Size)
	if err != nil {
		return nil, fail("%w", err)
	}
	g := geometry{size: cfg.Size, slot: o.slot, ring: o.ring}
	if cfg.Size == 1 {
		mem, err := anonSegment(g)
		if err != nil {
			return nil, fail("%w", err)
		}
		return newBackend(cfg, g, mem, []int{os.Getpid()}), nil
	}
	if cfg.Rendezvous == nil {
		return nil, fail("a group of %d ranks needs a rendezvous", cfg.Size)
	}
	var mem []byte
	mine := "ok " + strconv.Itoa(os.Getpid())
	if cfg.Rank == 0 {
		path, m, err := create(ctx, cfg, o, g)
		if err != nil {
			return nil, fail("%w", err)
		}
		defer os.Remove(path) // once every rank has mapped it, or failed to
		mem = m
	} else {
		v, err := cfg.Rendezvous.Broadcast(ctx, "shm.segment", 0, nil)
		if err != nil {
			return nil, fail("waiting for rank 0's segment: %w", err)
		}
		s := string(v)
		if msg, ok := strings.CutPrefix(s, "error "); ok {
			return nil, fail("rank 0 could not create the segment: %s", msg)
		}
		mem, err = openSegment(strings.TrimPrefix(s, "ok "), g)
		if err != nil {
			// Tell the others, so that they do not wait for this rank.
			mine = fmt.Sprintf("error %v (are all ranks on one node?)", err)
		}
	}
	return finishOpen(ctx, cfg, g, mem, mine, fail)
}

// create makes rank 0's segment and announces its path to the other
// ranks, or why it could not be made.
func create(ctx context.Context, cfg backend.Config, o options, g geometry) (path string, mem []byte, err error) {
	dir := o.dir
	if dir == "" {
		dir = segmentDir()
	}
	sweepStale(dir)
	name, err := segmentName(cfg.Group)
	if err == nil {
		path = filepath.Join(dir, name)
		mem, err = createSegment(path, g)
	}
	msg := "ok " + path
	if err != nil {
		msg = "error " + err.Error()
	}
	if _, berr := cfg.Rendezvous.Broadcast(ctx, "shm.segment", 0, []byte(msg)); berr != nil && err == nil {
		err = fmt.Errorf("announcing the segment: %w", berr)
	}
	if err != nil {
		if mem != nil {
			unix.Munmap(mem)
		}
		if path != "" {
			os.Remove(path)
		}
		return "", nil, err
	}
	return path, mem, nil
}

// finishOpen confirms that every rank has mapped the segment and learns
// their pids.
func finishOpen(ctx context.Context, cfg backend.Config, g geometry, mem []byte, mine string, fail func(string, ...any) error) (*Backend, error) {
	all, err := cfg.Rendezvous.Exchange(ctx, "shm.mapped", []byte(mine))
	if err != nil {
		if mem != nil {
			unix.Munmap(mem)
		}
		return nil, fail("waiting for every rank to map the segment: %w", err)
	}
	pids := make([]int, cfg.Size)
	var bad []string
	for r, v := range all {
		s := string(v)
		if msg, ok := strings.CutPrefix(s, "error "); ok {
			bad = append(bad, fmt.Sprintf("rank %d: %s", r, msg))
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(s, "ok "))
		if err != nil {
			bad = append(bad, fmt.Sprintf("rank %d: bad reply %q", r, s))
		}
		pids[r] = pid
	}
	if bad != nil {
		if mem != nil {
			unix.Munmap(mem)
		}
		return nil, fail("mapping the segment failed on %s", strings.Join(bad, "; "))
	}
	return newBackend(cfg, g, mem, pids), nil
}

// sameNode checks that every member is on one node.
func sameNode(cfg backend.Config) error {
	if cfg.Members == nil {
		return nil // the open of the segment fails on other nodes
	}
	if len(cfg.Members) != cfg.Size {
		return fmt.Errorf("%d members for %d ranks", len(cfg.Members), cfg.Size)
	}
	byNode := map[string][]int{}
	for i, m := range cfg.Members {
		byNode[m.Node] = append(byNode[m.Node], i)
	}
	if len(byNode) == 1 {
		return nil
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return byNode[nodes[i]][0] < byNode[nodes[j]][0] })
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = fmt.Sprintf("ranks %v on node %q", byNode[n], n)
	}
	return fmt.Errorf("the shm backend needs every rank on one node, but %s", strings.Join(parts, ", "))
}

func newBackend(cfg backend.Config, g geometry, mem []byte, pids []int) *Backend {
	P := cfg.Size
	b := &Backend{group: cfg.Group, rank: cfg.Rank, size: P, geo: g, mem: mem, pids: pids,
		desc: make([][2][2]*atomic.Uint64, P), single: make([][]int, P),
		send: make([]ring, P), recv: make([]ring, P)}
	u64 := func(off int) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&mem[off])) }
	b.abort = u64(abortOff)
	for k := range b.fastMode {
		b.fastMode[k] = u64(fastModeOff + 8*k)
	}
	for k := range b.ctr {
		b.ctr[k] = make([]*atomic.Uint64, P)
		for r := range P {
			b.ctr[k][r] = u64(g.ctrOff(r, k))
		}
	}
	for r := range P {
		for s := range 2 {
			for w := range 2 {
				b.desc[r][s][w] = u64(g.ctrOff(r, kArrive) + 8 + 16*s + 8*w)
			}
		}
		b.single[r] = []int{r}
		if r != b.rank {
			b.others = append(b.others, r)
		}
	}
	for s := range 2 {
		off := g.slotOff(s, 0)
		b.stage[s] = mem[off : off+P*g.slot : off+P*g.slot]
		b.slots[s] = make([][]byte, P)
		for r := range P {
			b.slots[s][r] = b.stage[s][r*g.slot : (r+1)*g.slot : (r+1)*g.slot]
		}
	}
	for p := range P {
		if p == b.rank {
			continue
		}
		b.send[p] = b.newRing(b.rank, p)
		b.recv[p] = b.newRing(p, b.rank)
	}
	b.spinFor = spinFor
	if P > runtime.NumCPU() || P > runtime.GOMAXPROCS(0) && allSame(pids) {
		b.spinFor = 0 // oversubscribed: more ranks than CPUs, or than Ps for goroutine ranks
	}
	b.srcs = make([][]byte, P)
	b.acc = make([]byte, blockBytes)
	return b
}

// Close unmaps the segment. Calls blocked in other goroutines return
// ErrClosed first.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.markAbort(abortClosed)
	if err := unix.Munmap(b.mem); err != nil {
		return fmt.Errorf("shm: group %q rank %d: unmap: %w", b.group, b.rank, err)
	}
	b.mem = nil
	return nil
}

// enter starts a call, which must end with exit.
func (b *Backend) enter(op string) error {
	b.mu.RLock()
	if b.closed.Load() {
		b.mu.RUnlock()
		return b.errorf(op, "%w", ErrClosed)
	}
	return nil
}

// exit ends a call that returns *err. A call that fails abandons the
// group: ranks waiting for this one stop waiting (see markAbort).
func (b *Backend) exit(err *error) {
	if *err != nil {
		b.markFailed(*err)
	}
	b.mu.RUnlock()
}

// Why a rank abandoned the group, in the abort word of the segment:
// (rank+1)<<8 | reason, written once, by the first rank to fail.
const (
	abortClosed = iota + 1
	abortMismatch
	abortGaveUp
	abortPeerExited
	abortFailed
)

var abortReasons = [...]string{"", "closed its end of the group", "disagreed with another rank on a call",
	"gave up waiting (its context ended)", "found that a rank's process had exited", "failed a call"}

func (b *Backend) markFailed(err error) {
	switch {
	case errors.Is(err, ErrAbandoned):
		// Another rank abandoned the group first.
	case errors.Is(err, ErrMismatch):
		b.markAbort(abortMismatch)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		b.markAbort(abortGaveUp)
	case errors.Is(err, ErrPeerExited):
		b.markAbort(abortPeerExited)
	case errors.Is(err, ErrClosed):
		b.markAbort(abortClosed)
	default:
		b.markAbort(abortFailed)
	}
}

func (b *Backend) markAbort(reason uint64) {
	b.abort.CompareAndSwap(0, uint64(b.rank+1)<<8|reason)
}

// abandoned describes the abort word v.
func (b *Backend) abandoned(v uint64) error {
	r, reason := int(v>>8)-1, int(v&0xff)
	if r == b.rank {
		return fmt.Errorf("%w: this rank %s", ErrAbandoned, abortReasons[min(reason, len(abortReasons)-1)])
	}
	return fmt.Errorf("%w: rank %d %s", ErrAbandoned, r, abortReasons[min(reason, len(abortReasons)-1)])
}

func unsafeAt(mem []byte, off int) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }

func (b *Backend) errorf(op, format string, args ...any) error {
	return fmt.Errorf("shm: %s on group %q rank %d: "+format, append([]any{op, b.group, b.rank}, args...)...)
}

func allSame(pids []int) bool {
	for _, p := range pids {
		if p != pids[0] {
			return false
		}
	}
	return true
}
