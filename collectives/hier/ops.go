package hier

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

var _ backend.Reducer = (*comm)(nil)
var _ backend.Gatherer = (*comm)(nil)
var _ backend.Scatterer = (*comm)(nil)

// scratch returns scratch buffer i of n bytes, kept between calls.
func (c *comm) scratch(i, n int) []byte {
	if cap(c.tmp[i]) < n {
		c.tmp[i] = make([]byte, n)
	}
	return c.tmp[i][:n]
}

func (c *comm) errorf(format string, args ...any) error {
	return fmt.Errorf("collectives: hier group %q rank %d: "+format, append([]any{c.group, c.rank}, args...)...)
}

// leader reports whether this rank is its node's leader (local index 0).
func (c *comm) leader() bool { return c.local == 0 }

// The helpers below run one operation in a sub-group; in a sub-group of
// one (no intra: alone on the node) they are the identity.

func (c *comm) intraReduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if c.intra == nil {
		copy(recv, send)
		return nil
	}
	return c.wrap("reduce", c.intra, backend.DoReduce(ctx, c.intra.b, c.local, send, recv, dt, op, 0))
}

func (c *comm) intraBroadcast(ctx context.Context, buf []byte, root int) error {
	if c.intra == nil {
		return nil
	}
	return c.wrap("broadcast", c.intra, c.intra.b.Broadcast(ctx, buf, root))
}

// Allreduce. With one node it is the node's allreduce, with one rank per
// node the inter-node group's. Otherwise, when every node has the same
// number L of ranks and the buffer holds at least hier.sharded_above
// bytes, it shards: each node reduce-scatters into L shards, local rank j
// of every node allreduces shard j across nodes (L inter-node allreduces
// at once, each 1/L of the data), and each node allgathers the shards;
// elements left over when L does not divide the length take the leader
// path. The leader path: each node reduces to its leader, the leaders
// allreduce, and each leader broadcasts to its node.
func (c *comm) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if len(send) != len(recv) {
		return c.errorf("allreduce: send holds %d bytes and receive %d", len(send), len(recv))
	}
	switch {
	case c.size == 1:
		copy(recv, send)
		return nil
	case c.inter == nil && c.intra != nil && len(c.lay.nodes) == 1:
		return c.wrap("allreduce", c.intra, c.intra.b.Allreduce(ctx, send, recv, dt, op))
	case c.intra == nil && c.lay.maxPer == 1:
		return c.wrap("allreduce", c.inter, c.inter.b.Allreduce(ctx, send, recv, dt, op))
	}
	L := c.lay.maxPer
	es := dt.Size()
	if es == 0 || len(send)%es != 0 {
		return c.errorf("allreduce: %d bytes is not a whole number of %v elements", len(send), dt)
	}
	if c.lay.uniform && c.opt.shardedAbove >= 0 && len(send) >= c.opt.shardedAbove && len(send)/es >= L {
		shard := len(send) / es / L * es
		head := shard * L
		if err := c.shardedAllreduce(ctx, send[:head], recv[:head], shard, dt, op); err != nil {
			return err
		}
		send, recv = send[head:], recv[head:]
		if len(send) == 0 {
			return nil
		}
	}
	return c.leaderAllreduce(ctx, send, recv, dt, op)
}

func (c *comm) shardedAllreduce(ctx context.Context, send, recv []byte, shard int, dt backend.DType, op backend.Op) error {
	mine := c.scratch(0, shard)
	if err := c.intra.b.ReduceScatter(ctx, send, mine, dt, op); err != nil {
		return c.wrap("allreduce", c.intra, err)
	}
	if err := c.inter.b.Allreduce(ctx, mine, mine, dt, op); err != nil {
		return c.wrap("allreduce", c.inter, err)
	}
	return c.wrap("allreduce", c.intra, c.intra.b.Allgather(ctx, mine, recv))
}

