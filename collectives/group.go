package collectives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/collectives/backend"
)

// Backend names. Auto picks shm when every rank is on one node, tcp when
// each node has one rank, and hier otherwise.
const (
	Auto = ""
	SHM  = "shm"
	TCP  = "tcp"
	Hier = "hier"
	MPI  = "mpi"
	NCCL = "nccl"
)

// Option configures a group.
type Option func(*groupConfig)

type groupConfig struct {
	backend string
	options map[string]string
	ranks   []int
}

// WithBackend picks the group's default backend by name (SHM, TCP, Hier,
// MPI, NCCL or another registered one) instead of choosing from where the
// ranks run.
func WithBackend(name string) Option { return func(c *groupConfig) { c.backend = name } }

// WithSetting passes a setting to the backends, such as
// WithSetting("tcp.ring_above", "65536"); each backend documents its own.
func WithSetting(key, value string) Option {
	return func(c *groupConfig) {
		if c.options == nil {
			c.options = map[string]string{}
		}
		c.options[key] = value
	}
}

// WithRanks gives, for Declare, the rank of each actor in turn (by
// default their order in the list).
func WithRanks(ranks ...int) Option { return func(c *groupConfig) { c.ranks = ranks } }

// Group is one rank's membership in a named group of processes that run
// collective operations together. A Group is safe for use by several
// goroutines: collective calls run one at a time, in the order made;
// Send and Recv may run beside each other.
type Group struct {
	name    string
	rank    int
	size    int
	members []backend.Member
	cfg     groupConfig
	kv      bool // a raygo cluster is there for rendezvous and diagnosis

	mu       sync.RWMutex // collectives hold it exclusively, Send and Recv shared
	def      string       // default backend name
	backends map[string]backend.Backend
	failed   map[string]error
	closed   bool

	seq    atomic.Uint64 // collective calls started
	inOp   atomic.Int64  // unix nanos when the current call started; 0 when none
	posted atomic.Uint64 // the seq last published for diagnosis
	stop   chan struct{}
}

// Join makes the caller rank rank of the group name with size ranks, and
// returns once every rank has joined (or ctx ends, naming the ranks that
// have not). Every rank calls Join with the same name, size and options.
//
// Rendezvous goes through the cluster's key-value store, so the process
// must be part of a raygo cluster (a driver, task or actor), except with
// WithBackend(MPI), whose ranks come from the MPI launcher.
func Join(ctx context.Context, name string, rank, size int, opts ...Option) (*Group, error) {
	var cfg groupConfig
	for _, o := range opts {
		o(&cfg)
	}
	return join(ctx, name, rank, size, cfg)
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return fmt.Errorf("collectives: group name %q must be 1 to 200 characters without '/'", name)
	}
	return nil
}

func join(ctx context.Context, name string, rank, size int, cfg groupConfig) (*Group, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("collectives: group %q: rank %d of %d is out of range", name, rank, size)
	}
	if cfg.backend != Auto {
		if _, ok := backend.Lookup(cfg.backend); !ok {
			return nil, fmt.Errorf("collectives: group %q: no backend %q (have %s)", name, cfg.backend, strings.Join(backend.Names(), ", "))
		}
	}
	g := &Group{name: name, rank: rank, size: size, cfg: cfg, backends: map[string]backend.Backend{}, failed: map[string]error{}, stop: make(chan struct{})}
	g.kv = raygo.ClusterID() != ""
	if !g.kv && cfg.backend != MPI {
		return nil, fmt.Errorf("collectives: group %q: joining needs a raygo cluster (raygo.Init) to meet the other ranks, or WithBackend(MPI) under an MPI launcher: %w", name, raygo.ErrNotInitialized)
	}
	if g.kv {
		me, err := self(ctx, rank)
		if err != nil {
			return nil, fmt.Errorf("collectives: group %q rank %d: %w", name, rank, err)
		}
		mine, _ := json.Marshal(me)
		all, err := g.rendezvous("join").Exchange(ctx, "member", mine)
		if err != nil {
			return nil, fmt.Errorf("collectives: join group %q as rank %d of %d: %w", name, rank, size, err)
		}
		g.members = make([]backend.Member, size)
		for i, b := range all {
			if err := json.Unmarshal(b, &g.members[i]); err != nil {
				return nil, fmt.Errorf("collectives: group %q: bad member record of rank %d: %w", name, i, err)
			}
		}
	}
	g.def = cfg.backend
	if g.def == Auto {
		g.def = choose(g.members)
	}
	if _, err := g.backend(ctx, g.def); err != nil {
		return nil, err
	}
	if g.kv {
		go g.watch()
	}
	return g, nil
}

