//go:build cgo && unix

package nccl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
)

// Send and Recv run on a two-rank communicator for each ordered pair of
// ranks, sender first. On the group's communicator they could deadlock:
// NCCL runs a communicator's operations one after another, so two ranks
// that each send to the other before receiving would each wait for a
// receive queued behind its own send. With one communicator per
// direction, a pair's messages only ever flow one way, in order.
//
// Each rank makes the unique ids of the pairs it sends on while the
// backend is built and shares them through the rendezvous; a pair's
// communicator is built (ncclCommInitRank, on both sides) at its first
// message.

// dataOff is where a message's data starts in a pair's staging memory,
// after the 8-byte length that precedes every message.
const dataOff = 256

// pairStaging bounds a pair's staging memory, below OptStagingBytes.
// It is allocated once, when the pair's communicator is built, and never
// grown: cudaFree waits for all the device's work, which could include a
// kernel of another pair waiting for a peer that waits for this rank.
const pairStaging = 4 << 20

type pairs struct {
	b       *Backend
	out, in [][128]byte // out[p]: the pair me→p; in[p]: the pair p→me

	mu     sync.Mutex
	lanes  map[int]*pairLane // by 2*peer, +1 for receiving
	closed bool
}

// pairLane is a pair's lane once ready is closed; err says why it could
// not be built.
type pairLane struct {
	*lane
	ready chan struct{}
	err   error
}

// sharePairIDs makes an id for each pair this rank sends on and learns
// the ids of the pairs it receives on.
func sharePairIDs(ctx context.Context, b *Backend, rv backend.Rendezvous) (*pairs, error) {
	mine := make([]byte, b.size*128)
	for p := 0; p < b.size; p++ {
		if p == b.rank {
			continue
		}
		id, err := b.lib.uniqueID()
		if err != nil {
			return nil, err
		}
		copy(mine[p*128:], id[:])
	}
	all, err := rv.Exchange(ctx, "nccl.p2p", mine)
	if err != nil {
		return nil, fmt.Errorf("sharing the unique ids for Send and Recv: %w", err)
	}
	if len(all) != b.size {
		return nil, fmt.Errorf("the rendezvous returned %d values for %d ranks", len(all), b.size)
	}
	ps := &pairs{b: b, out: make([][128]byte, b.size), in: make([][128]byte, b.size), lanes: map[int]*pairLane{}}
	for p, v := range all {
		if len(v) != b.size*128 {
			return nil, fmt.Errorf("rank %d shared %d bytes of unique ids, want %d", p, len(v), b.size*128)
		}
		copy(ps.in[p][:], v[b.rank*128:])
		copy(ps.out[p][:], mine[p*128:])
	}
	return ps, nil
}

// lane returns the lane for sending to peer (or receiving from it),
// waiting for its communicator to be built.
func (ps *pairs) lane(ctx context.Context, peer int, send bool, op string) (*lane, error) {
	key := 2 * peer
	if !send {
		key++
	}
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return nil, ErrClosed
	}
	pl := ps.lanes[key]
	if pl == nil {
		b := ps.b
		l := &lane{lib: b.lib, dev: b.dev, rank: b.rank, peer: peer, limit: min(b.opts.staging, pairStaging)}
		pl = &pairLane{lane: l, ready: make(chan struct{})}
		ps.lanes[key] = pl
		go ps.build(pl, peer, send)
	}
	ps.mu.Unlock()
	select {
	case <-pl.ready:
		if pl.err != nil {
			return nil, pl.err
		}
		return pl.lane, nil
	case <-ctx.Done():
		return nil, &backend.WaitError{Op: op, Rank: ps.b.rank, Missing: []int{peer}, Err: ctx.Err()}
	}
}

