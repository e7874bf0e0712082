// Package collbench times collective operations the way nccl-tests does:
// for each message size, a warm-up, then a timed run of iterations on
// every rank at once; the time of a size is the slowest rank's mean, and
// bandwidth is reported as algbw (bytes / time) and busbw (algbw times
// the operation's bus factor, so that figures compare across group
// sizes). It backs `raygo bench collectives`.
//
//	res, err := collbench.Run(ctx, collbench.Options{Backend: "shm", Ranks: 2, Op: "allreduce", Sizes: []int64{4, 1 << 20}})
package collbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo"
	"github.com/raygo/raygo/collectives"
)

// Ops lists the operations that can be timed.
var Ops = []string{"allreduce", "allgather", "reducescatter", "broadcast", "reduce", "alltoall", "gather", "scatter", "barrier"}

// Options say what to time.
type Options struct {
	Backend string            // "" picks from where the ranks run
	Ranks   int               // group size
	Op      string            // one of Ops
	Sizes   []int64           // message sizes in bytes (see Result.Bytes)
	DType   collectives.DType // default float32
	Reduce  collectives.Op    // default Sum
	// Warmup and Iters fix the iteration counts; zero picks them so that
	// each size runs for about MinTime (default 200 ms) after a warm-up of
	// a tenth of that.
	Warmup, Iters int
	MinTime       time.Duration
	Check         bool // verify results once per size
}

// Result is one size's timing, in the JSON form of `--json`.
type Result struct {
	Op      string  `json:"op"`
	Backend string  `json:"backend"`
	Ranks   int     `json:"ranks"`
	Bytes   int64   `json:"bytes"`
	DType   string  `json:"dtype"`
	Iters   int     `json:"iters"`
	TimeUS  float64 `json:"time_us"`
	AlgBW   float64 `json:"algbw_gbs"`
	BusBW   float64 `json:"busbw_gbs"`
}

// BusFactor converts algbw to busbw, as nccl-tests does: the share of
// the data each rank's link must carry.
func BusFactor(op string, n int) float64 {
	switch op {
	case "allreduce":
		return 2 * float64(n-1) / float64(n)
	case "allgather", "reducescatter", "alltoall", "gather", "scatter":
		return float64(n-1) / float64(n)
	}
	return 1
}

// ParseSizes reads "4,4K,1M,64M" (K, M, G are powers of 1024).
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := int64(1)
		switch strings.ToUpper(f[len(f)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		}
		if mult > 1 {
			f = f[:len(f)-1]
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("size %q: want a byte count such as 4, 4K, 1M or 64M", f)
		}
		out = append(out, n*mult)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes in %q", s)
	}
	return out, nil
}

func (o *Options) fill() error {
	if o.DType == 0 {
		o.DType = collectives.F32
	}
	if o.Reduce == 0 {
		o.Reduce = collectives.Sum
	}
	if o.MinTime == 0 {
		o.MinTime = 200 * time.Millisecond
	}
	if o.Ranks < 1 {
		return fmt.Errorf("ranks %d: want at least 1", o.Ranks)
	}
	for _, op := range Ops {
		if op == o.Op {
			return nil
		}
	}
	return fmt.Errorf("op %q: want one of %s", o.Op, strings.Join(Ops, ", "))
}

// WriteTable prints results as nccl-tests does.
func WriteTable(w io.Writer, o Options, rs []Result) {
	fmt.Fprintf(w, "# raygo bench collectives: %s, backend %s, %d ranks, %v\n", o.Op, rs[0].Backend, o.Ranks, o.DType)
	fmt.Fprintf(w, "# %12s %12s %8s %8s %12s %12s %12s\n", "size(B)", "count", "type", "redop", "time(us)", "algbw(GB/s)", "busbw(GB/s)")
	for _, r := range rs {
		fmt.Fprintf(w, "  %12d %12d %8s %8s %12.2f %12.3f %12.3f\n", r.Bytes, r.Bytes/int64(o.DType.Size()), r.DType, o.Reduce, r.TimeUS, r.AlgBW, r.BusBW)
	}
}

// WriteJSON prints one object per line.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// rankActor is one rank of a benchmark group, in a process of its own.
type rankActor struct{}

var (
	rankClass = raygo.Actor0("raygo.bench.collectives.Rank", func(ctx context.Context) (*rankActor, error) {
		return &rankActor{}, nil
	})
	runRank = raygo.Method2(rankClass, "Run", func(ctx context.Context, _ *rankActor, group string, opts Options) ([]Result, error) {
		g, err := collectives.Open(ctx, group)
		if err != nil {
			return nil, err
		}
		defer g.Destroy(context.WithoutCancel(ctx))
		return RunRank(ctx, g, opts)
	})
)

// Run starts Ranks actors, each in its own process, on the cluster this
// process belongs to (raygo.Init first), forms a group of them and times
// the operation at every size.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	actors := make([]raygo.Actor[*rankActor], o.Ranks)
	for i := range actors {
		actors[i] = rankClass.With(raygo.Dedicated(), raygo.CPUs(0)).Remote()
	}
	defer func() {
		for _, a := range actors {
			a.Kill(context.WithoutCancel(ctx))
		}
	}()
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	var gopts []collectives.Option
	if o.Backend != "" {
		gopts = append(gopts, collectives.WithBackend(o.Backend))
	}
	if err := collectives.Declare(ctx, name, actors, gopts...); err != nil {
		return nil, err
	}
	refs := make([]raygo.Ref[[]Result], len(actors))
	for i, a := range actors {
		refs[i] = runRank.Remote(a, raygo.Val(name), raygo.Val(o))
	}
	all, err := raygo.GetAll(ctx, refs)
	if err != nil {
		collectives.Remove(context.WithoutCancel(ctx), name)
		return nil, err
	}
	return all[0], nil
}
