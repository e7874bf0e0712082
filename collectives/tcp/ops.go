package tcp

import (
	"context"

	"github.com/raygo/raygo/collectives/backend"
)

var (
	_ backend.Backend    = (*comm)(nil)
	_ backend.Reducer    = (*comm)(nil)
	_ backend.Gatherer   = (*comm)(nil)
	_ backend.Scatterer  = (*comm)(nil)
	_ backend.AllToAller = (*comm)(nil)
)

// recoverable marks a receive error after which the connection is still
// in step (the frame was consumed), so the backend stays usable.
type recoverable struct{ error }

func (e recoverable) Unwrap() error { return e.error }

func (c *comm) checkReduce(op opcode, send []byte, dt backend.DType, rop backend.Op) error {
	if !dt.Valid() {
		return c.errorf("%s: invalid element type %v", op, dt)
	}
	if rop < backend.Sum || rop > backend.Max {
		return c.errorf("%s: invalid reduction %v", op, rop)
	}
	if len(send)%dt.Size() != 0 {
		return c.errorf("%s: %d bytes is not a whole number of %v elements", op, len(send), dt)
	}
	return nil
}

// scratchBuf returns the caller's scratch of n bytes.
func (c *comm) scratchBuf(n int) []byte {
	if cap(c.tmp) < n {
		c.tmp = make([]byte, n)
	}
	return c.tmp[:n]
}

// coll is the header of this call's frames.
func (c *comm) coll(op opcode, step int) header {
	return header{kind: kindColl, op: op, step: uint16(step), seq: c.seq}
}

// peers returns the connections to the ranks listed, connecting first
// where the backend is lazy. The slice is reused by the next call.
func (c *comm) peers(ctx context.Context, ranks ...int) ([]*peer, error) {
	c.pl = c.pl[:0]
	for _, j := range ranks {
		p, err := c.peer(ctx, j)
		if err != nil {
			return nil, err
		}
		c.pl = append(c.pl, p)
	}
	return c.pl, nil
}

// sendTo sends one collective frame to p.
func (c *comm) sendTo(p *peer, h header, buf []byte) error {
	e := c.eng
	e.reset(true)
	e.send(p, h, buf, -1)
	return e.run()
}

// recvFrom receives one collective frame from p.
func (c *comm) recvFrom(p *peer, h header, buf []byte) error {
	e := c.eng
	e.reset(true)
	e.recv(p, h, buf, nil, false)
	return e.run()
}

// Allreduce uses recursive doubling below tcp.ring_above bytes and the
// pipelined ring (reduce-scatter, then allgather) from there up.
func (c *comm) Allreduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if err := c.checkReduce(opAllreduce, send, dt, op); err != nil {
		return err
	}
	if len(recv) != len(send) {
		return c.errorf("allreduce: send holds %d bytes and receive %d", len(send), len(recv))
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if err := c.begin(ctx, opAllreduce); err != nil {
		return err
	}
	c.eng.dt, c.eng.op = dt, op
	var err error
	if len(send) >= c.opt.ringAbove && len(send) >= c.size*dt.Size() {
		err = c.ringAllreduce(ctx, send, recv, dt)
	} else {
		err = c.doublingAllreduce(ctx, send, recv)
	}
	return c.end(err)
}

// blocks splits n bytes of es-byte elements into k blocks whose element
// counts differ by at most one; block i is off[i]:off[i+1].
func blocks(off []int, n, es, k int) []int {
	elems := n / es
	q, r := elems/k, elems%k
	off = append(off[:0], 0)
	for i := 0; i < k; i++ {
		cnt := q
		if i < r {
			cnt++
		}
		off = append(off, off[i]+cnt*es)
	}
	return off
}

func mod(a, n int) int { return ((a % n) + n) % n }

