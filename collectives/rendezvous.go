package collectives

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo"
)

// kvPrefix is where a group keeps its keys in the cluster's key-value
// store.
func kvPrefix(group string) string { return "collectives/" + group + "/" }

// kvRendezvous exchanges values among a group's ranks through the
// cluster's key-value store: each rank puts its value under
// <prefix><scope>/<key>/<rank> and waits for the others'.
type kvRendezvous struct {
	prefix string // group prefix plus a scope (the backend being built)
	rank   int
	size   int
}

func (r kvRendezvous) key(key string, rank int) string {
	return fmt.Sprintf("%s%s/%d", r.prefix, key, rank)
}

func (r kvRendezvous) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	if err := raygo.KVPut(ctx, r.key(key, r.rank), mine, false); err != nil {
		if errors.Is(err, raygo.ErrKeyExists) {
			return nil, fmt.Errorf("collectives: rank %d already published %q in %s: is another process using this rank? (collectives.Remove clears a group left by a failed job): %w", r.rank, key, strings.TrimSuffix(r.prefix, "/"), err)
		}
		return nil, fmt.Errorf("collectives: rendezvous %s%s on rank %d: %w", r.prefix, key, r.rank, err)
	}
	out := make([][]byte, r.size)
	out[r.rank] = mine
	for i := range out {
		if i == r.rank {
			continue
		}
		v, err := raygo.KVWait(ctx, r.key(key, i))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return nil, r.missing(ctx, key, err)
			}
			return nil, fmt.Errorf("collectives: rendezvous %s%s on rank %d, waiting for rank %d: %w", r.prefix, key, r.rank, i, err)
		}
		out[i] = v
	}
	return out, nil
}

func (r kvRendezvous) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	if r.rank == root {
		if err := raygo.KVPut(ctx, r.key(key, root), value, false); err != nil {
			return nil, fmt.Errorf("collectives: rendezvous %s%s on rank %d: %w", r.prefix, key, r.rank, err)
		}
		return value, nil
	}
	v, err := raygo.KVWait(ctx, r.key(key, root))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, &WaitError{Op: "rendezvous " + key, Rank: r.rank, Missing: []int{root}, Err: err}
		}
		return nil, fmt.Errorf("collectives: rendezvous %s%s on rank %d, waiting for rank %d: %w", r.prefix, key, r.rank, root, err)
	}
	return v, nil
}

// missing lists the ranks that have not published key, for the error
// of a rendezvous that timed out.
func (r kvRendezvous) missing(ctx context.Context, key string, cause error) error {
	op := "rendezvous " + key
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultDiagnoseTimeout)
	defer cancel()
	keys, err := raygo.KVList(lctx, fmt.Sprintf("%s%s/", r.prefix, key))
	if err != nil {
		return fmt.Errorf("collectives: %s on rank %d: %w", op, r.rank, cause)
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	var miss []int
	for i := 0; i < r.size; i++ {
		if !have[r.key(key, i)] {
			miss = append(miss, i)
		}
	}
	if !errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, context.Canceled) {
		cause = fmt.Errorf("%w (%v)", context.DeadlineExceeded, cause)
	}
	return &WaitError{Op: op, Rank: r.rank, Missing: miss, Err: cause}
}
