package raygo

import (
	"context"
	"fmt"
	"time"

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
	nodes   []NodeID
}

// NewPlacementGroup asks for bundles to be reserved. It fails at once if
// the cluster could never hold them; otherwise they are reserved as soon as
// resources allow (see Wait).
func NewPlacementGroup(ctx context.Context, bundles []Bundle, strategy PlacementStrategy) (*PlacementGroup, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	body, err := c.Request(ctx, wire.OpPGCreate, encodeBody(func(e *wire.Enc) {
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
	d := wire.NewDec(body)
	id := d.Uvarint()
	if d.Err() != nil {
		return nil, d.Err()
	}
	return &PlacementGroup{id: id, bundles: bundles}, nil
}

// ID is the group's cluster-wide number.
func (pg *PlacementGroup) ID() uint64 { return pg.id }

// Bundles are the bundles asked for.
func (pg *PlacementGroup) Bundles() []Bundle { return pg.bundles }

// Wait blocks until every bundle is reserved, or ctx ends (its deadline is
// the timeout). It then reports the node of each bundle.
func (pg *PlacementGroup) Wait(ctx context.Context) ([]NodeID, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	timeout := 24 * time.Hour
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return nil, fmt.Errorf("raygo: placement group %d: %w", pg.id, context.DeadlineExceeded)
		}
	}
	body, err := c.Request(ctx, wire.OpPGWait, encodeBody(func(e *wire.Enc) { e.Uvarint(pg.id); e.Uvarint(uint64(timeout / time.Millisecond)) }))
	if err != nil {
		return nil, fmt.Errorf("raygo: placement group %d: %w", pg.id, convert(err))
	}
	d := wire.NewDec(body)
	n := d.Len(4)
	nodes := make([]NodeID, n)
	for i := range nodes {
		nodes[i] = NodeID(d.U32())
	}
	pg.nodes = nodes
	return nodes, d.Err()
}

// Remove releases the reservation.
func (pg *PlacementGroup) Remove(ctx context.Context) error {
	c, err := client()
	if err != nil {
		return err
	}
	_, err = c.Request(ctx, wire.OpPGRemove, encodeBody(func(e *wire.Enc) { e.Uvarint(pg.id) }))
	if err != nil {
		return fmt.Errorf("raygo: remove placement group %d: %w", pg.id, convert(err))
	}
	return nil
}