// self describes the calling process as a member.
func self(ctx context.Context, rank int) (backend.Member, error) {
	me := backend.Member{Rank: rank, Pid: os.Getpid(), Node: strconv.FormatUint(uint64(raygo.CurrentContext(ctx).Node), 10), Host: "127.0.0.1"}
	if ip := os.Getenv("RAYGO_COLLECTIVES_HOST"); ip != "" {
		me.Host = ip
		return me, nil
	}
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		return me, err
	}
	for _, n := range nodes {
		if strconv.FormatUint(uint64(n.ID), 10) == me.Node {
			if h, _, err := net.SplitHostPort(n.Addr); err == nil && net.ParseIP(h) != nil {
				me.Host = h
			}
		}
	}
	return me, nil
}

// choose picks a backend from where the ranks run.
func choose(members []backend.Member) string {
	perNode := map[string]int{}
	for _, m := range members {
		perNode[m.Node]++
	}
	switch {
	case len(perNode) <= 1:
		return SHM
	case len(perNode) == len(members):
		return TCP
	}
	return Hier
}

func (g *Group) rendezvous(scope string) kvRendezvous {
	return kvRendezvous{prefix: kvPrefix(g.name) + scope + "/", rank: g.rank, size: g.size}
}

// backend returns the named backend, building it (a collective step: every
// rank must ask for it in the same order) the first time. Callers hold
// g.mu exclusively, except in join.
func (g *Group) backend(ctx context.Context, name string) (backend.Backend, error) {
	if g.closed {
		return nil, fmt.Errorf("collectives: group %q is destroyed", g.name)
	}
	if b := g.backends[name]; b != nil {
		return b, nil
	}
	if err := g.failed[name]; err != nil {
		return nil, fmt.Errorf("collectives: group %q: backend %s failed earlier (destroy the group and join again): %w", g.name, name, err)
	}
	f, ok := backend.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("collectives: group %q: no backend %q (have %s)", g.name, name, strings.Join(backend.Names(), ", "))
	}
	cfg := backend.Config{Group: g.name, Rank: g.rank, Size: g.size, Members: g.members, Options: g.cfg.options}
	if g.kv {
		cfg.Rendezvous = g.rendezvous("b/" + name)
	}
	b, err := f(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("collectives: group %q rank %d: start backend %s: %w", g.name, g.rank, name, err)
	}
	g.backends[name] = b
	return b, nil
}

// Name, Rank and Size describe the group and the caller's place in it.
func (g *Group) Name() string { return g.name }

// Rank is the caller's rank, from 0 to Size()-1.
func (g *Group) Rank() int { return g.rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.size }

// Backend is the name of the group's default backend.
func (g *Group) Backend() string { return g.def }

// Members describes every rank (nil for groups formed without a cluster).
func (g *Group) Members() []backend.Member { return append([]backend.Member(nil), g.members...) }

// Destroy leaves the group: it waits (bounded by ctx) for every rank to
// reach Destroy, closes the backends, and rank 0 removes the group's keys
// so the name can be used again.
func (g *Group) Destroy(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	var berr error
	if b := g.backends[g.def]; b != nil {
		berr = b.Barrier(ctx)
	}
	g.closeLocked()
	g.mu.Unlock()
	if g.kv && g.rank == 0 {
		if err := Remove(context.WithoutCancel(ctx), g.name); err != nil && berr == nil {
			berr = err
		}
	}
	if berr != nil {
		return fmt.Errorf("collectives: destroy group %q on rank %d: %w", g.name, g.rank, berr)
	}
	return nil
}

func (g *Group) closeLocked() {
	g.closed = true
	close(g.stop)
	names := make([]string, 0, len(g.backends))
	for n := range g.backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g.backends[n].Close()
	}
	g.backends = map[string]backend.Backend{}
}

