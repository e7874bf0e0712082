package micro

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	goruntime "runtime"
	"time"

	"github.com/raygo/raygo"
)

// Result is one measured figure.
type Result struct {
	Name  string  `json:"name"`  // Ray's name, e.g. "single_client_tasks_sync"
	Value float64 `json:"value"` // mean over the rounds
	SD    float64 `json:"sd"`    // population standard deviation over the rounds, as numpy's std
	Unit  string  `json:"unit"`  // "tasks/s", "GB/s", "ratio", ...
	// CPUPerOp is the CPU time, in microseconds, that this process and its
	// worker processes used per operation over the rounds (Linux only;
	// 0 when not measured). On a shared machine, where throughput moves
	// with the load of others, it is the steadier figure to compare.
	CPUPerOp float64 `json:"cpu_us_per_op,omitempty"`
}

// String formats r as Ray prints its results: "name per second mean +- sd"
// (a ratio prints "name ratio mean +- sd").
func (r Result) String() string {
	per := "per second"
	if r.Unit == "ratio" {
		per = "ratio"
	}
	return fmt.Sprintf("%s %s %.2f +- %.2f", r.Name, per, r.Value, r.SD)
}

// Options says which workloads run and for how long. The zero value runs
// every workload with Ray's timing.
type Options struct {
	// Filter selects the workloads whose name it matches; nil runs all.
	Filter *regexp.Regexp
	// DurationScale multiplies the warm-up (1 s) and each round (2 s);
	// 0 means 1. Every round runs a workload at least once, however small.
	DurationScale float64
	// Rounds is the number of measured rounds; 0 means 4, as in Ray.
	Rounds int
	// Servers is Ray's n_cpu, the number of server actors of the 1:n and
	// n:n workloads; 0 means half the logical CPUs (at least 1), as Ray's
	// multiprocessing.cpu_count() // 2.
	Servers int
	// Report, when set, receives each result as soon as it is measured.
	Report func(Result)
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.DurationScale < 0 || math.IsNaN(o.DurationScale) || math.IsInf(o.DurationScale, 0) {
		return fmt.Errorf("micro: duration scale %v: want a positive number", o.DurationScale)
	}
	if o.Rounds < 0 {
		return fmt.Errorf("micro: %d rounds: want at least 1", o.Rounds)
	}
	if o.Servers < 0 {
		return fmt.Errorf("micro: %d servers: want at least 1", o.Servers)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.DurationScale == 0 {
		o.DurationScale = 1
	}
	if o.Rounds == 0 {
		o.Rounds = 4
	}
	if o.Servers == 0 {
		o.Servers = max(1, goruntime.NumCPU()/2)
	}
	return o
}

// PGResource is the custom resource the placement-group workload reserves
// from, as Ray's benchmark starts its cluster with resources={"custom": 100}.
const PGResource = "custom"

// InitOptions are what Run needs of the embedded cluster that raygo.Init
// starts: the custom resource of the placement-group workload.
func InitOptions() []raygo.InitOption {
	return []raygo.InitOption{raygo.NodeResource(PGResource, 100)}
}

// ErrNoWorkload: the filter matched no workload.
var ErrNoWorkload = errors.New("micro: no workload matches the filter")

// Names lists the workloads in the order Run runs them. A workload may
// report more than one result (single_client_put_gigabytes also reports
// the memcpy it is compared with, and the ratio).
func Names() []string {
	out := make([]string, len(workloads))
	for i, w := range workloads {
		out[i] = w.name
	}
	return out
}

// Run runs the selected workloads, in Ray's order, on the cluster this
// process joined with raygo.Init (see InitOptions). It returns the results
// measured so far with the first error, which names its workload.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := &bench{opts: opts.withDefaults()}
	ran := 0
	for _, w := range workloads {
		if opts.Filter != nil && !opts.Filter.MatchString(w.name) {
			continue
		}
		ran++
		if err := w.run(ctx, b); err != nil {
			return b.results, fmt.Errorf("micro: %s: %w", w.name, err)
		}
	}
	if ran == 0 {
		return nil, fmt.Errorf("%w %q (workloads: %v)", ErrNoWorkload, opts.Filter, Names())
	}
	return b.results, nil
}

// bench collects the results of one Run.
type bench struct {
	opts    Options
	results []Result
}

func (b *bench) add(r Result) {
	b.results = append(b.results, r)
	if b.opts.Report != nil {
		b.opts.Report(r)
	}
}

// timeit is Ray's timeit (ray_microbenchmark_helpers.py): run op for the
// warm-up time, counting calls; then, in each round, run op in steps of a
// tenth of the warm-up count (plus one) until the round's time is up. A
// round's rate is multiplier × calls / seconds. The result is the mean and
// the population standard deviation of the rounds' rates.
func (b *bench) timeit(ctx context.Context, name, unit string, multiplier float64, op func(context.Context) error) (Result, error) {
	warm := time.Duration(float64(time.Second) * b.opts.DurationScale)
	round := 2 * warm
	count := 0
	for start := time.Now(); count == 0 || time.Since(start) < warm; count++ {
		if err := op(ctx); err != nil {
			return Result{}, err
		}
	}
	step := count/10 + 1
	rates := make([]float64, b.opts.Rounds)
	cpu0, cpuOK := treeCPU()
	ops := 0.0
	for i := range rates {
		start := time.Now()
		n := 0
		for n == 0 || time.Since(start) < round {
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
			for range step {
				if err := op(ctx); err != nil {
					return Result{}, err
				}
			}
			n += step
		}
		rates[i] = multiplier * float64(n) / time.Since(start).Seconds()
		ops += multiplier * float64(n)
	}
	mean, sd := meanSD(rates)
	r := Result{Name: name, Value: mean, SD: sd, Unit: unit}
	if cpu1, ok := treeCPU(); ok && cpuOK && ops > 0 && unit != "GB/s" {
		r.CPUPerOp = float64((cpu1 - cpu0).Microseconds()) / ops
	}
	b.add(r)
	return r, nil
}

func meanSD(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}