func (c *comm) leaderAllreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if err := c.intraReduce(ctx, send, recv, dt, op); err != nil {
		return err
	}
	if c.leader() {
		if err := c.inter.b.Allreduce(ctx, recv, recv, dt, op); err != nil {
			return c.wrap("allreduce", c.inter, err)
		}
	}
	return c.intraBroadcast(ctx, recv, 0)
}

// Broadcast: root's node broadcasts from root (reaching its leader), the
// leaders broadcast from root's node, and the other nodes broadcast from
// their leaders.
func (c *comm) Broadcast(ctx context.Context, buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("broadcast: root %d out of range for %d ranks", root, c.size)
	}
	if c.size == 1 {
		return nil
	}
	rn := c.lay.nodeOf[root]
	if c.node == rn {
		if err := c.intraBroadcast(ctx, buf, c.lay.localOf[root]); err != nil {
			return err
		}
	}
	if c.leader() && len(c.lay.nodes) > 1 {
		if err := c.inter.b.Broadcast(ctx, buf, rn); err != nil {
			return c.wrap("broadcast", c.inter, err)
		}
	}
	if c.node != rn {
		return c.intraBroadcast(ctx, buf, 0)
	}
	return nil
}

// Reduce: each node reduces to its leader, the leaders reduce to root's
// node's leader, which hands the result to root if root is not itself.
func (c *comm) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("reduce: root %d out of range for %d ranks", root, c.size)
	}
	if c.rank == root && len(recv) != len(send) {
		return c.errorf("reduce: send holds %d bytes and receive %d", len(send), len(recv))
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	rn, rl := c.lay.nodeOf[root], c.lay.localOf[root]
	var nodeSum []byte
	if c.leader() {
		nodeSum = c.scratch(0, len(send))
		if c.rank == root && len(c.lay.nodes) == 1 {
			nodeSum = recv
		}
	}
	if err := c.intraReduce(ctx, send, nodeSum, dt, op); err != nil {
		return err
	}
	if !c.leader() {
		if c.rank == root {
			return c.wrap("reduce", c.intra, c.intra.b.Recv(ctx, recv, 0))
		}
		return nil
	}
	total := nodeSum
	if len(c.lay.nodes) > 1 {
		total = nil
		if c.node == rn {
			total = recv
			if c.rank != root {
				total = c.scratch(1, len(send))
			}
		}
		if err := backend.DoReduce(ctx, c.inter.b, c.node, nodeSum, total, dt, op, rn); err != nil {
			return c.wrap("reduce", c.inter, err)
		}
	}
	if c.node == rn && rl != 0 {
		return c.wrap("reduce", c.intra, c.intra.b.Send(ctx, total, rl))
	}
	return nil
}

