package micro

import (
	"context"
	"fmt"
	"math"
	goruntime "runtime"
	"time"

	"github.com/raygo/raygo"
)

// workload is one entry of ray_perf.py: it sets up what it needs, times
// its operation with b.timeit, and cleans up.
type workload struct {
	name string
	run  func(ctx context.Context, b *bench) error
}

// timed makes a workload whose setup is nothing: it times op alone.
func timed(name, unit string, multiplier float64, op func(context.Context) error) workload {
	return workload{name, func(ctx context.Context, b *bench) error {
		_, err := b.timeit(ctx, name, unit, multiplier, op)
		return err
	}}
}

// workloads are ray_perf.py's, in its order and with its sizes.
var workloads = []workload{
	{"single_client_get_calls_Plasma_Store", func(ctx context.Context, b *bench) error {
		value, err := raygo.Put(ctx, 0)
		if err != nil {
			return err
		}
		_, err = b.timeit(ctx, "single_client_get_calls_Plasma_Store", "gets/s", 1, func(ctx context.Context) error {
			_, err := value.Get(ctx)
			return err
		})
		return err
	}},
	timed("single_client_put_calls_Plasma_Store", "puts/s", 1, func(ctx context.Context) error {
		_, err := raygo.Put(ctx, 0)
		return err
	}),
	timed("multi_client_put_calls_Plasma_Store", "puts/s", 1000, func(ctx context.Context) error {
		return getTasks(ctx, 10, doPutSmall.Remote)
	}),
	{"single_client_put_gigabytes", putGigabytes},
	timed("single_client_tasks_and_get_batch", "batches/s", 1, func(ctx context.Context) error {
		return getTasks(ctx, 1000, smallValue.Remote)
	}),
	timed("multi_client_put_gigabytes", "GB/s", 10*8*0.1, func(ctx context.Context) error {
		return getTasks(ctx, 10, doPut.Remote)
	}),
	{"single_client_get_object_containing_10k_refs", func(ctx context.Context, b *bench) error {
		obj := createObjectContainingRef.Remote()
		_, err := b.timeit(ctx, "single_client_get_object_containing_10k_refs", "gets/s", 1, func(ctx context.Context) error {
			refs, err := obj.Get(ctx)
			if err == nil && len(refs) != 10000 {
				err = fmt.Errorf("got %d refs, want 10000", len(refs))
			}
			return err
		})
		return err
	}},
	timed("single_client_wait_1k_refs", "rounds/s", 1, func(ctx context.Context) error {
		notReady := make([]raygo.Ref[[]byte], 1000)
		for i := range notReady {
			notReady[i] = smallValue.Remote()
		}
		for range len(notReady) {
			var err error
			if _, notReady, err = raygo.Wait(ctx, notReady, 1, 0); err != nil {
				return err
			}
		}
		return nil
	}),
	timed("single_client_tasks_sync", "tasks/s", 1, func(ctx context.Context) error {
		_, err := smallValue.Remote().Get(ctx)
		return err
	}),
	timed("single_client_tasks_async", "tasks/s", 1000, func(ctx context.Context) error {
		return getTasks(ctx, 1000, smallValue.Remote)
	}),
	{"multi_client_tasks_async", func(ctx context.Context, b *bench) error {
		const n, m = 10000, 4
		actors, err := newActors(ctx, m, actorType)
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		_, err = b.timeit(ctx, "multi_client_tasks_async", "tasks/s", n*m, func(ctx context.Context) error {
			return getEach(ctx, actors, func(a raygo.Actor[*actor]) raygo.Ref[int] {
				return actorSmallValueBatch.Remote(a, raygo.Val(n))
			})
		})
		return err
	}},
	{"1_1_actor_calls_sync", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_actor_calls_sync", actorType, 1, func(ctx context.Context, a raygo.Actor[*actor]) error {
			_, err := actorSmallValue.Remote(a).Get(ctx)
			return err
		})
	}},
	{"1_1_actor_calls_async", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_actor_calls_async", actorType, 1000, func(ctx context.Context, a raygo.Actor[*actor]) error {
			return getCalls(ctx, 1000, func(int) raygo.Ref[[]byte] { return actorSmallValue.Remote(a) })
		})
	}},
	{"1_1_actor_calls_concurrent", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_actor_calls_concurrent", actorType.With(raygo.MaxConcurrency(16)), 1000, func(ctx context.Context, a raygo.Actor[*actor]) error {
			return getCalls(ctx, 1000, func(int) raygo.Ref[[]byte] { return actorSmallValue.Remote(a) })
		})
	}},
	{"1_n_actor_calls_async", func(ctx context.Context, b *bench) error {
		const n = 5000
		actors, err := newActors(ctx, b.opts.Servers, actorType)
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		c := clientType.Remote(raygo.Val(actors))
		defer kill(ctx, []raygo.Actor[*client]{c})
		_, err = b.timeit(ctx, "1_n_actor_calls_async", "calls/s", float64(n*len(actors)), func(ctx context.Context) error {
			_, err := clientSmallValueBatch.Remote(c, raygo.Val(n)).Get(ctx)
			return err
		})
		return err
	}},
	{"n_n_actor_calls_async", func(ctx context.Context, b *bench) error {
		const n, m = 5000, 4
		actors, err := newActors(ctx, b.opts.Servers, actorType)
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		_, err = b.timeit(ctx, "n_n_actor_calls_async", "calls/s", m*n, func(ctx context.Context) error {
			return getTasks(ctx, m, func() raygo.Ref[int] { return work.Remote(raygo.Val(actors), raygo.Val(n)) })
		})
		return err
	}},
	{"n_n_actor_calls_with_arg_async", func(ctx context.Context, b *bench) error {
		const n = 1000
		actors, err := newActors(ctx, b.opts.Servers, actorType)
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		clients := make([]raygo.Actor[*client], len(actors))
		for i, a := range actors {
			clients[i] = clientType.Remote(raygo.Val([]raygo.Actor[*actor]{a}))
		}
		defer kill(ctx, clients)
		_, err = b.timeit(ctx, "n_n_actor_calls_with_arg_async", "calls/s", float64(n*len(clients)), func(ctx context.Context) error {
			return getEach(ctx, clients, func(c raygo.Actor[*client]) raygo.Ref[int] {
				return clientSmallValueBatchArg.Remote(c, raygo.Val(n))
			})
		})
		return err
	}},
	{"1_1_async_actor_calls_sync", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_async_actor_calls_sync", asyncActorClass(), 1, func(ctx context.Context, a raygo.Actor[*asyncActor]) error {
			_, err := asyncSmallValue.Remote(a).Get(ctx)
			return err
		})
	}},
	{"1_1_async_actor_calls_async", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_async_actor_calls_async", asyncActorClass(), 1000, func(ctx context.Context, a raygo.Actor[*asyncActor]) error {
			return getCalls(ctx, 1000, func(int) raygo.Ref[[]byte] { return asyncSmallValue.Remote(a) })
		})
	}},
	{"1_1_async_actor_calls_with_args_async", func(ctx context.Context, b *bench) error {
		return oneActor(ctx, b, "1_1_async_actor_calls_with_args_async", asyncActorClass(), 1000, func(ctx context.Context, a raygo.Actor[*asyncActor]) error {
			return getCalls(ctx, 1000, func(i int) raygo.Ref[[]byte] { return asyncSmallValueWithArg.Remote(a, raygo.Val(i)) })
		})
	}},
	{"1_n_async_actor_calls_async", func(ctx context.Context, b *bench) error {
		const n = 5000
		actors, err := newActors(ctx, b.opts.Servers, asyncActorClass())
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		c := asyncClientType.Remote(raygo.Val(actors))
		defer kill(ctx, []raygo.Actor[*asyncClient]{c})
		_, err = b.timeit(ctx, "1_n_async_actor_calls_async", "calls/s", float64(n*len(actors)), func(ctx context.Context) error {
			_, err := asyncClientSmallValueBatch.Remote(c, raygo.Val(n)).Get(ctx)
			return err
		})
		return err
	}},
	{"n_n_async_actor_calls_async", func(ctx context.Context, b *bench) error {
		const n, m = 5000, 4
		actors, err := newActors(ctx, b.opts.Servers, asyncActorClass())
		if err != nil {
			return err
		}
		defer kill(ctx, actors)
		_, err = b.timeit(ctx, "n_n_async_actor_calls_async", "calls/s", m*n, func(ctx context.Context) error {
			return getTasks(ctx, m, func() raygo.Ref[int] { return asyncActorWork.Remote(raygo.Val(actors), raygo.Val(n)) })
		})
		return err
	}},
	{"placement_group_create/removal", placementGroups},
}