// ringAllreduce: in reduce-scatter step s (0..n-2) rank r sends block
// r-1-s and receives block r-2-s, reducing it with its own; after n-1
// steps block r is complete at rank r. In allgather step t it sends block
// r-t and receives block r-1-t. Every message but the first forwards the
// one received in the step before, so the engine runs the whole thing as
// one pipeline.
func (c *comm) ringAllreduce(ctx context.Context, send, recv []byte, dt backend.DType) error {
	n, r := c.size, c.rank
	ps, err := c.peers(ctx, mod(r-1, n), mod(r+1, n))
	if err != nil {
		return err
	}
	left, right := ps[0], ps[1]
	c.off = blocks(c.off, len(send), dt.Size(), n)
	bo := c.off
	blk := func(buf []byte, b int) []byte { return buf[bo[b]:bo[b+1]] }
	e := c.eng
	e.reset(true)
	for s := 0; s < n-1; s++ {
		b := mod(r-2-s, n)
		in := e.recv(left, c.coll(opAllreduce, s), blk(recv, b), blk(send, b), true)
		if s == 0 {
			e.send(right, c.coll(opAllreduce, 0), blk(send, mod(r-1, n)), -1)
		}
		// The next step forwards what this one reduced; after the last
		// reduce-scatter step (b == r) that is allgather step 0.
		e.send(right, c.coll(opAllreduce, s+1), blk(recv, b), in)
	}
	for t := 0; t < n-1; t++ {
		step := n - 1 + t
		b := mod(r-1-t, n)
		in := e.recv(left, c.coll(opAllreduce, step), blk(recv, b), nil, false)
		if t+1 < n-1 {
			e.send(right, c.coll(opAllreduce, step+1), blk(recv, b), in)
		}
	}
	return e.run()
}

// doublingAllreduce is recursive doubling. With p the largest power of
// two not above n and m = n-p, ranks below 2m first pair up (even into
// odd), the p remaining ranks exchange whole vectors with partners at
// distance 1, 2, 4, ..., and the odd ranks hand the result back. Each
// exchange streams: this rank's vector goes out while the partner's is
// reduced into recv chunk by chunk as it lands (in place, a chunk only
// once it has gone out). Every combination is commutative, so every rank
// ends with the same bits.
func (c *comm) doublingAllreduce(ctx context.Context, send, recv []byte) error {
	n, r := c.size, c.rank
	p2 := 1
	for p2*2 <= n {
		p2 *= 2
	}
	m := n - p2
	vr := r - m // rank among the p2 that take part, or -1
	cur := send // where this rank's partial result is
	if r < 2*m {
		if r%2 == 0 {
			p, err := c.peer(ctx, r+1)
			if err != nil {
				return err
			}
			if err := c.sendTo(p, c.coll(opAllreduce, 0), send); err != nil {
				return err
			}
			vr = -1
		} else {
			p, err := c.peer(ctx, r-1)
			if err != nil {
				return err
			}
			e := c.eng
			e.reset(true)
			e.recv(p, c.coll(opAllreduce, 0), recv, send, true)
			if err := e.run(); err != nil {
				return err
			}
			cur = recv
			vr = r / 2
		}
	}
	step := 1
	if vr >= 0 {
		for mask := 1; mask < p2; mask <<= 1 {
			pv := vr ^ mask
			pr := pv + m
			if pv < m {
				pr = 2*pv + 1
			}
			p, err := c.peer(ctx, pr)
			if err != nil {
				return err
			}
			e := c.eng
			e.reset(true)
			h := c.coll(opAllreduce, step)
			in := e.recv(p, h, recv, cur, true)
			out := e.send(p, h, cur, -1)
			if len(cur) > 0 && &cur[0] == &recv[0] {
				e.recvs[in].guard = out
			}
			if err := e.run(); err != nil {
				return err
			}
			cur = recv
			step++
		}
	} else {
		step += log2(p2)
	}
	if r < 2*m {
		if r%2 == 1 {
			p, err := c.peer(ctx, r-1)
			if err != nil {
				return err
			}
			return c.sendTo(p, c.coll(opAllreduce, step), recv)
		}
		p, err := c.peer(ctx, r+1)
		if err != nil {
			return err
		}
		return c.recvFrom(p, c.coll(opAllreduce, step), recv)
	}
	return nil
}

