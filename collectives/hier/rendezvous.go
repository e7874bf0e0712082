package hier

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
)

// subRendezvous is a sub-group's rendezvous. The parent's Rendezvous
// cannot serve it: its Exchange takes every rank of the parent group,
// while a sub-group's ranks call at their own pace with keys (and
// numbers of calls) that depend on the sub-group's backend and size. So
// the group first builds a lazily connected tcp backend over all its
// ranks (whose one rendezvous every rank does call), and sub-groups
// exchange their values over its Send and Recv: only the sub-group's
// ranks take part, and only their pairs connect.
//
// Each value travels as two messages on the pair's connection: its
// length, then the sub-group's name, the key and the value, which the
// receiver checks.
type subRendezvous struct {
	p2p   backend.Backend
	group string // the sub-group's name
	ranks []int  // parent rank of each sub-rank
	me    int    // this rank's sub-rank
}

var _ backend.Rendezvous = subRendezvous{}

const maxValue = 64 << 20

func (s subRendezvous) encode(key string, v []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(s.group)))
	b = append(b, s.group...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return append(b, v...)
}

func (s subRendezvous) decode(from int, key string, b []byte) ([]byte, error) {
	bad := fmt.Errorf("collectives: hier: rendezvous %q of %s: rank %d sent a malformed value", key, s.group, s.ranks[from])
	if len(b) < 2 {
		return nil, bad
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n+2 {
		return nil, bad
	}
	group := string(b[2 : 2+n])
	b = b[2+n:]
	k := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+k {
		return nil, bad
	}
	gotKey := string(b[2 : 2+k])
	if group != s.group || gotKey != key {
		return nil, fmt.Errorf("collectives: hier: rank %d sent rendezvous %q of %s while rank %d waited for %q of %s: the ranks build different sub-groups", s.ranks[from], gotKey, group, s.ranks[s.me], key, s.group)
	}
	return b[2+k:], nil
}

func (s subRendezvous) send(ctx context.Context, to int, msg []byte) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(msg)))
	if err := s.p2p.Send(ctx, n[:], s.ranks[to]); err != nil {
		return err
	}
	return s.p2p.Send(ctx, msg, s.ranks[to])
}

func (s subRendezvous) recv(ctx context.Context, from int, key string) ([]byte, error) {
	var n [8]byte
	if err := s.p2p.Recv(ctx, n[:], s.ranks[from]); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > maxValue {
		return nil, fmt.Errorf("collectives: hier: rendezvous %q of %s: rank %d sent a value of %d bytes", key, s.group, s.ranks[from], size)
	}
	msg := make([]byte, size)
	if err := s.p2p.Recv(ctx, msg, s.ranks[from]); err != nil {
		return nil, err
	}
	return s.decode(from, key, msg)
}

// Exchange sends mine to every other rank of the sub-group and receives
// theirs, all at once.
func (s subRendezvous) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	msg := s.encode(key, mine)
	out := make([][]byte, len(s.ranks))
	out[s.me] = append([]byte{}, mine...)
	errs := make([]error, 2*len(s.ranks))
	var wg sync.WaitGroup
	for i := range s.ranks {
		if i == s.me {
			continue
		}
		wg.Go(func() { errs[2*i] = s.send(ctx, i, msg) })
		wg.Go(func() { out[i], errs[2*i+1] = s.recv(ctx, i, key) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Broadcast sends root's value to every other rank of the sub-group.
func (s subRendezvous) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	if root < 0 || root >= len(s.ranks) {
		return nil, fmt.Errorf("collectives: hier: rendezvous %q of %s: root %d out of range", key, s.group, root)
	}
	if s.me != root {
		return s.recv(ctx, root, key)
	}
	msg := s.encode(key, value)
	errs := make([]error, len(s.ranks))
	var wg sync.WaitGroup
	for i := range s.ranks {
		if i != s.me {
			wg.Go(func() { errs[i] = s.send(ctx, i, msg) })
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return value, nil
}
