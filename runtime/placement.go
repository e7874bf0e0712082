package runtime

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

// Placement group strategies, as in Ray.
const (
	PGPack uint8 = iota
	PGSpread
	PGStrictPack
	PGStrictSpread
)

// PGStrategyName names a placement strategy.
func PGStrategyName(s uint8) string {
	switch s {
	case PGPack:
		return "PACK"
	case PGSpread:
		return "SPREAD"
	case PGStrictPack:
		return "STRICT_PACK"
	case PGStrictSpread:
		return "STRICT_SPREAD"
	}
	return fmt.Sprintf("strategy(%d)", s)
}

type nodeRes struct {
	id    wire.NodeID
	total wire.Resources
	avail wire.Resources
}

func fits(need, have wire.Resources) bool {
	for k, v := range need {
		if v > 0 && have[k] < v-1e-9 {
			return false
		}
	}
	return true
}

func sub(have, need wire.Resources) {
	for k, v := range need {
		have[k] -= v
	}
}

func add(have, r wire.Resources) {
	for k, v := range r {
		have[k] += v
	}
}

func sumRes(rs []wire.Resources) wire.Resources {
	out := wire.Resources{}
	for _, r := range rs {
		add(out, r)
	}
	return out
}

// feasible says whether bundles could ever be placed on nodes (by their
// totals), and if not, why.
func feasible(nodes []nodeRes, bundles []wire.Resources, strategy uint8) error {
	for i, b := range bundles {
		ok := false
		for _, n := range nodes {
			if fits(b, n.total) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("bundle %d %v fits on no node", i, b)
		}
	}
	switch strategy {
	case PGStrictPack:
		all := sumRes(bundles)
		for _, n := range nodes {
			if fits(all, n.total) {
				return nil
			}
		}
		return fmt.Errorf("STRICT_PACK: no single node has %v", all)
	case PGStrictSpread:
		// Each bundle needs its own node: match greedily, biggest first.
		if len(bundles) > len(nodes) {
			return fmt.Errorf("STRICT_SPREAD: %d bundles but only %d nodes", len(bundles), len(nodes))
		}
		if _, ok := place(nodes, bundles, strategy, true); !ok {
			return fmt.Errorf("STRICT_SPREAD: the %d bundles cannot each get their own node", len(bundles))
		}
	}
	return nil
}