func log2(p int) int {
	k := 0
	for 1<<k < p {
		k++
	}
	return k
}

// Broadcast uses a binomial tree below tcp.chain_above bytes and a
// pipelined chain from root through every rank from there up.
func (c *comm) Broadcast(ctx context.Context, buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("broadcast: root %d out of range for %d ranks", root, c.size)
	}
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opBroadcast); err != nil {
		return err
	}
	var err error
	if len(buf) >= c.opt.chainAbove {
		err = c.chainBroadcast(ctx, buf, root)
	} else {
		err = c.treeBroadcast(ctx, buf, root)
	}
	return c.end(err)
}

func (c *comm) chainBroadcast(ctx context.Context, buf []byte, root int) error {
	n := c.size
	vr := mod(c.rank-root, n)
	ps, err := c.peers(ctx, mod(c.rank-1, n), mod(c.rank+1, n))
	if err != nil {
		return err
	}
	e := c.eng
	e.reset(true)
	dep := -1
	if vr > 0 {
		dep = e.recv(ps[0], c.coll(opBroadcast, 0), buf, nil, false)
	}
	if vr < n-1 {
		e.send(ps[1], c.coll(opBroadcast, 0), buf, dep)
	}
	return e.run()
}

// treeBroadcast is a binomial tree: relative rank v receives from
// v - (its lowest set bit), then sends to v + 2^k for each 2^k below that
// bit, all at once.
func (c *comm) treeBroadcast(ctx context.Context, buf []byte, root int) error {
	n := c.size
	vr := mod(c.rank-root, n)
	mask := 1
	for mask < n {
		if vr&mask != 0 {
			p, err := c.peer(ctx, mod(vr-mask+root, n))
			if err != nil {
				return err
			}
			if err := c.recvFrom(p, c.coll(opBroadcast, 0), buf); err != nil {
				return err
			}
			break
		}
		mask <<= 1
	}
	c.kids = c.kids[:0]
	for mask >>= 1; mask > 0; mask >>= 1 {
		if vr+mask < n {
			c.kids = append(c.kids, mod(vr+mask+root, n))
		}
	}
	if len(c.kids) == 0 {
		return nil
	}
	ps, err := c.peers(ctx, c.kids...)
	if err != nil {
		return err
	}
	e := c.eng
	e.reset(true)
	for _, p := range ps {
		e.send(p, c.coll(opBroadcast, 0), buf, -1)
	}
	return e.run()
}

// Allgather is a pipelined ring: in step s rank r sends block r-s and
// receives block r-1-s.
func (c *comm) Allgather(ctx context.Context, send, recv []byte) error {
	if len(recv) != c.size*len(send) {
		return c.errorf("allgather: receive holds %d bytes, want %d ranks × %d", len(recv), c.size, len(send))
	}
	copy(recv[c.rank*len(send):], send)
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opAllgather); err != nil {
		return err
	}
	return c.end(c.ringAllgather(ctx, send, recv))
}

func (c *comm) ringAllgather(ctx context.Context, send, recv []byte) error {
	n, r, k := c.size, c.rank, len(send)
	ps, err := c.peers(ctx, mod(r-1, n), mod(r+1, n))
	if err != nil {
		return err
	}
	left, right := ps[0], ps[1]
	blk := func(b int) []byte { return recv[b*k : (b+1)*k] }
	e := c.eng
	e.reset(true)
	e.send(right, c.coll(opAllgather, 0), send, -1)
	for s := 0; s < n-1; s++ {
		b := mod(r-1-s, n)
		in := e.recv(left, c.coll(opAllgather, s), blk(b), nil, false)
		if s+1 < n-1 {
			e.send(right, c.coll(opAllgather, s+1), blk(b), in)
		}
	}
	return e.run()
}

