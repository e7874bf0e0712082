// Package runtime is raygo's machinery: the head (cluster directory,
// key-value store, named actors, placement groups), the node agent
// (scheduling, worker processes, the node's object store, transfers between
// nodes), the client that drivers and workers use to talk to their agent,
// and the worker executor.
//
// User code does not use this package directly; the root package raygo
// wraps it with typed functions, refs and actors. Tools and tests use it to
// assemble clusters:
//
//	head, _ := runtime.NewHead("127.0.0.1:0", secret, runtime.NewClusterID(), log.Printf)
//	agent, _ := runtime.StartAgent(ctx, runtime.AgentConfig{
//		HeadAddr:  head.Addr(),
//		Secret:    secret,
//		StateDir:  dir,
//		Resources: wire.Resources{"CPU": 4, "memory": 8 << 30},
//	})
//	defer head.Stop("done")
//	defer agent.Stop(2 * time.Second)
//
// Concurrency: each server reads each connection in one goroutine and
// handles its messages under the server's one mutex (Head.mu, Agent.mu);
// handlers never block under it (sends only queue; pulls, dials and
// requests to the head run in their own goroutines). The Client guards its
// object table with Client.mu and sends reference changes before any
// message that could depend on them.
package runtime
