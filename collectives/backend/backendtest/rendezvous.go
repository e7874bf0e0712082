// Package backendtest checks a collectives backend: an in-memory
// rendezvous, a way to build every rank of a group in one process, and a
// suite that compares every operation with a float64 reference.
package backendtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
)

// MemRendezvous is a backend.Rendezvous for ranks in one process.
type MemRendezvous struct {
	mu    sync.Mutex
	cond  *sync.Cond
	size  int
	vals  map[string][][]byte
	count map[string]int
}

// NewMemRendezvous is a rendezvous for size ranks.
func NewMemRendezvous(size int) *MemRendezvous {
	r := &MemRendezvous{size: size, vals: map[string][][]byte{}, count: map[string]int{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// ForRank is the view of the rendezvous that rank uses.
func (r *MemRendezvous) ForRank(rank int) backend.Rendezvous { return memRank{r, rank} }

type memRank struct {
	r    *MemRendezvous
	rank int
}

func (m memRank) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	r := m.r
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.vals[key]
	if v == nil {
		v = make([][]byte, r.size)
		r.vals[key] = v
	}
	if v[m.rank] != nil {
		return nil, fmt.Errorf("backendtest: rank %d published %q twice", m.rank, key)
	}
	v[m.rank] = append([]byte{}, mine...)
	r.count[key]++
	r.cond.Broadcast()
	stop := context.AfterFunc(ctx, func() { r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() })
	defer stop()
	for r.count[key] < r.size {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.cond.Wait()
	}
	return v, nil
}

func (m memRank) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	all, err := m.Exchange(ctx, key, append([]byte{1}, value...))
	if err != nil {
		return nil, err
	}
	return all[root][1:], nil
}

// Group builds every rank of a size-rank group with f, concurrently, as
// if each rank ran on the node nodes[rank] (all on one node when nodes is
// nil). It returns the backends in rank order.
func Group(ctx context.Context, f backend.Factory, size int, nodes []string, opts map[string]string) ([]backend.Backend, error) {
	rv := NewMemRendezvous(size)
	members := make([]backend.Member, size)
	for i := range members {
		node := "node0"
		if nodes != nil {
			node = nodes[i]
		}
		members[i] = backend.Member{Rank: i, Node: node, Host: "127.0.0.1", Pid: 1}
	}
	out := make([]backend.Backend, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i := 0; i < size; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = f(ctx, backend.Config{Group: "test", Rank: i, Size: size, Members: members, Rendezvous: rv.ForRank(i), Options: opts})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, b := range out {
				if b != nil {
					b.Close()
				}
			}
			return nil, fmt.Errorf("rank %d: %w", i, err)
		}
	}
	return out, nil
}