// ReduceScatter is the reduce-scatter half of the ring: in step s rank r
// sends its partial block r-1-s and receives block r-2-s, reducing it
// with its own; the last step's block is r, reduced everywhere.
func (c *comm) ReduceScatter(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op) error {
	if err := c.checkReduce(opReduceScatter, send, dt, op); err != nil {
		return err
	}
	if len(send) != c.size*len(recv) {
		return c.errorf("reducescatter: send holds %d bytes, want %d ranks × %d", len(send), c.size, len(recv))
	}
	if c.size == 1 {
		copy(recv, send)
		return nil
	}
	if err := c.begin(ctx, opReduceScatter); err != nil {
		return err
	}
	c.eng.dt, c.eng.op = dt, op
	k := len(recv)
	c.off = c.off[:0]
	for i := 0; i <= c.size; i++ {
		c.off = append(c.off, i*k)
	}
	part := c.scratchBuf(len(send)) // partial results, by block
	return c.end(c.ringReduceScatter(ctx, opReduceScatter, send, part, recv))
}

// ringReduceScatter runs the reduce-scatter ring over the blocks c.off
// of send, keeping partial results in part, and leaves block rank's
// result in mine (which may be that block of part).
func (c *comm) ringReduceScatter(ctx context.Context, op opcode, send, part, mine []byte) error {
	n, r := c.size, c.rank
	ps, err := c.peers(ctx, mod(r-1, n), mod(r+1, n))
	if err != nil {
		return err
	}
	left, right := ps[0], ps[1]
	bo := c.off
	blk := func(buf []byte, b int) []byte { return buf[bo[b]:bo[b+1]] }
	e := c.eng
	e.reset(true)
	e.send(right, c.coll(op, 0), blk(send, mod(r-1, n)), -1)
	for s := 0; s < n-1; s++ {
		b := mod(r-2-s, n)
		if s == n-2 {
			e.recv(left, c.coll(op, s), mine, blk(send, b), true)
			break
		}
		in := e.recv(left, c.coll(op, s), blk(part, b), blk(send, b), true)
		e.send(right, c.coll(op, s+1), blk(part, b), in)
	}
	return e.run()
}

// Barrier is the dissemination barrier: in round k every rank signals
// rank+2^k and waits for rank-2^k.
func (c *comm) Barrier(ctx context.Context) error {
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opBarrier); err != nil {
		return err
	}
	return c.end(c.barrier(ctx))
}

func (c *comm) barrier(ctx context.Context) error {
	n, r := c.size, c.rank
	for k, d := 0, 1; d < n; k, d = k+1, d*2 {
		ps, err := c.peers(ctx, mod(r-d, n), mod(r+d, n))
		if err != nil {
			return err
		}
		e := c.eng
		e.reset(true)
		e.recv(ps[0], c.coll(opBarrier, k), nil, nil, false)
		e.send(ps[1], c.coll(opBarrier, k), nil, -1)
		if err := e.run(); err != nil {
			return err
		}
	}
	return nil
}

// Reduce uses a binomial tree below tcp.ring_above bytes; from there up,
// the ring's reduce-scatter followed by every rank sending its reduced
// block to root, which moves half the bytes of an allreduce.
func (c *comm) Reduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	if err := c.checkReduce(opReduce, send, dt, op); err != nil {
		return err
	}
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
	if err := c.begin(ctx, opReduce); err != nil {
		return err
	}
	c.eng.dt, c.eng.op = dt, op
	var err error
	if len(send) >= c.opt.ringAbove && len(send) >= c.size*dt.Size() {
		err = c.ringReduce(ctx, send, recv, dt, root)
	} else {
		err = c.treeReduce(ctx, send, recv, dt, op, root)
	}
	return c.end(err)
}

