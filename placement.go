package raygo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/wire"
)

// Bundle is a set of resources reserved together on one node, e.g.
// Bundle{"CPU": 2, "GPU": 1}.
type Bundle map[string]float64

// PlacementStrategy says how a placement group's bundles are spread.
type PlacementStrategy uint8

// Placement strategies, as in Ray.
const (
	Pack         = PlacementStrategy(runtime.PGPack)         // as few nodes as possible
	SpreadNodes  = PlacementStrategy(runtime.PGSpread)       // as many nodes as possible
	StrictPack   = PlacementStrategy(runtime.PGStrictPack)   // all on one node, or wait
	StrictSpread = PlacementStrategy(runtime.PGStrictSpread) // each on its own node, or wait
)

func (s PlacementStrategy) String() string { return runtime.PGStrategyName(uint8(s)) }

// PlacementGroup is a set of bundles reserved atomically across the
// cluster: all of them or none. Tasks and actors run in a bundle with
// InPlacementGroup and use the resources reserved there.
type PlacementGroup struct {
	id      uint64
	bundles []Bundle
	create  *runtime.Call // answered once every bundle is reserved, or the group failed

	mu      sync.Mutex
	removed bool
}

// NewPlacementGroup asks for bundles to be reserved and returns at once,
// without waiting for the head: the bundles are reserved as soon as
// resources allow, and Wait says when. A group the cluster could never hold
// (a bundle no node has room for, or more STRICT_SPREAD bundles than nodes)
// is reported by Wait, with ErrUnschedulable. A group with no bundles or an
// unknown strategy fails here.
func NewPlacementGroup(ctx context.Context, bundles []Bundle, strategy PlacementStrategy) (*PlacementGroup, error) {
	if len(bundles) == 0 {
		return nil, errors.New("raygo: placement group: no bundles")
	}
	if strategy > StrictSpread {
		return nil, fmt.Errorf("raygo: placement group: unknown strategy %d", strategy)
	}
	c, err := client()
	if err != nil {
		return nil, err
	}
	// The ID is chosen here, so the request need not be waited for: 64
	// random bits, unique among the groups alive at once (the head refuses
	// a duplicate, and Wait reports it).
	id := rand.Uint64()
	for id == 0 {
		id = rand.Uint64()
	}
	call, err := c.Start(wire.OpPGCreate, encodeBody(func(e *wire.Enc) {
		e.Uvarint(id)
		e.Uvarint(c.Job())
		e.Str("")
		e.U8(uint8(strategy))
		e.Uvarint(uint64(len(bundles)))
		for _, b := range bundles {
			e.Resources(wire.Resources(b))
		}
	}))
	if err != nil {
		return nil, fmt.Errorf("raygo: placement group: %w", convert(err))
	}
	return &PlacementGroup{id: id, bundles: bundles, create: call}, nil
}

// ID is the group's cluster-wide number.
func (pg *PlacementGroup) ID() uint64 { return pg.id }

// Bundles are the bundles asked for.
func (pg *PlacementGroup) Bundles() []Bundle { return pg.bundles }

// Wait blocks until every bundle is reserved, or ctx ends (its deadline is
// the timeout), and then reports the node of each bundle. It fails with
// ErrUnschedulable if the cluster could never hold the group, and once the
// group was removed. Wait may be called again after a timeout, and from
// several goroutines.
func (pg *PlacementGroup) Wait(ctx context.Context) ([]NodeID, error) {
	body, err := pg.create.Result(ctx)
	if err != nil {
		return nil, fmt.Errorf("raygo: placement group %d: %w", pg.id, convert(err))
	}
	pg.mu.Lock()
	removed := pg.removed
	pg.mu.Unlock()
	if removed {
		return nil, fmt.Errorf("raygo: placement group %d: %w (removed)", pg.id, runtime.ErrNotFound)
	}
	d := wire.NewDec(body)
	n := d.Len(4)
	nodes := make([]NodeID, n)
	for i := range nodes {
		nodes[i] = NodeID(d.U32())
	}
	return nodes, d.Err()
}

// failed says whether the group's creation is known to have failed: then
// nothing was ever reserved.
func (pg *PlacementGroup) failed() bool {
	select {
	case <-pg.create.Done():
		_, err := pg.create.Result(context.Background())
		return err != nil
	default:
		return false
	}
}

// Remove releases the reservation on every node, or gives up the request
// if the bundles are not reserved yet; Wait then fails. Removing a group
// whose creation failed does nothing.
func (pg *PlacementGroup) Remove(ctx context.Context) error {
	if pg.failed() {
		return nil
	}
	c, err := client()
	if err != nil {
		return err
	}
	_, err = c.Request(ctx, wire.OpPGRemove, encodeBody(func(e *wire.Enc) { e.Uvarint(pg.id) }))
	if err != nil {
		// The head answers a process's requests in order: if the creation
		// failed, its answer is in by now.
		if errors.Is(err, runtime.ErrNotFound) && pg.failed() {
			return nil
		}
		return fmt.Errorf("raygo: remove placement group %d: %w", pg.id, convert(err))
	}
	pg.mu.Lock()
	pg.removed = true
	pg.mu.Unlock()
	return nil
}