// place chooses a node for every bundle from the nodes' available (or, with
// useTotal, total) resources. It is all or nothing.
func place(nodes []nodeRes, bundles []wire.Resources, strategy uint8, useTotal bool) ([]wire.NodeID, bool) {
	left := make([]wire.Resources, len(nodes))
	for i, n := range nodes {
		if useTotal {
			left[i] = copyRes(n.total)
		} else {
			left[i] = copyRes(n.avail)
		}
	}
	out := make([]wire.NodeID, len(bundles))
	switch strategy {
	case PGStrictPack, PGPack:
		all := sumRes(bundles)
		// Prefer one node for everything.
		for i, n := range nodes {
			if fits(all, left[i]) {
				for j := range out {
					out[j] = n.id
				}
				return out, true
			}
		}
		if strategy == PGStrictPack {
			return nil, false
		}
		// PACK falls back to filling the roomiest nodes first.
		order := make([]int, len(nodes))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return left[order[x]]["CPU"] > left[order[y]]["CPU"] })
		for j, b := range bundles {
			placed := false
			for _, i := range order {
				n := nodes[i]
				if fits(b, left[i]) {
					sub(left[i], b)
					out[j] = n.id
					placed = true
					break
				}
			}
			if !placed {
				return nil, false
			}
		}
		return out, true
	case PGSpread, PGStrictSpread:
		used := make([]bool, len(nodes))
		for j, b := range bundles {
			placed := false
			// A node not used yet first; SPREAD may then reuse nodes.
			for pass := 0; pass < 2 && !placed; pass++ {
				if pass == 1 && strategy == PGStrictSpread {
					break
				}
				for k := range nodes {
					i := (j + k) % len(nodes)
					if (pass == 0 && used[i]) || !fits(b, left[i]) {
						continue
					}
					sub(left[i], b)
					used[i] = true
					out[j] = nodes[i].id
					placed = true
					break
				}
			}
			if !placed {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

func (h *Head) aliveNodesLocked() []nodeRes {
	var out []nodeRes
	for _, n := range h.nodes {
		if n.info.Alive {
			out = append(out, nodeRes{id: n.info.ID, total: n.info.Total, avail: n.info.Available})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (h *Head) groupCreate(body []byte) ([]byte, error) {
	g := &headGroup{}
	if err := decodeBody(body, func(d *wire.Dec) {
		g.job = d.Uvarint()
		g.name = d.Str()
		g.strategy = d.U8()
		n := d.Len(1)
		for i := 0; i < n; i++ {
			g.bundles = append(g.bundles, d.Resources())
		}
	}); err != nil {
		return nil, err
	}
	if len(g.bundles) == 0 {
		return nil, fmt.Errorf("%w: a placement group needs at least one bundle", ErrInvalid)
	}
	if g.strategy > PGStrictSpread {
		return nil, fmt.Errorf("%w: unknown placement strategy %d", ErrInvalid, g.strategy)
	}
	h.mu.Lock()
	if err := feasible(h.aliveNodesLocked(), g.bundles, g.strategy); err != nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: placement group can never be placed: %v", ErrInfeasible, err)
	}
	h.nextPG++
	g.id = h.nextPG
	h.groups[g.id] = g
	h.mu.Unlock()
	go h.placeGroup(g)
	return encode(func(e *wire.Enc) { e.Uvarint(g.id) }), nil
}

// placeGroup tries to reserve every bundle of g on the nodes chosen; if any
// node refuses, the bundles already reserved are released and the group
// stays pending, to be tried again when loads change.
func (h *Head) placeGroup(g *headGroup) {
	h.mu.Lock()
	if g.ready || g.removed || g.placing {
		h.mu.Unlock()
		return
	}
	nodes, ok := place(h.aliveNodesLocked(), g.bundles, g.strategy, false)
	if !ok {
		h.mu.Unlock()
		return
	}
	g.placing = true
	conns := map[wire.NodeID]*headNode{}
	for _, id := range nodes {
		conns[id] = h.nodes[id]
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var reserved []int
	failed := false
	for i, id := range nodes {
		n := conns[id]
		body := encode(func(e *wire.Enc) { e.Uvarint(g.id); e.Uvarint(uint64(i)); e.Resources(g.bundles[i]) })
		if n == nil || n.conn == nil {
			failed = true
			break
		}
		if _, err := n.calls.call(ctx, n.conn, wire.OpPGReserve, body); err != nil {
			failed = true
			break
		}
		reserved = append(reserved, i)
	}
	h.mu.Lock()
	removed := g.removed
	if !failed && !removed {
		g.nodes = nodes
		g.ready = true
		for _, w := range g.waiters {
			close(w)
		}
		g.waiters = nil
	}
	g.placing = false
	h.mu.Unlock()
	if failed || removed {
		for _, i := range reserved {
			h.releaseBundle(g.id, i, conns[nodes[i]])
		}
	}
}

func (h *Head) releaseBundle(id uint64, i int, n *headNode) {
	if n == nil || n.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.calls.call(ctx, n.conn, wire.OpPGRelease, encode(func(e *wire.Enc) { e.Uvarint(id); e.Uvarint(uint64(i)) }))
}

func (h *Head) groupWait(body []byte) ([]byte, error) {
	var id, timeout uint64
	if err := decodeBody(body, func(d *wire.Dec) { id = d.Uvarint(); timeout = d.Uvarint() }); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Millisecond)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		g := h.groups[id]
		if g == nil || g.removed {
			h.mu.Unlock()
			return nil, fmt.Errorf("placement group %d: %w (removed or never created)", id, ErrNotFound)
		}
		if g.ready {
			nodes := g.nodes
			h.mu.Unlock()
			return encode(func(e *wire.Enc) {
				e.Uvarint(uint64(len(nodes)))
				for _, n := range nodes {
					e.U32(uint32(n))
				}
			}), nil
		}
		w := make(chan struct{})
		g.waiters = append(g.waiters, w)
		h.mu.Unlock()
		select {
		case <-w:
		case <-deadline.C:
			return nil, fmt.Errorf("placement group %d not ready after %v: %w", id, time.Duration(timeout)*time.Millisecond, ErrTimeout)
		case <-h.done:
			return nil, fmt.Errorf("head stopped: %w", ErrUnavailable)
		}
	}
}

func (h *Head) groupRemove(id uint64) error {
	h.mu.Lock()
	g := h.groups[id]
	if g == nil || g.removed {
		h.mu.Unlock()
		return fmt.Errorf("placement group %d: %w", id, ErrNotFound)
	}
	g.removed = true
	delete(h.groups, id)
	wasReady := g.ready
	nodes := g.nodes
	conns := map[wire.NodeID]*headNode{}
	for _, n := range nodes {
		conns[n] = h.nodes[n]
	}
	for _, w := range g.waiters {
		close(w)
	}
	g.waiters = nil
	h.mu.Unlock()
	if wasReady {
		for i, n := range nodes {
			h.releaseBundle(id, i, conns[n])
		}
	}
	return nil
}