// putGigabytes is single_client_put_gigabytes: puts of one 800 MiB array
// (np.zeros(100 * 1024 * 1024, dtype=np.int64)), counted as 0.8 GB each
// as Ray counts them. The same array copied into a reused buffer of the
// same size, timed the same way just before, is the memcpy it is compared
// with.
func putGigabytes(ctx context.Context, b *bench) error {
	const gb = 8 * 0.1
	arr := make([]int64, 100*1024*1024)
	dst := make([]int64, len(arr))
	// Touch every page before timing, in a loop the scheduler can preempt.
	// A first copy into fresh memory spends seconds in page faults inside
	// one memmove, which Go cannot preempt: on 2 CPUs a garbage collection
	// starting meanwhile leaves no CPU to the embedded head and node agent,
	// and the head declares the node dead (see docs/benchmarks.md).
	touch(arr)
	touch(dst)
	mc, err := b.timeit(ctx, "memcpy_gigabytes", "GB/s", gb, func(context.Context) error {
		copy(dst, arr)
		return nil
	})
	if err != nil {
		return err
	}
	dst = nil
	goruntime.GC()
	put, err := b.timeit(ctx, "single_client_put_gigabytes", "GB/s", gb, func(ctx context.Context) error {
		_, err := raygo.Put(ctx, arr)
		// Ray frees the object as soon as its ref is dropped (Python's
		// reference count). A raygo Ref lets go of its object when the
		// garbage collector finds it unreachable; collect now, as part
		// of the put, so dropped objects do not fill the store.
		goruntime.GC()
		return err
	})
	if err != nil {
		return err
	}
	ratio := put.Value / mc.Value
	b.add(Result{Name: "single_client_put_gigabytes_vs_memcpy", Value: ratio,
		SD: ratio * math.Hypot(put.SD/put.Value, mc.SD/mc.Value), Unit: "ratio"})
	goruntime.KeepAlive(arr)
	return nil
}

