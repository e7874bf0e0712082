package collbench

import (
	"context"
	"fmt"
	"time"

	"github.com/raygo/raygo/collectives"
)

// RunRank is one rank's part of a benchmark on an open group: every rank
// calls it with the same options. All ranks get the same results.
func RunRank(ctx context.Context, g *collectives.Group, o Options) ([]Result, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if o.Ranks != g.Size() {
		return nil, fmt.Errorf("options say %d ranks, group %q has %d", o.Ranks, g.Name(), g.Size())
	}
	switch o.DType {
	case collectives.F32:
		return rankLoop[float32](ctx, g, o)
	case collectives.F64:
		return rankLoop[float64](ctx, g, o)
	case collectives.I32:
		return rankLoop[int32](ctx, g, o)
	case collectives.I64:
		return rankLoop[int64](ctx, g, o)
	case collectives.U8:
		return rankLoop[uint8](ctx, g, o)
	case collectives.F16:
		return rankLoop[collectives.Float16](ctx, g, o)
	case collectives.BF16:
		return rankLoop[collectives.BFloat16](ctx, g, o)
	}
	return nil, fmt.Errorf("dtype %v", o.DType)
}

func rankLoop[T collectives.Elem](ctx context.Context, g *collectives.Group, o Options) ([]Result, error) {
	n := g.Size()
	es := int64(o.DType.Size())
	var maxCount int64
	for _, s := range o.Sizes {
		maxCount = max(maxCount, s/es)
	}
	// Buffers for the largest size, reused (and touched) before timing.
	a := make([]T, maxCount)
	b := make([]T, maxCount)
	var out []Result
	for _, size := range o.Sizes {
		count := size / es
		var step func() error
		switch o.Op {
		case "allreduce":
			step = func() error { return collectives.Allreduce(ctx, g, a[:count], b[:count], o.Reduce) }
		case "reduce":
			step = func() error { return collectives.Reduce(ctx, g, a[:count], b[:count], o.Reduce, 0) }
		case "broadcast":
			step = func() error { return collectives.Broadcast(ctx, g, a[:count], 0) }
		case "allgather":
			per := count / int64(n)
			count = per * int64(n)
			step = func() error { return collectives.Allgather(ctx, g, a[:per], b[:count]) }
		case "reducescatter":
			per := count / int64(n)
			count = per * int64(n)
			step = func() error { return collectives.ReduceScatter(ctx, g, a[:count], b[:per], o.Reduce) }
		case "alltoall":
			count = count / int64(n) * int64(n)
			step = func() error { return collectives.AllToAll(ctx, g, a[:count], b[:count]) }
		case "gather":
			per := count / int64(n)
			count = per * int64(n)
			step = func() error { return collectives.Gather(ctx, g, a[:per], b[:count], 0) }
		case "scatter":
			per := count / int64(n)
			count = per * int64(n)
			step = func() error { return collectives.Scatter(ctx, g, a[:count], b[:per], 0) }
		case "barrier":
			count = 0
			step = func() error { return collectives.Barrier(ctx, g) }
		}
		if o.Check && o.Op == "allreduce" && o.Reduce == collectives.Sum {
			if err := checkAllreduce(ctx, g, a[:count], b[:count]); err != nil {
				return nil, fmt.Errorf("%d bytes: %w", size, err)
			}
		}
		iters, err := pickIters(ctx, g, o, step)
		if err != nil {
			return nil, fmt.Errorf("%s of %d bytes: %w", o.Op, size, err)
		}
		if err := collectives.Barrier(ctx, g); err != nil {
			return nil, err
		}
		start := time.Now()
		for i := 0; i < iters; i++ {
			if err := step(); err != nil {
				return nil, fmt.Errorf("%s of %d bytes, iteration %d: %w", o.Op, size, i, err)
			}
		}
		mean := []float64{float64(time.Since(start).Nanoseconds()) / float64(iters) / 1e3}
		if err := collectives.AllreduceInPlace(ctx, g, mean, collectives.Max); err != nil {
			return nil, err
		}
		bytes := count * es
		r := Result{Op: o.Op, Backend: g.Backend(), Ranks: n, Bytes: bytes, DType: o.DType.String(), Iters: iters, TimeUS: mean[0]}
		if r.TimeUS > 0 {
			r.AlgBW = float64(bytes) / r.TimeUS / 1e3
			r.BusBW = r.AlgBW * BusFactor(o.Op, n)
		}
		out = append(out, r)
	}
	return out, nil
}

// pickIters warms up and agrees on how many iterations to time: every
// rank runs a few probe iterations, rank 0 decides from its own timing
// how many warm-up and timed iterations follow, and tells the others (a
// count each rank chose for itself would leave them out of step).
func pickIters(ctx context.Context, g *collectives.Group, o Options, step func() error) (int, error) {
	const probes = 3
	start := time.Now()
	for i := 0; i < probes; i++ {
		if err := step(); err != nil {
			return 0, err
		}
	}
	per := max(time.Since(start)/probes, time.Nanosecond)
	counts := []int64{int64(o.Warmup), int64(o.Iters)}
	if o.Warmup == 0 {
		counts[0] = int64(min(max(1, int(o.MinTime/10/per)), 100_000))
	}
	if o.Iters == 0 {
		counts[1] = int64(min(max(1, int(o.MinTime/per)), 1_000_000))
	}
	if err := collectives.Broadcast(ctx, g, counts, 0); err != nil {
		return 0, err
	}
	for i := int64(0); i < counts[0]; i++ {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return int(counts[1]), nil
}

// checkAllreduce verifies a sum once: rank r contributes r+1 everywhere.
func checkAllreduce[T collectives.Elem](ctx context.Context, g *collectives.Group, a, b []T) error {
	fill(a, float32(g.Rank()+1))
	if err := collectives.Allreduce(ctx, g, a, b, collectives.Sum); err != nil {
		return err
	}
	want := float64(g.Size() * (g.Size() + 1) / 2)
	for i := range b {
		if v := value(b[i]); v != want {
			return fmt.Errorf("allreduce check: element %d is %v, want %v", i, v, want)
		}
	}
	return nil
}

func fill[T collectives.Elem](s []T, v float32) {
	var x T
	switch p := any(&x).(type) {
	case *float32:
		*p = v
	case *float64:
		*p = float64(v)
	case *int32:
		*p = int32(v)
	case *int64:
		*p = int64(v)
	case *uint8:
		*p = uint8(v)
	case *collectives.Float16:
		*p = collectives.Float16From(v)
	case *collectives.BFloat16:
		*p = collectives.BFloat16From(v)
	}
	for i := range s {
		s[i] = x
	}
}

func value[T collectives.Elem](x T) float64 {
	switch v := any(x).(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	case uint8:
		return float64(v)
	case collectives.Float16:
		return float64(v.Float32())
	case collectives.BFloat16:
		return float64(v.Float32())
	}
	return 0
}
