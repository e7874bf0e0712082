package backend

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Backend moves and reduces bytes among the ranks of one group. Buffers
// are raw bytes holding elements of the given DType; their lengths are
// multiples of its size and agree across ranks as each method says.
//
// The group makes collective calls one at a time and in the same order on
// every rank. Send and Recv may run concurrently with each other (one
// goroutine per direction and peer), but not with collective calls.
//
// A blocked call returns when ctx ends, with an error wrapping ctx.Err()
// (a *WaitError when the backend knows which ranks it waits for). After a
// call fails, the backend may be unusable; the group closes it.
type Backend interface {
	// Allreduce sets recv to the reduction of every rank's send. send and
	// recv have the same length on every rank; they are either the same
	// slice (in place) or do not overlap. op is never Avg.
	Allreduce(ctx context.Context, send, recv []byte, dt DType, op Op) error
	// Broadcast copies root's buf into every other rank's buf.
	Broadcast(ctx context.Context, buf []byte, root int) error
	// Allgather sets recv[i*len(send):(i+1)*len(send)] to rank i's send.
	// len(recv) = size*len(send); they do not overlap.
	Allgather(ctx context.Context, send, recv []byte) error
	// ReduceScatter sets recv to block rank of the reduction of every
	// rank's send, where len(send) = size*len(recv). They do not overlap.
	ReduceScatter(ctx context.Context, send, recv []byte, dt DType, op Op) error
	// Barrier returns once every rank has called it.
	Barrier(ctx context.Context) error
	// Send delivers buf to peer's matching Recv. Messages between two
	// ranks arrive in the order sent.
	Send(ctx context.Context, buf []byte, peer int) error
	// Recv fills buf with the next message from peer, which must have
	// exactly len(buf) bytes.
	Recv(ctx context.Context, buf []byte, peer int) error
	// Close releases the backend's connections and memory. It does not
	// wait for other ranks.
	Close() error
}

// The optional interfaces below let a backend do an operation its own
// way; without them the group builds it from the methods above.

// Reducer reduces to one rank: recv (used at root only) gets the
// reduction of every send.
type Reducer interface {
	Reduce(ctx context.Context, send, recv []byte, dt DType, op Op, root int) error
}

// Gatherer gathers to root: recv (len size*len(send), root only) gets
// every rank's send in rank order.
type Gatherer interface {
	Gather(ctx context.Context, send, recv []byte, root int) error
}

// Scatterer scatters from root: rank i's recv gets block i of root's send
// (len size*len(recv)).
type Scatterer interface {
	Scatter(ctx context.Context, send, recv []byte, root int) error
}

// AllToAller exchanges blocks: block j of rank i's send becomes block i
// of rank j's recv. len(send) = len(recv) = size*block.
type AllToAller interface {
	AllToAll(ctx context.Context, send, recv []byte) error
}

// Member describes one rank of a group.
type Member struct {
	Rank int
	Node string // cluster node ID; ranks with the same Node share a machine
	Host string // the address other nodes reach this rank's node at
	Pid  int
}

// Config is what a backend is built from.
type Config struct {
	Group string // group name, unique in the cluster while it lives
	Rank  int
	Size  int
	// Members lists every rank, in rank order. Backends that learn the
	// world from elsewhere (MPI) may get nil.
	Members []Member
	// Rendezvous exchanges small values with the other ranks while the
	// backend is built. Nil when there is no cluster to rendezvous through.
	Rendezvous Rendezvous
	// Options are backend settings given by the user ("tcp.ring_above":
	// "65536"); each backend documents its own and rejects unknown ones
	// under its prefix.
	Options map[string]string
}

// Rendezvous exchanges small values among a group's ranks while a backend
// is built. Keys are local to the group and the backend being built.
type Rendezvous interface {
	// Exchange publishes mine under key and returns every rank's value,
	// in rank order (mine included).
	Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error)
	// Broadcast returns root's value under key; root passes it in value,
	// the other ranks pass nil.
	Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error)
}

// Factory builds a backend for one rank of a group. Every rank of the
// group calls it with the same Group, Size and Members.
type Factory func(ctx context.Context, cfg Config) (Backend, error)

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a backend available under name. It panics if name is
// taken, as database/sql does for drivers.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, ok := factories[name]; ok {
		panic(fmt.Sprintf("collectives: backend %q registered twice", name))
	}
	factories[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

// Names lists the registered backends, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WaitError says that a call gave up waiting for some ranks.
type WaitError struct {
	Op      string // the operation, such as "allreduce"
	Rank    int    // the rank that waited
	Missing []int  // ranks it was still waiting for
	Err     error  // why it stopped waiting (ctx.Err())
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("collectives: %s on rank %d: ranks %v have not arrived: %v", e.Op, e.Rank, e.Missing, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }
