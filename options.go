package raygo

import (
	"fmt"

	"github.com/raygo/raygo/runtime/wire"
)

// Option changes how a task runs or an actor is created.
type Option func(*options)

type options struct {
	resources      wire.Resources
	cpuSet         bool
	maxRetries     int32
	retriesSet     bool
	retryAppErrors bool
	name           string
	actorName      string
	namespace      string
	maxConcurrency int32
	maxRestarts    int32
	dedicated      bool
	strategy       wire.Strategy
	err            error
}

func (o *options) apply(opts []Option) {
	for _, f := range opts {
		f(o)
	}
}

func (o *options) res() wire.Resources {
	if o.resources == nil {
		o.resources = wire.Resources{}
	}
	return o.resources
}

// CPUs sets how many CPUs a task or actor holds while it runs (fractions
// allowed). Tasks default to 1; actors to 0.
func CPUs(n float64) Option {
	return func(o *options) {
		if n < 0 {
			o.err = fmt.Errorf("raygo: CPUs(%v): must be >= 0", n)
		}
		o.res()["CPU"] = n
		o.cpuSet = true
	}
}

// GPUs sets how many GPUs it needs. It runs in a process of its own whose
// CUDA_VISIBLE_DEVICES lists exactly the GPUs it was given.
func GPUs(n float64) Option {
	return func(o *options) {
		if n < 0 {
			o.err = fmt.Errorf("raygo: GPUs(%v): must be >= 0", n)
		}
		if n > 0 {
			o.res()["GPU"] = n
		}
	}
}

// Memory reserves bytes of memory for scheduling.
func Memory(bytes int64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.res()["memory"] = float64(bytes)
		}
	}
}

// Resource asks for an amount of a custom resource (or CPU, GPU, memory).
func Resource(name string, amount float64) Option {
	return func(o *options) {
		if name == "" || amount < 0 {
			o.err = fmt.Errorf("raygo: Resource(%q, %v): need a name and an amount >= 0", name, amount)
		}
		o.res()[name] = amount
		if name == "CPU" {
			o.cpuSet = true
		}
	}
}

// MaxRetries sets how often a task is retried when its worker process dies
// (default 3; -1: without limit). With RetryOnError, application errors and
// panics are retried too.
func MaxRetries(n int) Option {
	return func(o *options) { o.maxRetries, o.retriesSet = int32(n), true }
}

// MaxRestarts lets an actor be restarted up to n times (-1: without limit)
// when its process or node dies: its constructor runs again in a new
// process, so its state starts over. Calls queued meanwhile go to the new
// incarnation; calls that were running fail with ErrActorDied unless the
// method was called with MaxRetries. Kill never restarts. Default 0.
func MaxRestarts(n int) Option {
	return func(o *options) { o.maxRestarts = int32(n) }
}

// RetryOnError retries tasks that return an error or panic, within MaxRetries.
func RetryOnError() Option { return func(o *options) { o.retryAppErrors = true } }

// DisplayName names a task in errors and status instead of its function name.
func DisplayName(name string) Option { return func(o *options) { o.name = name } }

// ActorName makes an actor findable by name (see GetActor) in its namespace.
func ActorName(name string) Option { return func(o *options) { o.actorName = name } }

// Namespace sets the namespace of a named actor (default "default").
func Namespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// MaxConcurrency lets an actor run up to n calls at once (default 1: calls
// run one at a time, in the order each caller submitted them).
func MaxConcurrency(n int) Option { return func(o *options) { o.maxConcurrency = int32(n) } }

// Dedicated runs a task or actor in a process of its own (native libraries,
// crash isolation). Tasks otherwise share worker processes as goroutines.
func Dedicated() Option { return func(o *options) { o.dedicated = true } }

// Spread places tasks or actors on as many nodes as possible.
func Spread() Option {
	return func(o *options) { o.strategy = wire.Strategy{Kind: wire.StrategySpread} }
}

// OnNode pins a task or actor to a node; with soft, another node is used
// when that one cannot take it.
func OnNode(node NodeID, soft bool) Option {
	return func(o *options) {
		o.strategy = wire.Strategy{Kind: wire.StrategyNode, Node: wire.NodeID(node), Soft: soft}
	}
}

// InPlacementGroup runs a task or actor in bundle b of a placement group
// (b = -1: any bundle), using the resources reserved there.
func InPlacementGroup(pg *PlacementGroup, b int) Option {
	return func(o *options) {
		if pg == nil {
			o.err = fmt.Errorf("raygo: InPlacementGroup(nil)")
			return
		}
		if b >= len(pg.bundles) {
			o.err = fmt.Errorf("raygo: placement group %d has %d bundles, not bundle %d", pg.id, len(pg.bundles), b)
		}
		o.strategy = wire.Strategy{Kind: wire.StrategyPlacementGroup, Group: pg.id, Bundle: int32(b)}
	}
}

// NodeID names a node of the cluster.
type NodeID uint32

// oneCPU is what a task needs by default: shared by every such task, and
// never changed (a map per task was a tenth of what a million submissions
// allocate).
var oneCPU = wire.Resources{"CPU": 1}

func (o *options) fill(spec *wire.TaskSpec, actor bool) {
	if len(o.resources) == 0 && !o.cpuSet && !actor {
		spec.Resources = oneCPU
	} else {
		spec.Resources = wire.Resources{}
		for k, v := range o.resources {
			if v > 0 {
				spec.Resources[k] = v
			}
		}
		if !o.cpuSet && !actor {
			spec.Resources["CPU"] = 1
		}
	}
	spec.MaxRetries = 3
	if actor {
		spec.MaxRetries = 0
	}
	if o.retriesSet {
		spec.MaxRetries = o.maxRetries
	}
	spec.RetryAppErrors = o.retryAppErrors
	spec.Name = o.name
	spec.Dedicated = o.dedicated
	spec.Strategy = o.strategy
	spec.MaxConcurrency = o.maxConcurrency
	spec.MaxRestarts = o.maxRestarts
	spec.ActorName = o.actorName
	spec.Namespace = o.namespace
	if spec.ActorName != "" && spec.Namespace == "" {
		spec.Namespace = "default"
	}
}
