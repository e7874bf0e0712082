package runtime

import (
	"context"
	"errors"
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
	if v, ok := onlyCPU(need); ok { // most tasks: no iteration (costly on a map)
		return v <= 0 || have["CPU"] >= v-1e-9
	}
	for k, v := range need {
		if v > 0 && have[k] < v-1e-9 {
			return false
		}
	}
	return true
}

// onlyCPU returns r's CPU count when CPU is all r names.
func onlyCPU(r wire.Resources) (float64, bool) {
	if len(r) != 1 {
		return 0, false
	}
	v, ok := r["CPU"]
	return v, ok
}

func sub(have, need wire.Resources) {
	if v, ok := onlyCPU(need); ok {
		have["CPU"] -= v
		return
	}
	for k, v := range need {
		have[k] -= v
	}
}

func add(have, r wire.Resources) {
	if v, ok := onlyCPU(r); ok {
		have["CPU"] += v
		return
	}
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

// groupCreate registers a placement group and starts placing it. The
// creating process does not wait for this: the request is answered when
// every bundle is reserved (with their nodes), or when the group fails or
// is removed first. It runs on the requesting connection's reader, so a
// later request from the same process (its removal, a task in it) finds
// the group registered.
func (h *Head) groupCreate(conn *wire.Conn, r *wire.Req) {
	g := &headGroup{}
	err := decodeBody(r.Body, func(d *wire.Dec) {
		g.id = d.Uvarint()
		g.job = d.Uvarint()
		g.name = d.Str()
		g.strategy = d.U8()
		n := d.Len(1)
		for i := 0; i < n; i++ {
			g.bundles = append(g.bundles, d.Resources())
		}
	})
	switch {
	case err != nil:
	case g.id == 0:
		err = fmt.Errorf("%w: placement group ID 0", ErrInvalid)
	case len(g.bundles) == 0:
		err = fmt.Errorf("%w: a placement group needs at least one bundle", ErrInvalid)
	case g.strategy > PGStrictSpread:
		err = fmt.Errorf("%w: unknown placement strategy %d", ErrInvalid, g.strategy)
	}
	h.mu.Lock()
	if err == nil && h.groups[g.id] != nil {
		err = fmt.Errorf("placement group %d: %w", g.id, ErrExists)
	}
	if err == nil {
		if ferr := feasible(h.aliveNodesLocked(), g.bundles, g.strategy); ferr != nil {
			err = fmt.Errorf("%w: can never be placed: %v", ErrInfeasible, ferr)
		}
	}
	if err != nil {
		if g.id != 0 && !errors.Is(err, ErrExists) {
			h.groupGoneLocked(g.id, "its creation failed: "+err.Error())
		}
		h.mu.Unlock()
		reply(conn, r.ID, nil, err)
		return
	}
	g.creator, g.req = conn, r.ID
	h.addGroupLocked(g)
	h.mu.Unlock()
	go h.placeGroup(g)
}

// addGroupLocked records a group to be placed, and lets those waiting for
// it know it exists.
func (h *Head) addGroupLocked(g *headGroup) {
	h.pgSeq++
	g.seq = h.pgSeq
	h.groups[g.id] = g
	for _, w := range h.pgAwait[g.id] {
		close(w)
	}
	delete(h.pgAwait, g.id)
}

// answerLocked replies to the request that created g, once.
func (g *headGroup) answerLocked(body []byte, err error) {
	if g.creator != nil {
		reply(g.creator, g.req, body, err)
		g.creator = nil
	}
}

func encodeNodes(nodes []wire.NodeID) []byte {
	return encode(func(e *wire.Enc) {
		e.Uvarint(uint64(len(nodes)))
		for _, n := range nodes {
			e.U32(uint32(n))
		}
	})
}

// nodeCalls is how the head reaches one node: its connection and the
// requests pending on it, taken under h.mu.
type nodeCalls struct {
	conn  *wire.Conn
	calls *calls
}

func (h *Head) nodeCallsLocked(id wire.NodeID) nodeCalls {
	if n := h.nodes[id]; n != nil && n.conn != nil {
		return nodeCalls{n.conn, &n.calls}
	}
	return nodeCalls{}
}

// bundleResult is a node's answer about bundle i.
type bundleResult struct {
	i   int
	err error
}

// bundleOps sends op for every bundle of group id at once, bundle i to
// nodes[i], without waiting. The answers come on the channel returned (a
// bundle whose node is gone is answered at once, with an error).
func bundleOps(op wire.Op, id uint64, nodes []nodeCalls, bundles []wire.Resources) <-chan bundleResult {
	// Room for two answers per bundle: a connection that fails while a
	// request is being sent may answer it as well as the sender.
	results := make(chan bundleResult, 2*len(nodes))
	for i, n := range nodes {
		body := encode(func(e *wire.Enc) {
			e.Uvarint(id)
			e.Uvarint(uint64(i))
			if op == wire.OpPGReserve {
				e.Resources(bundles[i])
			}
		})
		err := fmt.Errorf("%w: node gone", ErrUnavailable)
		if n.conn != nil {
			err = n.calls.send(n.conn, op, body, func(r *wire.Rep) { results <- bundleResult{i, repErr(r)} })
		}
		if err != nil {
			results <- bundleResult{i, err}
		}
	}
	return results
}

// unconfirmed waits for an answer about each of n bundles, or for ctx to
// end, and lists the bundles that were not confirmed.
func unconfirmed(ctx context.Context, results <-chan bundleResult, n int) (failed []int) {
	ok := make([]bool, n)
wait:
	for range n {
		select {
		case r := <-results:
			ok[r.i] = r.err == nil
		case <-ctx.Done():
			break wait
		}
	}
	for i := range ok {
		if !ok[i] {
			failed = append(failed, i)
		}
	}
	return failed
}

// placeGroup tries to reserve every bundle of g on the nodes chosen, all
// at once; if any node refuses, every bundle is released and the group
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
	conns := make([]nodeCalls, len(nodes))
	for i, id := range nodes {
		conns[i] = h.nodeCallsLocked(id)
		// Count the bundle as taken until the node's next load report,
		// so groups placed meanwhile do not count on the same resources.
		if n := h.nodes[id]; n != nil && n.info.Available != nil {
			avail := copyRes(n.info.Available) // a view being sent may hold the old map
			sub(avail, g.bundles[i])
			n.info.Available = avail
		}
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := unconfirmed(ctx, bundleOps(wire.OpPGReserve, g.id, conns, g.bundles), len(conns)) != nil
	h.mu.Lock()
	removed := g.removed
	if !failed && !removed {
		g.nodes = nodes
		g.ready = true
		for _, w := range g.waiters {
			close(w)
		}
		g.waiters = nil
		g.answerLocked(encodeNodes(nodes), nil)
	}
	g.placing = false
	h.mu.Unlock()
	if failed || removed {
		// Release every bundle: a reservation not confirmed in time may
		// still have been made, and releasing what is not held is a no-op.
		// Sent on the same connections after the reservations, so each
		// node sees them in that order.
		bundleOps(wire.OpPGRelease, g.id, conns, g.bundles)
	}
}

func (h *Head) groupWait(body []byte) ([]byte, error) {
	var id, timeout uint64
	if err := decodeBody(body, func(d *wire.Dec) { id = d.Uvarint(); timeout = d.Uvarint() }); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Millisecond)
	defer deadline.Stop()
	awaited := false
	for {
		h.mu.Lock()
		g := h.groups[id]
		if g == nil && !awaited {
			if _, gone := h.pgGone[id]; !gone {
				// A group's ID is made by its creator, who does not
				// wait for the creation: a task given the ID may ask
				// here before the creation's request has come. Wait a
				// while for it.
				awaited = true
				w := make(chan struct{})
				h.pgAwait[id] = append(h.pgAwait[id], w)
				h.mu.Unlock()
				grace := time.NewTimer(pgCreateGrace)
				select {
				case <-w:
				case <-grace.C:
				case <-deadline.C:
					grace.Stop()
					h.dropAwait(id, w)
					return nil, fmt.Errorf("placement group %d not created after %v: %w", id, time.Duration(timeout)*time.Millisecond, ErrTimeout)
				case <-h.done:
					grace.Stop()
					return nil, fmt.Errorf("head stopped: %w", ErrUnavailable)
				}
				grace.Stop()
				h.dropAwait(id, w)
				continue
			}
		}
		if g == nil || g.removed {
			why := h.pgGone[id]
			if why == "" {
				why = fmt.Sprintf("never created: no creation came within %v", pgCreateGrace)
			}
			h.mu.Unlock()
			return nil, fmt.Errorf("placement group %d: %w (%s)", id, ErrNotFound, why)
		}
		if g.ready {
			nodes := g.nodes
			h.mu.Unlock()
			return encodeNodes(nodes), nil
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

// pgCreateGrace is how long a wait for a group the head has not heard of
// waits for its creation to come.
const pgCreateGrace = 10 * time.Second

// maxGoneGroups bounds the removed and refused groups remembered.
const maxGoneGroups = 1 << 14

// groupGoneLocked remembers why group id is not there, and answers those
// waiting for its creation.
func (h *Head) groupGoneLocked(id uint64, why string) {
	if _, ok := h.pgGone[id]; !ok {
		h.pgGoneIDs = append(h.pgGoneIDs, id)
		if len(h.pgGoneIDs) > maxGoneGroups {
			delete(h.pgGone, h.pgGoneIDs[0])
			h.pgGoneIDs = h.pgGoneIDs[1:]
		}
	}
	h.pgGone[id] = why
	for _, w := range h.pgAwait[id] {
		close(w)
	}
	delete(h.pgAwait, id)
}

// dropAwait removes w from the waits for group id's creation.
func (h *Head) dropAwait(id uint64, w chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.pgAwait[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(h.pgAwait, id)
	} else {
		h.pgAwait[id] = ws
	}
}

// groupRemove forgets a group and sends its bundles' releases to their
// nodes. It does not wait for the nodes, as Ray's GCS does not: each
// release is queued on the node's connection before the removal is
// answered, so whatever the head asks of that node afterwards (a later
// group's reservation) comes after it, and the node's own queue sees the
// resources back as soon as the message arrives. A group not placed yet
// fails its creation's request instead.
func (h *Head) groupRemove(id uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[id]
	if g == nil || g.removed {
		return fmt.Errorf("placement group %d: %w", id, ErrNotFound)
	}
	g.removed = true
	delete(h.groups, id)
	h.groupGoneLocked(id, "removed")
	for _, w := range g.waiters {
		close(w)
	}
	g.waiters = nil
	g.answerLocked(nil, fmt.Errorf("%w: removed before it was placed", ErrNotFound))
	if !g.ready {
		return nil // a placement under way releases what it reserved
	}
	conns := make([]nodeCalls, len(g.nodes))
	for i, n := range g.nodes {
		conns[i] = h.nodeCallsLocked(n)
		// Free again: count it so until the node's next load report.
		if hn := h.nodes[n]; conns[i].conn != nil && hn.info.Available != nil {
			avail := copyRes(hn.info.Available) // a view being sent may hold the old map
			add(avail, g.bundles[i])
			hn.info.Available = avail
		}
	}
	bundleOps(wire.OpPGRelease, id, conns, g.bundles)
	select { // groups waiting for room may fit now
	case h.placeNow <- struct{}{}:
	default:
	}
	return nil
}

// pendingGroupsLocked lists the groups waiting to be placed, oldest first.
func (h *Head) pendingGroupsLocked() []*headGroup {
	var pending []*headGroup
	for _, g := range h.groups {
		if !g.ready && !g.removed && !g.placing {
			pending = append(pending, g)
		}
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].seq < pending[j].seq })
	return pending
}