// Allgather: each node gathers to its leader, the leaders allgather
// their nodes' blocks (padded to the largest node), each leader puts the
// blocks in rank order, and broadcasts them to its node.
func (c *comm) Allgather(ctx context.Context, send, recv []byte) error {
	k := len(send)
	if len(recv) != c.size*k {
		return c.errorf("allgather: receive holds %d bytes, want %d ranks × %d", len(recv), c.size, k)
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if len(c.lay.nodes) == 1 {
		return c.wrap("allgather", c.intra, c.intra.b.Allgather(ctx, send, recv))
	}
	L := c.lay.maxPer
	nodeBlk := c.scratch(0, L*k) // this node's blocks, padded
	if c.intra != nil {
		var dst []byte
		if c.leader() {
			dst = nodeBlk[:len(c.lay.nodes[c.node])*k]
		}
		if err := backend.DoGather(ctx, c.intra.b, c.local, len(c.intra.ranks), send, dst, 0); err != nil {
			return c.wrap("allgather", c.intra, err)
		}
	} else {
		copy(nodeBlk, send)
	}
	if c.leader() {
		all := c.scratch(1, len(c.lay.nodes)*L*k)
		if err := c.inter.b.Allgather(ctx, nodeBlk, all); err != nil {
			return c.wrap("allgather", c.inter, err)
		}
		for n, ranks := range c.lay.nodes {
			for i, r := range ranks {
				copy(recv[r*k:(r+1)*k], all[(n*L+i)*k:])
			}
		}
	}
	return c.intraBroadcast(ctx, recv, 0)
}

// ReduceScatter: each node reduces to its leader; the leaders
// reduce-scatter with the blocks arranged node by node (padded to the
// largest node), so that each leader gets its node's blocks; each leader
// scatters them to its node.
func (c *comm) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	k := len(recv)
	if len(send) != c.size*k {
		return c.errorf("reducescatter: send holds %d bytes, want %d ranks × %d", len(send), c.size, k)
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if len(c.lay.nodes) == 1 {
		return c.wrap("reducescatter", c.intra, c.intra.b.ReduceScatter(ctx, send, recv, dt, op))
	}
	L := c.lay.maxPer
	var nodeSum []byte
	if c.leader() {
		nodeSum = c.scratch(0, len(send))
	}
	if err := c.intraReduce(ctx, send, nodeSum, dt, op); err != nil {
		return err
	}
	var mine []byte
	if c.leader() {
		arranged := c.scratch(1, len(c.lay.nodes)*L*k)
		clear(arranged)
		for n, ranks := range c.lay.nodes {
			for i, r := range ranks {
				copy(arranged[(n*L+i)*k:], nodeSum[r*k:(r+1)*k])
			}
		}
		mine = c.scratch(2, L*k)
		if err := c.inter.b.ReduceScatter(ctx, arranged, mine, dt, op); err != nil {
			return c.wrap("reducescatter", c.inter, err)
		}
	}
	if c.intra == nil {
		copy(recv, mine)
		return nil
	}
	var src []byte
	if c.leader() {
		src = mine[:len(c.intra.ranks)*k]
	}
	return c.wrap("reducescatter", c.intra, backend.DoScatter(ctx, c.intra.b, c.local, len(c.intra.ranks), src, recv, 0))
}

// Barrier: the node's ranks, then the leaders, then the node's ranks
// again.
func (c *comm) Barrier(ctx context.Context) error {
	if c.size == 1 {
		return nil
	}
	if c.intra != nil {
		if err := c.intra.b.Barrier(ctx); err != nil {
			return c.wrap("barrier", c.intra, err)
		}
	}
	if c.leader() && c.inter != nil {
		if err := c.inter.b.Barrier(ctx); err != nil {
			return c.wrap("barrier", c.inter, err)
		}
	}
	if c.intra != nil {
		return c.wrap("barrier", c.intra, c.intra.b.Barrier(ctx))
	}
	return nil
}

// Gather: each node gathers to its leader, the leaders gather their
// nodes' blocks (padded) to root's node's leader, which puts them in
// rank order and hands them to root if root is not itself.
func (c *comm) Gather(ctx context.Context, send, recv []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("gather: root %d out of range for %d ranks", root, c.size)
	}
	k := len(send)
	if c.rank == root && len(recv) != c.size*k {
		return c.errorf("gather: receive holds %d bytes, want %d ranks × %d", len(recv), c.size, k)
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if len(c.lay.nodes) == 1 {
		return c.wrap("gather", c.intra, backend.DoGather(ctx, c.intra.b, c.local, len(c.intra.ranks), send, recv, c.lay.localOf[root]))
	}
	rn, rl := c.lay.nodeOf[root], c.lay.localOf[root]
	L := c.lay.maxPer
	nodeBlk := c.scratch(0, L*k)
	if c.intra != nil {
		var dst []byte
		if c.leader() {
			dst = nodeBlk[:len(c.intra.ranks)*k]
		}
		if err := backend.DoGather(ctx, c.intra.b, c.local, len(c.intra.ranks), send, dst, 0); err != nil {
			return c.wrap("gather", c.intra, err)
		}
	} else {
		copy(nodeBlk, send)
	}
	if !c.leader() {
		if c.rank == root {
			return c.wrap("gather", c.intra, c.intra.b.Recv(ctx, recv, 0))
		}
		return nil
	}
	var all []byte
	if c.node == rn {
		all = c.scratch(1, len(c.lay.nodes)*L*k)
	}
	if err := backend.DoGather(ctx, c.inter.b, c.node, len(c.lay.nodes), nodeBlk, all, rn); err != nil {
		return c.wrap("gather", c.inter, err)
	}
	if c.node != rn {
		return nil
	}
	out := recv
	if rl != 0 {
		out = c.scratch(2, c.size*k)
	}
	for n, ranks := range c.lay.nodes {
		for i, r := range ranks {
			copy(out[r*k:(r+1)*k], all[(n*L+i)*k:])
		}
	}
	if rl != 0 {
		return c.wrap("gather", c.intra, c.intra.b.Send(ctx, out, rl))
	}
	return nil
}

// Scatter reverses Gather: root hands its blocks to its leader, which
// arranges them node by node and scatters them to the leaders, which
// scatter them to their nodes.
func (c *comm) Scatter(ctx context.Context, send, recv []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("scatter: root %d out of range for %d ranks", root, c.size)
	}
	k := len(recv)
	if c.rank == root && len(send) != c.size*k {
		return c.errorf("scatter: send holds %d bytes, want %d ranks × %d", len(send), c.size, k)
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if len(c.lay.nodes) == 1 {
		return c.wrap("scatter", c.intra, backend.DoScatter(ctx, c.intra.b, c.local, len(c.intra.ranks), send, recv, c.lay.localOf[root]))
	}
	rn, rl := c.lay.nodeOf[root], c.lay.localOf[root]
	L := c.lay.maxPer
	if c.rank == root && rl != 0 {
		if err := c.intra.b.Send(ctx, send, 0); err != nil {
			return c.wrap("scatter", c.intra, err)
		}
	}
	nodeBlk := c.scratch(0, L*k)
	if c.leader() {
		var all []byte
		if c.node == rn {
			src := send
			if rl != 0 {
				src = c.scratch(2, c.size*k)
				if err := c.intra.b.Recv(ctx, src, rl); err != nil {
					return c.wrap("scatter", c.intra, err)
				}
			}
			all = c.scratch(1, len(c.lay.nodes)*L*k)
			for n, ranks := range c.lay.nodes {
				for i, r := range ranks {
					copy(all[(n*L+i)*k:], src[r*k:(r+1)*k])
				}
			}
		}
		if err := backend.DoScatter(ctx, c.inter.b, c.node, len(c.lay.nodes), all, nodeBlk, rn); err != nil {
			return c.wrap("scatter", c.inter, err)
		}
	}
	if c.intra == nil {
		copy(recv, nodeBlk)
		return nil
	}
	var src []byte
	if c.leader() {
		src = nodeBlk[:len(c.intra.ranks)*k]
	}
	return c.wrap("scatter", c.intra, backend.DoScatter(ctx, c.intra.b, c.local, len(c.intra.ranks), src, recv, 0))
}

// Send goes through the node's group to a rank on the same node and
// through the group-wide connections to a rank on another.
func (c *comm) Send(ctx context.Context, buf []byte, peer int) error {
	if peer < 0 || peer >= c.size || peer == c.rank {
		return c.errorf("send: no rank %d to send to (group of %d)", peer, c.size)
	}
	if c.lay.nodeOf[peer] == c.node {
		return c.wrap("send", c.intra, c.intra.b.Send(ctx, buf, c.lay.localOf[peer]))
	}
	return c.p2p.Send(ctx, buf, peer)
}

// Recv mirrors Send.
func (c *comm) Recv(ctx context.Context, buf []byte, peer int) error {
	if peer < 0 || peer >= c.size || peer == c.rank {
		return c.errorf("recv: no rank %d to receive from (group of %d)", peer, c.size)
	}
	if c.lay.nodeOf[peer] == c.node {
		return c.wrap("recv", c.intra, c.intra.b.Recv(ctx, buf, c.lay.localOf[peer]))
	}
	return c.p2p.Recv(ctx, buf, peer)
}
