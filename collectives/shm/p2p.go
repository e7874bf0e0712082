package shm

import (
	"context"
	"encoding/binary"
	"sync/atomic"
)

// Send and Recv go through a ring per ordered pair of ranks: the sender
// alone advances head (bytes written), the receiver alone advances tail
// (bytes read). A message is an 8-byte length, then its bytes padded to a
// multiple of 8, so lengths never wrap around the ring's end.

type ring struct {
	head, tail *atomic.Uint64
	data       []byte
}

func (b *Backend) newRing(from, to int) ring {
	pair := from*(b.size-1) + to
	if to > from {
		pair--
	}
	g := b.geo
	off := g.ringOff(pair)
	r := ring{
		head: (*atomic.Uint64)(unsafeAt(b.mem, g.ringCtrOff(pair, 0))),
		tail: (*atomic.Uint64)(unsafeAt(b.mem, g.ringCtrOff(pair, 1))),
		data: b.mem[off : off+g.ring : off+g.ring],
	}
	if from == b.rank {
		if b.sendTail == nil {
			b.sendTail = make([]*atomic.Uint64, b.size)
		}
		b.sendTail[to] = r.tail
	} else {
		if b.recvHead == nil {
			b.recvHead = make([]*atomic.Uint64, b.size)
		}
		b.recvHead[from] = r.head
	}
	return r
}

func (b *Backend) checkPeer(op string, peer int) error {
	if peer < 0 || peer >= b.size || peer == b.rank {
		return b.errorf(op, "peer %d is not another rank of %d", peer, b.size)
	}
	return nil
}

// Send delivers buf to peer's matching Recv.
func (b *Backend) Send(ctx context.Context, buf []byte, peer int) (err error) {
	if err := b.enter("send"); err != nil {
		return err
	}
	defer b.exit(&err)
	if err := b.checkPeer("send", peer); err != nil {
		return err
	}
	r := b.send[peer]
	R := uint64(len(r.data))
	head := r.head.Load()
	tail := r.tail.Load()
	// room waits until the ring has k free bytes.
	room := func(k uint64) error {
		if head+k-tail <= R {
			return nil
		}
		if err := b.await(ctx, "send", b.sendTail, head+k-R, b.single[peer]); err != nil {
			return err
		}
		tail = r.tail.Load()
		return nil
	}
	if err := room(8); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(r.data[head%R:], uint64(len(buf)))
	head += 8
	n := uint64(len(buf))
	plen := (n + 7) &^ 7
	if plen == 0 {
		r.head.Store(head)
		return nil
	}
	for pos := uint64(0); pos < plen; {
		if err := room(min(plen-pos, R/4)); err != nil {
			return err
		}
		k := min(R-(head-tail), plen-pos)
		ringCopyIn(r.data, head%R, buf[min(pos, n):min(pos+k, n)])
		head += k
		pos += k
		r.head.Store(head)
	}
	return nil
}

// Recv fills buf with the next message from peer, which must hold
// exactly len(buf) bytes.
func (b *Backend) Recv(ctx context.Context, buf []byte, peer int) (err error) {
	if err := b.enter("recv"); err != nil {
		return err
	}
	defer b.exit(&err)
	if err := b.checkPeer("recv", peer); err != nil {
		return err
	}
	r := b.recv[peer]
	R := uint64(len(r.data))
	tail := r.tail.Load()
	head := r.head.Load()
	// data waits until the ring holds k unread bytes.
	data := func(k uint64) error {
		if head-tail >= k {
			return nil
		}
		if err := b.await(ctx, "recv", b.recvHead, tail+k, b.single[peer]); err != nil {
			return err
		}
		head = r.head.Load()
		return nil
	}
	if err := data(8); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint64(r.data[tail%R:])
	if n != uint64(len(buf)) {
		return b.errorf("recv", "%w: the message from rank %d holds %d bytes, the buffer %d", ErrMismatch, peer, n, len(buf))
	}
	tail += 8
	plen := (n + 7) &^ 7
	if plen == 0 {
		r.tail.Store(tail)
		return nil
	}
	for pos := uint64(0); pos < plen; {
		if err := data(1); err != nil {
			r.tail.Store(tail)
			return err
		}
		k := min(head-tail, plen-pos)
		ringCopyOut(buf[min(pos, n):min(pos+k, n)], r.data, tail%R)
		tail += k
		pos += k
		r.tail.Store(tail)
	}
	return nil
}

// ringCopyIn copies src into ring starting at off, wrapping at its end.
func ringCopyIn(ring []byte, off uint64, src []byte) {
	k := copy(ring[off:], src)
	copy(ring, src[k:])
}

// ringCopyOut fills dst from ring starting at off, wrapping at its end.
func ringCopyOut(dst, ring []byte, off uint64) {
	k := copy(dst, ring[off:])
	copy(dst[k:], ring)
}
