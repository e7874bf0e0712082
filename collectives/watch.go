package collectives

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/raygo/raygo"
)

// A call that has waited longer than watchAfter publishes, under
// collectives/<group>/at/<rank>, the number of the call it waits in, so
// that a rank whose call times out can tell which ranks never reached it.
const (
	watchEvery             = 100 * time.Millisecond
	watchAfter             = 200 * time.Millisecond
	defaultDiagnoseTimeout = 5 * time.Second
)

func (g *Group) atKey(rank int) string { return fmt.Sprintf("%sat/%d", kvPrefix(g.name), rank) }

// watch publishes the call this rank waits in, once it has waited long
// enough to be worth telling. It runs until the group is destroyed.
func (g *Group) watch() {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		start := g.inOp.Load()
		if start == 0 || time.Since(time.Unix(0, start)) < watchAfter {
			continue
		}
		g.post(context.Background(), g.seq.Load())
	}
}

func (g *Group) post(ctx context.Context, seq uint64) {
	if g.posted.Load() >= seq {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, defaultDiagnoseTimeout)
	defer cancel()
	if raygo.KVPut(ctx, g.atKey(g.rank), []byte(strconv.FormatUint(seq, 10)), true) == nil {
		g.posted.Store(seq)
	}
}

// diagnose lists the ranks that have not reached call seq.
func (g *Group) diagnose(ctx context.Context, seq uint64) ([]int, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultDiagnoseTimeout)
	defer cancel()
	g.post(dctx, seq)
	// Ranks blocked in this call publish it after watchAfter; give them
	// time to.
	if start := g.inOp.Load(); start != 0 {
		if wait := watchAfter + 2*watchEvery - time.Since(time.Unix(0, start)); wait > 0 {
			time.Sleep(wait)
		}
	} else {
		time.Sleep(watchAfter + 2*watchEvery)
	}
	var miss []int
	for r := 0; r < g.size; r++ {
		if r == g.rank {
			continue
		}
		v, err := raygo.KVGet(dctx, g.atKey(r))
		if err != nil {
			miss = append(miss, r)
			continue
		}
		if at, err := strconv.ParseUint(string(v), 10, 64); err != nil || at < seq {
			miss = append(miss, r)
		}
	}
	return miss, nil
}
