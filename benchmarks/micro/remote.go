package micro

import (
	"context"

	"github.com/raygo/raygo"
)

// The remote functions and actor types of ray_perf.py, registered at
// package init under stable names so the worker processes (this same
// binary) serve them. Ray's names are kept after the "micro." prefix.

// smallValue is Ray's small_value task: it returns b"ok".
var smallValue = raygo.Func0("micro.small_value", func(ctx context.Context) ([]byte, error) {
	return []byte("ok"), nil
})

// createObjectContainingRef puts 10,000 small objects and returns their
// refs in one object.
var createObjectContainingRef = raygo.Func0("micro.create_object_containing_ref", func(ctx context.Context) ([]raygo.Ref[int], error) {
	refs := make([]raygo.Ref[int], 10000)
	for i := range refs {
		r, err := raygo.Put(ctx, 1)
		if err != nil {
			return nil, err
		}
		refs[i] = r
	}
	return refs, nil
})

// doPutSmall is one client of multi_client_put_calls: 100 small puts.
var doPutSmall = raygo.Func0("micro.do_put_small", func(ctx context.Context) (int, error) {
	for range 100 {
		if _, err := raygo.Put(ctx, 0); err != nil {
			return 0, err
		}
	}
	return 0, nil
})

// doPut is one client of multi_client_put_gigabytes: ten puts of a new
// zeroed array of 10 Mi int64 (80 MiB), as np.zeros(10 * 1024 * 1024,
// dtype=np.int64).
var doPut = raygo.Func0("micro.do_put", func(ctx context.Context) (int, error) {
	for range 10 {
		if _, err := raygo.Put(ctx, make([]int64, 10*1024*1024)); err != nil {
			return 0, err
		}
	}
	return 0, nil
})

// work is the client task of n_n_actor_calls_async: n calls spread round
// robin over the actors, then a get of all their results.
var work = raygo.Func2("micro.work", func(ctx context.Context, actors []raygo.Actor[*actor], n int) (int, error) {
	refs := make([]raygo.Ref[[]byte], n)
	for i := range refs {
		refs[i] = actorSmallValue.Remote(actors[i%len(actors)])
	}
	_, err := raygo.GetAll(ctx, refs)
	return 0, err
})

// asyncActorWork is work for async actors (n_n_async_actor_calls_async).
var asyncActorWork = raygo.Func2("micro.async_actor_work", func(ctx context.Context, actors []raygo.Actor[*asyncActor], n int) (int, error) {
	refs := make([]raygo.Ref[[]byte], n)
	for i := range refs {
		refs[i] = asyncSmallValue.Remote(actors[i%len(actors)])
	}
	_, err := raygo.GetAll(ctx, refs)
	return 0, err
})

// actor is Ray's Actor (num_cpus=0; raygo actors take no CPU unless asked).
type actor struct{}

var actorType = raygo.Actor0("micro.Actor", func(ctx context.Context) (*actor, error) { return &actor{}, nil })

var actorSmallValue = raygo.Method0(actorType, "small_value", func(ctx context.Context, a *actor) ([]byte, error) {
	return []byte("ok"), nil
})

var actorSmallValueArg = raygo.Method1(actorType, "small_value_arg", func(ctx context.Context, a *actor, x int) ([]byte, error) {
	return []byte("ok"), nil
})

// actorSmallValueBatch submits n small_value tasks and gets them: one
// client of multi_client_tasks_async.
var actorSmallValueBatch = raygo.Method1(actorType, "small_value_batch", func(ctx context.Context, a *actor, n int) (int, error) {
	refs := make([]raygo.Ref[[]byte], n)
	for i := range refs {
		refs[i] = smallValue.Remote()
	}
	_, err := raygo.GetAll(ctx, refs)
	return 0, err
})

// asyncActor is Ray's AsyncActor, whose methods are coroutines run up to
// 1,000 at a time (Ray's default max_concurrency for async actors). Go has
// no async methods: its actors are created with MaxConcurrency(1000).
type asyncActor struct{}

const asyncMaxConcurrency = 1000

var asyncActorType = raygo.Actor0("micro.AsyncActor", func(ctx context.Context) (*asyncActor, error) { return &asyncActor{}, nil })

var asyncSmallValue = raygo.Method0(asyncActorType, "small_value", func(ctx context.Context, a *asyncActor) ([]byte, error) {
	return []byte("ok"), nil
})

var asyncSmallValueWithArg = raygo.Method1(asyncActorType, "small_value_with_arg", func(ctx context.Context, a *asyncActor, x int) ([]byte, error) {
	return []byte("ok"), nil
})

// client is Ray's Client actor: it calls its servers.
type client struct {
	servers []raygo.Actor[*actor]
}

var clientType = raygo.Actor1("micro.Client", func(ctx context.Context, servers []raygo.Actor[*actor]) (*client, error) {
	return &client{servers: servers}, nil
})

// clientSmallValueBatch makes n calls to each server, then gets them all.
var clientSmallValueBatch = raygo.Method1(clientType, "small_value_batch", func(ctx context.Context, c *client, n int) (int, error) {
	refs := make([]raygo.Ref[[]byte], 0, n*len(c.servers))
	for _, s := range c.servers {
		for range n {
			refs = append(refs, actorSmallValue.Remote(s))
		}
	}
	_, err := raygo.GetAll(ctx, refs)
	return 0, err
})

// clientSmallValueBatchArg puts one small object and passes its ref to n
// calls on each server.
var clientSmallValueBatchArg = raygo.Method1(clientType, "small_value_batch_arg", func(ctx context.Context, c *client, n int) (int, error) {
	x, err := raygo.Put(ctx, 0)
	if err != nil {
		return 0, err
	}
	refs := make([]raygo.Ref[[]byte], 0, n*len(c.servers))
	for _, s := range c.servers {
		for range n {
			refs = append(refs, actorSmallValueArg.Remote(s, x))
		}
	}
	_, err = raygo.GetAll(ctx, refs)
	return 0, err
})

// asyncClient is Client with async-actor servers (1_n_async_actor_calls_async).
type asyncClient struct {
	servers []raygo.Actor[*asyncActor]
}

var asyncClientType = raygo.Actor1("micro.AsyncClient", func(ctx context.Context, servers []raygo.Actor[*asyncActor]) (*asyncClient, error) {
	return &asyncClient{servers: servers}, nil
})

var asyncClientSmallValueBatch = raygo.Method1(asyncClientType, "small_value_batch", func(ctx context.Context, c *asyncClient, n int) (int, error) {
	refs := make([]raygo.Ref[[]byte], 0, n*len(c.servers))
	for _, s := range c.servers {
		for range n {
			refs = append(refs, asyncSmallValue.Remote(s))
		}
	}
	_, err := raygo.GetAll(ctx, refs)
	return 0, err
})