// treeReduce is a binomial tree: relative rank v takes in the partial
// results of v + 2^k for each 2^k below its lowest set bit, then sends
// its own to v - that bit.
func (c *comm) treeReduce(ctx context.Context, send, recv []byte, dt backend.DType, op backend.Op, root int) error {
	n := c.size
	vr := mod(c.rank-root, n)
	acc := recv
	var tmp []byte
	if c.rank != root {
		buf := c.scratchBuf(2 * len(send))
		acc, tmp = buf[:len(send)], buf[len(send):]
	} else {
		tmp = c.scratchBuf(len(send))
	}
	copy(acc, send)
	for mask := 1; mask < n; mask <<= 1 {
		if vr&mask != 0 {
			p, err := c.peer(ctx, mod(vr-mask+root, n))
			if err != nil {
				return err
			}
			return c.sendTo(p, c.coll(opReduce, 0), acc)
		}
		if vr+mask < n {
			p, err := c.peer(ctx, mod(vr+mask+root, n))
			if err != nil {
				return err
			}
			if err := c.recvFrom(p, c.coll(opReduce, 0), tmp); err != nil {
				return err
			}
			backend.Reduce(dt, op, acc, tmp)
		}
	}
	return nil
}

func (c *comm) ringReduce(ctx context.Context, send, recv []byte, dt backend.DType, root int) error {
	n, r := c.size, c.rank
	c.off = blocks(c.off, len(send), dt.Size(), n)
	bo := c.off
	dst := recv
	if r != root {
		dst = c.scratchBuf(len(send))
	}
	blk := func(buf []byte, b int) []byte { return buf[bo[b]:bo[b+1]] }
	if err := c.ringReduceScatter(ctx, opReduce, send, dst, blk(dst, r)); err != nil {
		return err
	}
	// Block r is reduced here; gather the blocks at root.
	if r != root {
		p, err := c.peer(ctx, root)
		if err != nil {
			return err
		}
		return c.sendTo(p, c.coll(opReduce, n), blk(dst, r))
	}
	return c.gatherFrom(ctx, opReduce, n, func(j int) []byte { return blk(recv, j) })
}

// gatherFrom receives one frame from every other rank, all at once, into
// dst(rank).
func (c *comm) gatherFrom(ctx context.Context, op opcode, step int, dst func(j int) []byte) error {
	for j := 0; j < c.size; j++ {
		if j != c.rank {
			if _, err := c.peer(ctx, j); err != nil {
				return err
			}
		}
	}
	e := c.eng
	e.reset(true)
	for j := 0; j < c.size; j++ {
		if j != c.rank {
			e.recv(c.slots[j].p.Load(), c.coll(op, step), dst(j), nil, false)
		}
	}
	return e.run()
}

// Gather: every rank sends its block straight to root, which receives
// them all at once.
func (c *comm) Gather(ctx context.Context, send, recv []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("gather: root %d out of range for %d ranks", root, c.size)
	}
	k := len(send)
	if c.rank == root {
		if len(recv) != c.size*k {
			return c.errorf("gather: receive holds %d bytes, want %d ranks × %d", len(recv), c.size, k)
		}
		copy(recv[root*k:], send)
	}
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opGather); err != nil {
		return err
	}
	var err error
	if c.rank == root {
		err = c.gatherFrom(ctx, opGather, 0, func(j int) []byte { return recv[j*k : (j+1)*k] })
	} else {
		var p *peer
		if p, err = c.peer(ctx, root); err == nil {
			err = c.sendTo(p, c.coll(opGather, 0), send)
		}
	}
	return c.end(err)
}

// Scatter: root sends every block straight to its rank, all at once.
func (c *comm) Scatter(ctx context.Context, send, recv []byte, root int) error {
	if root < 0 || root >= c.size {
		return c.errorf("scatter: root %d out of range for %d ranks", root, c.size)
	}
	k := len(recv)
	if c.rank == root {
		if len(send) != c.size*k {
			return c.errorf("scatter: send holds %d bytes, want %d ranks × %d", len(send), c.size, k)
		}
		copy(recv, send[root*k:(root+1)*k])
	}
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opScatter); err != nil {
		return err
	}
	var err error
	if c.rank == root {
		err = c.scatterFrom(ctx, send, k)
	} else {
		var p *peer
		if p, err = c.peer(ctx, root); err == nil {
			err = c.recvFrom(p, c.coll(opScatter, 0), recv)
		}
	}
	return c.end(err)
}