// build makes a pair's stream and communicator. It does not stop when
// the call that started it gives up: a later call to the same peer finds
// it built.
func (ps *pairs) build(pl *pairLane, peer int, send bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lib := ps.b.lib
	var comm, stream, buf uintptr
	err := lib.setDevice(pl.dev)
	if err == nil {
		stream, err = lib.streamCreate()
	}
	if err == nil {
		buf, err = lib.malloc(dataOff + pl.limit)
	}
	if err == nil {
		id, me := ps.out[peer], 0
		if !send {
			id, me = ps.in[peer], 1
		}
		comm, err = lib.initRank(2, id, me)
	}
	if err != nil {
		dir := "sending to"
		if !send {
			dir = "receiving from"
		}
		err = fmt.Errorf("building the communicator for %s rank %d: %w", dir, peer, err)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed || err != nil {
		if comm != 0 {
			lib.abort(comm)
		}
		if buf != 0 {
			lib.free(buf)
		}
		if stream != 0 {
			lib.streamDestroy(stream)
		}
		if err == nil {
			err = ErrClosed
		}
		pl.err = err
		close(pl.ready)
		return
	}
	pl.comm, pl.stream, pl.buf, pl.capacity = comm, stream, buf, dataOff+pl.limit
	close(pl.ready)
}

func (ps *pairs) close() error {
	ps.mu.Lock()
	ps.closed = true
	var ready []*lane
	for _, pl := range ps.lanes {
		select {
		case <-pl.ready:
			if pl.err == nil {
				ready = append(ready, pl.lane)
			}
		default: // build closes it when it ends
		}
	}
	ps.mu.Unlock()
	var errs []error
	for _, l := range ready {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
}

func (b *Backend) checkPeer(peer int) error {
	switch {
	case peer < 0 || peer >= b.size:
		return fmt.Errorf("peer %d is outside 0..%d", peer, b.size-1)
	case peer == b.rank:
		return fmt.Errorf("peer %d is this rank", peer)
	case b.pairs == nil:
		return fmt.Errorf("send and receive are off (%s=false)", OptP2P)
	}
	return nil
}

// Send delivers buf to peer's matching Recv: its length, then its data in
// chunks.
func (b *Backend) Send(ctx context.Context, buf []byte, peer int) error {
	if err := b.checkPeer(peer); err != nil {
		return b.failf(err, "send of %d bytes to rank %d", len(buf), peer)
	}
	pl, err := b.pairs.lane(ctx, peer, true, "send")
	if err != nil {
		return b.failf(err, "send of %d bytes to rank %d", len(buf), peer)
	}
	return b.run(pl, func(l *lane) error {
		chunk := chunkOf(len(buf), 1, l.limit, 1)
		if err := l.grow(dataOff + chunk); err != nil {
			return err
		}
		var hdr [8]byte
		binary.LittleEndian.PutUint64(hdr[:], uint64(len(buf)))
		first := min(chunk, len(buf))
		if err := l.h2d(0, hdr[:]); err != nil {
			return err
		}
		if err := l.h2d(dataOff, buf[:first]); err != nil {
			return err
		}
		if err := l.use(func(comm uintptr) error {
			if err := b.lib.send(l.buf, len(hdr), ncclUint8, 1, comm, l.stream); err != nil || first == 0 {
				return err
			}
			return b.lib.send(l.buf+dataOff, first, ncclUint8, 1, comm, l.stream)
		}); err != nil {
			return err
		}
		if err := l.sync(ctx, "send"); err != nil {
			return err
		}
		for off := first; off < len(buf); off += chunk {
			n := min(chunk, len(buf)-off)
			if err := l.h2d(dataOff, buf[off:off+n]); err != nil {
				return err
			}
			if err := l.use(func(comm uintptr) error {
				return b.lib.send(l.buf+dataOff, n, ncclUint8, 1, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "send"); err != nil {
				return err
			}
		}
		return nil
	}, "send of %d bytes to rank %d", len(buf), peer)
}

// Recv fills buf with the next message from peer, which must hold exactly
// len(buf) bytes; a message of another length is an error, after which
// the pair's communicator is aborted.
func (b *Backend) Recv(ctx context.Context, buf []byte, peer int) error {
	if err := b.checkPeer(peer); err != nil {
		return b.failf(err, "receive of %d bytes from rank %d", len(buf), peer)
	}
	pl, err := b.pairs.lane(ctx, peer, false, "recv")
	if err != nil {
		return b.failf(err, "receive of %d bytes from rank %d", len(buf), peer)
	}
	return b.run(pl, func(l *lane) error {
		chunk := chunkOf(len(buf), 1, l.limit, 1)
		if err := l.grow(dataOff + chunk); err != nil {
			return err
		}
		var hdr [8]byte
		if err := l.use(func(comm uintptr) error {
			return b.lib.recv(l.buf, len(hdr), ncclUint8, 0, comm, l.stream)
		}); err != nil {
			return err
		}
		if err := l.sync(ctx, "recv"); err != nil {
			return err
		}
		if err := l.d2h(hdr[:], 0); err != nil {
			return err
		}
		if err := l.sync(ctx, "recv"); err != nil {
			return err
		}
		if n := binary.LittleEndian.Uint64(hdr[:]); n != uint64(len(buf)) {
			err := fmt.Errorf("rank %d sent a message of %d bytes", peer, n)
			l.abort(err)
			return err
		}
		for off := 0; off < len(buf); off += chunk {
			n := min(chunk, len(buf)-off)
			if err := l.use(func(comm uintptr) error {
				return b.lib.recv(l.buf+dataOff, n, ncclUint8, 0, comm, l.stream)
			}); err != nil {
				return err
			}
			if err := l.sync(ctx, "recv"); err != nil {
				return err
			}
			if err := l.d2h(buf[off:off+n], dataOff); err != nil {
				return err
			}
			if err := l.sync(ctx, "recv"); err != nil {
				return err
			}
		}
		return nil
	}, "receive of %d bytes from rank %d", len(buf), peer)
}