// Remove deletes every key of the group name from the cluster's store,
// such as those left by a job that failed before Destroy.
func Remove(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	keys, err := raygo.KVList(ctx, kvPrefix(name))
	if err != nil {
		return fmt.Errorf("collectives: remove group %q: %w", name, err)
	}
	for _, k := range keys {
		if _, err := raygo.KVDelete(ctx, k); err != nil {
			return fmt.Errorf("collectives: remove group %q: %w", name, err)
		}
	}
	return nil
}

// CallOption changes one call.
type CallOption func(*callConfig)

type callConfig struct {
	backend string
}

// Via runs the call on the named backend instead of the group's default.
// The first call through a backend builds it, which every rank does
// together: all ranks must pass the same Via on that call.
func Via(name string) CallOption { return func(c *callConfig) { c.backend = name } }

// collective runs one collective call on the chosen backend.
func (g *Group) collective(ctx context.Context, op string, opts []CallOption, f func(b backend.Backend) error) error {
	var cc callConfig
	for _, o := range opts {
		o(&cc)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	name := cc.backend
	if name == "" {
		name = g.def
	}
	b, err := g.backend(ctx, name)
	if err != nil {
		return err
	}
	seq := g.seq.Add(1)
	g.inOp.Store(time.Now().UnixNano())
	err = f(b)
	if err != nil {
		err = g.fail(ctx, name, op, seq, err)
	}
	g.inOp.Store(0)
	return err
}

// p2p runs a Send or Recv.
func (g *Group) p2p(ctx context.Context, op string, peer int, opts []CallOption, f func(b backend.Backend) error) error {
	var cc callConfig
	for _, o := range opts {
		o(&cc)
	}
	if peer < 0 || peer >= g.size || peer == g.rank {
		return fmt.Errorf("collectives: group %q: %s on rank %d with peer %d (want another rank below %d)", g.name, op, g.rank, peer, g.size)
	}
	name := cc.backend
	if name == "" {
		name = g.def
	}
	g.mu.RLock()
	b := g.backends[name]
	closed := g.closed
	g.mu.RUnlock()
	if closed {
		return fmt.Errorf("collectives: group %q is destroyed", g.name)
	}
	if b == nil {
		g.mu.Lock()
		var err error
		b, err = g.backend(ctx, name)
		g.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := f(b); err != nil {
		var we *WaitError
		if errors.As(err, &we) {
			return fmt.Errorf("collectives: group %q: %w", g.name, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("collectives: group %q: %s on rank %d: %w", g.name, op, g.rank, &WaitError{Op: op, Rank: g.rank, Missing: []int{peer}, Err: ctx.Err()})
		}
		return fmt.Errorf("collectives: group %q: %s on rank %d with peer %d: %w", g.name, op, g.rank, peer, err)
	}
	return nil
}

// fail turns a failed call's error into one that names the group, and
// the ranks that never arrived when the call ran out of time. The backend
// is closed: it may be left mid-protocol.
func (g *Group) fail(ctx context.Context, name, op string, seq uint64, err error) error {
	if b := g.backends[name]; b != nil {
		b.Close()
		delete(g.backends, name)
		g.failed[name] = err
	}
	var we *WaitError
	if ctx.Err() != nil && g.kv && !errors.As(err, &we) {
		if miss, derr := g.diagnose(ctx, seq); derr == nil {
			err = &WaitError{Op: op, Rank: g.rank, Missing: miss, Err: ctx.Err()}
		}
	}
	if errors.As(err, &we) && we.Op == "" {
		we.Op = op
	}
	return fmt.Errorf("collectives: group %q: %s (call %d) on rank %d via %s: %w", g.name, op, seq, g.rank, name, err)
}

// Direct runs f with the group's backend of that name (the default when
// name is ""), as one collective call: every rank must make it, in the
// same order as the group's other calls. It is how backend-specific
// operations are reached, such as NCCL's on device memory:
//
//	err := g.Direct(ctx, collectives.NCCL, func(b backend.Backend) error {
//		return b.(*nccl.Backend).AllreduceDevice(ctx, buf, buf, collectives.Sum, stream, nccl.Wait)
//	})
func (g *Group) Direct(ctx context.Context, name string, f func(backend.Backend) error) error {
	var opts []CallOption
	if name != "" {
		opts = append(opts, Via(name))
	}
	return g.collective(ctx, "direct", opts, f)
}