func (c *comm) scatterFrom(ctx context.Context, send []byte, k int) error {
	for j := 0; j < c.size; j++ {
		if j != c.rank {
			if _, err := c.peer(ctx, j); err != nil {
				return err
			}
		}
	}
	e := c.eng
	e.reset(true)
	for i := 1; i < c.size; i++ {
		j := mod(c.rank+i, c.size)
		e.send(c.slots[j].p.Load(), c.coll(opScatter, 0), send[j*k:(j+1)*k], -1)
	}
	return e.run()
}

// AllToAll sends to and receives from every rank at once.
func (c *comm) AllToAll(ctx context.Context, send, recv []byte) error {
	if len(send) != len(recv) || len(send)%c.size != 0 {
		return c.errorf("alltoall: send holds %d bytes and receive %d; both must be the same multiple of %d ranks", len(send), len(recv), c.size)
	}
	k := len(send) / c.size
	r := c.rank
	copy(recv[r*k:(r+1)*k], send[r*k:(r+1)*k])
	if c.size == 1 {
		return nil
	}
	if err := c.begin(ctx, opAllToAll); err != nil {
		return err
	}
	return c.end(c.allToAll(ctx, send, recv, k))
}

func (c *comm) allToAll(ctx context.Context, send, recv []byte, k int) error {
	n, r := c.size, c.rank
	for j := 0; j < n; j++ {
		if j != r {
			if _, err := c.peer(ctx, j); err != nil {
				return err
			}
		}
	}
	e := c.eng
	e.reset(true)
	for i := 1; i < n; i++ {
		j := mod(r+i, n)
		p := c.slots[j].p.Load()
		e.recv(p, c.coll(opAllToAll, 0), recv[j*k:(j+1)*k], nil, false)
		e.send(p, c.coll(opAllToAll, 0), send[j*k:(j+1)*k], -1)
	}
	return e.run()
}

func (c *comm) checkPeer(what string, peer int) error {
	if peer < 0 || peer >= c.size {
		return c.errorf("%s: rank %d out of range for %d ranks", what, peer, c.size)
	}
	if peer == c.rank {
		return c.errorf("%s: rank %d cannot %s itself", what, peer, what)
	}
	return nil
}

// Send writes buf to peer as one frame; it returns once the kernel has
// taken the bytes.
func (c *comm) Send(ctx context.Context, buf []byte, peer int) error {
	if err := c.checkPeer("send", peer); err != nil {
		return err
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	p, err := c.peer(ctx, peer)
	if err != nil {
		c.fail(err)
		return c.deadErr
	}
	stop := c.watchPeer(ctx, "send", peer)
	if p.sendEng == nil {
		p.sendEng = newEngine(c)
	}
	e := p.sendEng
	e.reset(false)
	p.sendSeq++
	e.send(p, header{kind: kindP2P, seq: p.sendSeq}, buf, -1)
	err = e.run()
	stop()
	if err != nil {
		c.fail(err)
		return c.deadErr
	}
	return nil
}

// Recv waits for the next message from peer.
func (c *comm) Recv(ctx context.Context, buf []byte, peer int) error {
	if err := c.checkPeer("recv", peer); err != nil {
		return err
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	p, err := c.peer(ctx, peer)
	if err != nil {
		c.fail(err)
		return c.deadErr
	}
	stop := c.watchPeer(ctx, "recv", peer)
	if p.recvEng == nil {
		p.recvEng = newEngine(c)
	}
	e := p.recvEng
	e.reset(false)
	e.recv(p, header{kind: kindP2P}, buf, nil, false)
	err = e.run()
	stop()
	if err != nil {
		c.fail(err)
		return c.deadErr
	}
	if rerr, ok := e.recvs[0].err.(recoverable); ok {
		return rerr.error
	}
	return nil
}

// watchPeer fails the backend with a WaitError naming peer when ctx ends
// before stop is called.
func (c *comm) watchPeer(ctx context.Context, op string, peer int) func() bool {
	if ctx.Done() == nil {
		return noStop
	}
	return context.AfterFunc(ctx, func() {
		c.fail(&backend.WaitError{Op: op, Rank: c.rank, Missing: []int{peer}, Err: ctx.Err()})
	})
}
