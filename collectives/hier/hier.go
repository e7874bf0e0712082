package hier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
	_ "github.com/raygo/raygo/collectives/shm" // registers "shm", the default inside a node
	"github.com/raygo/raygo/collectives/tcp"
)

// Name is the name the backend is registered under.
const Name = "hier"

func init() { backend.Register(Name, New) }

// options are the backend's settings; see the package documentation.
type options struct {
	intra        string // backend inside a node
	inter        string // backend across nodes
	shardedAbove int    // allreduce: sharded algorithm from this many bytes
	sub          map[string]string
}

var optionKeys = map[string]string{
	"hier.intra":         "backend for the ranks of one node (default shm)",
	"hier.inter":         "backend across nodes (default tcp)",
	"hier.sharded_above": "allreduce shards across nodes from this many bytes when every node has the same number of ranks (default 0: always; -1 never)",
}

func parseOptions(m map[string]string) (options, error) {
	o := options{intra: "shm", inter: tcp.Name, shardedAbove: 0, sub: map[string]string{}}
	for k, v := range m {
		if !strings.HasPrefix(k, "hier.") {
			o.sub[k] = v // the sub-groups' backends check their own
			continue
		}
		switch k {
		case "hier.intra":
			o.intra = v
		case "hier.inter":
			o.inter = v
		case "hier.sharded_above":
			n, err := strconv.Atoi(v)
			if err != nil || n < -1 {
				return o, fmt.Errorf("collectives: hier: option %s=%q: want a byte count, or -1 for never", k, v)
			}
			o.shardedAbove = n
		default:
			keys := make([]string, 0, len(optionKeys))
			for k := range optionKeys {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return o, fmt.Errorf("collectives: hier: unknown option %q (valid: %s)", k, strings.Join(keys, ", "))
		}
	}
	for _, name := range []string{o.intra, o.inter} {
		if name == Name {
			return o, fmt.Errorf("collectives: hier: a sub-group cannot use the hier backend itself")
		}
		if _, ok := backend.Lookup(name); !ok {
			return o, fmt.Errorf("collectives: hier: no backend %q is registered (have %s)", name, strings.Join(backend.Names(), ", "))
		}
	}
	return o, nil
}

// comm is one rank's end of a hierarchical group.
//
// It belongs to up to two sub-groups: the ranks of its node (intra,
// absent when it is alone on its node) and an inter-node group (inter):
// the leaders, or, when every node has the same number of ranks, the
// ranks with the same index on every node (inter group j holds every
// node's j-th rank; group 0 is the leaders). Send and Recv between
// nodes, and the sub-groups' rendezvous, use p2p: a lazily connected tcp
// backend over the whole group.
type comm struct {
	group      string
	rank, size int
	lay        layout
	node       int // this rank's node
	local      int // its index there
	opt        options
	intra      *sub // nil when alone on the node
	inter      *sub // nil when not in one (one node, or not a leader)
	p2p        backend.Backend
	tmp        [3][]byte
}

// New builds one rank's end of a hierarchical group from cfg.Members'
// Node fields.
func New(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	opt, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	if cfg.Size < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return nil, fmt.Errorf("collectives: hier group %q: rank %d of %d is out of range", cfg.Group, cfg.Rank, cfg.Size)
	}
	if len(cfg.Members) != cfg.Size {
		return nil, fmt.Errorf("collectives: hier group %q: %d members listed for %d ranks; the hierarchy needs each rank's node", cfg.Group, len(cfg.Members), cfg.Size)
	}
	if cfg.Size > 1 && cfg.Rendezvous == nil {
		return nil, fmt.Errorf("collectives: hier group %q: no rendezvous", cfg.Group)
	}
	c := &comm{group: cfg.Group, rank: cfg.Rank, size: cfg.Size, lay: newLayout(cfg.Members), opt: opt}
	c.node, c.local = c.lay.nodeOf[c.rank], c.lay.localOf[c.rank]
	if err := c.build(ctx, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *comm) build(ctx context.Context, cfg backend.Config) error {
	if c.size == 1 {
		return nil
	}
	// Point-to-point connections over the whole group, made on first use.
	popts := maps.Clone(c.opt.sub)
	popts["tcp.connect"] = "lazy"
	var err error
	c.p2p, err = tcp.New(ctx, backend.Config{Group: c.group + "/p2p", Rank: c.rank, Size: c.size, Members: cfg.Members,
		Rendezvous: prefixed{cfg.Rendezvous, "p2p/"}, Options: popts})
	if err != nil {
		return fmt.Errorf("collectives: hier group %q rank %d: point-to-point connections: %w", c.group, c.rank, err)
	}
	mine := c.lay.nodes[c.node]
	if len(mine) > 1 {
		c.intra = &sub{name: fmt.Sprintf("intra-node group of node %d", c.node), group: fmt.Sprintf("%s/node%d", c.group, c.node), ranks: mine, me: c.local}
	}
	if len(c.lay.nodes) > 1 {
		switch {
		case c.lay.uniform:
			c.inter = &sub{name: fmt.Sprintf("inter-node group of shard %d", c.local), group: fmt.Sprintf("%s/shard%d", c.group, c.local), ranks: c.lay.shard(c.local), me: c.node}
		case c.local == 0:
			c.inter = &sub{name: "inter-node group of the leaders", group: c.group + "/shard0", ranks: c.lay.shard(0), me: c.node}
		}
	}
	// Both sub-groups are built at once: their ranks pair up with
	// different peers, and a rank's peers may be building either one.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*sub{c.intra, c.inter} {
		if s == nil {
			continue
		}
		name := c.opt.intra
		if s == c.inter {
			name = c.opt.inter
		}
		f, _ := backend.Lookup(name)
		wg.Go(func() {
			rv := subRendezvous{p2p: c.p2p, group: s.group, ranks: s.ranks, me: s.me}
			b, err := f(ctx, s.config(cfg, rv, c.opt.sub))
			if err != nil {
				errs[i] = fmt.Errorf("collectives: hier group %q rank %d: building the %s with %s: %w", c.group, c.rank, s.describe(), name, err)
				cancel()
				return
			}
			s.b = b
		})
	}
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}

// Close closes the sub-groups' backends.
func (c *comm) Close() error {
	var errs []error
	for _, s := range []*sub{c.intra, c.inter} {
		if s != nil && s.b != nil {
			errs = append(errs, s.b.Close())
		}
	}
	if c.p2p != nil {
		errs = append(errs, c.p2p.Close())
	}
	return errors.Join(errs...)
}

// wrap explains an error from sub-group s: its ranks are translated to
// this group's, and a WaitError is rewritten in this group's ranks.
func (c *comm) wrap(op string, s *sub, err error) error {
	if err == nil {
		return nil
	}
	var we *backend.WaitError
	if errors.As(err, &we) {
		missing := make([]int, 0, len(we.Missing))
		for _, m := range we.Missing {
			if m >= 0 && m < len(s.ranks) {
				missing = append(missing, s.ranks[m])
			}
		}
		return &backend.WaitError{Op: op, Rank: c.rank, Missing: missing, Err: fmt.Errorf("in the %s: %w", s.describe(), err)}
	}
	return fmt.Errorf("collectives: hier group %q rank %d: %s in the %s: %w", c.group, c.rank, op, s.describe(), err)
}

// prefixed puts a prefix before every key of a rendezvous.
type prefixed struct {
	rv     backend.Rendezvous
	prefix string
}

func (p prefixed) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	return p.rv.Exchange(ctx, p.prefix+key, mine)
}

func (p prefixed) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	return p.rv.Broadcast(ctx, p.prefix+key, root, value)
}