// touch writes a zero to each 4 KiB page of xs, so it is backed by memory.
func touch(xs []int64) {
	for i := 0; i < len(xs); i += 512 {
		xs[i] = 0
	}
}

// placementGroups is placement_group_create/removal: 100 groups of one
// bundle of 0.001 "custom" each, created, waited for (30 s at most each)
// and removed.
func placementGroups(ctx context.Context, b *bench) error {
	const numPGs = 100
	_, err := b.timeit(ctx, "placement_group_create/removal", "groups/s", numPGs, func(ctx context.Context) error {
		pgs := make([]*raygo.PlacementGroup, numPGs)
		for i := range pgs {
			pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{PGResource: 0.001}}, raygo.Pack)
			if err != nil {
				return fmt.Errorf("%w (the cluster needs micro.InitOptions)", err)
			}
			pgs[i] = pg
		}
		for _, pg := range pgs {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := pg.Wait(wctx)
			cancel()
			if err != nil {
				return err
			}
		}
		for _, pg := range pgs {
			if err := pg.Remove(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// getTasks submits n calls of f and gets all their results.
func getTasks[T any](ctx context.Context, n int, f func() raygo.Ref[T]) error {
	return getCalls(ctx, n, func(int) raygo.Ref[T] { return f() })
}

// getCalls submits f(0), ..., f(n-1) and gets all their results.
func getCalls[T any](ctx context.Context, n int, f func(i int) raygo.Ref[T]) error {
	refs := make([]raygo.Ref[T], n)
	for i := range refs {
		refs[i] = f(i)
	}
	_, err := raygo.GetAll(ctx, refs)
	return err
}

// getEach calls f on each actor and gets all the results.
func getEach[S, T any](ctx context.Context, actors []raygo.Actor[S], f func(raygo.Actor[S]) raygo.Ref[T]) error {
	return getCalls(ctx, len(actors), func(i int) raygo.Ref[T] { return f(actors[i]) })
}

// actorClass is an actor type without constructor arguments.
type actorClass[S any] interface {
	Remote() raygo.Actor[S]
}

func asyncActorClass() actorClass[*asyncActor] {
	return asyncActorType.With(raygo.MaxConcurrency(asyncMaxConcurrency))
}

// newActors creates n actors and waits until they are ready.
func newActors[S any](ctx context.Context, n int, class actorClass[S]) ([]raygo.Actor[S], error) {
	actors := make([]raygo.Actor[S], n)
	for i := range actors {
		actors[i] = class.Remote()
	}
	for _, a := range actors {
		if err := a.Ready(ctx); err != nil {
			kill(ctx, actors)
			return nil, err
		}
	}
	return actors, nil
}

// kill ends actors a workload made, so the next starts from a quiet
// cluster. Ray lets its actors go when their handles go out of scope.
func kill[S any](ctx context.Context, actors []raygo.Actor[S]) {
	for _, a := range actors {
		a.Kill(ctx)
	}
}

// oneActor times op on one new actor of class.
func oneActor[S any](ctx context.Context, b *bench, name string, class actorClass[S], multiplier float64, op func(context.Context, raygo.Actor[S]) error) error {
	actors, err := newActors(ctx, 1, class)
	if err != nil {
		return err
	}
	defer kill(ctx, actors)
	_, err = b.timeit(ctx, name, "calls/s", multiplier, func(ctx context.Context) error { return op(ctx, actors[0]) })
	return err
}
