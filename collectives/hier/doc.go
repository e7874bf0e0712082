// Package hier is the hierarchical collectives backend, for groups with
// several ranks on each of several nodes: shared memory inside a node,
// TCP across nodes. It registers itself as "hier".
//
// # Sub-groups
//
// The ranks of a node (Config.Members with the same Node) form an
// intra-node sub-group, built with the backend named by hier.intra
// ("shm" by default); a node's lowest rank is its leader. Across nodes:
// when every node has the same number L of ranks, local rank j of every
// node joins inter-node sub-group j (group 0 is the leaders); otherwise
// only the leaders form one. Those are built with hier.inter ("tcp" by
// default). Nodes are numbered by their lowest rank, and a sub-group's
// ranks keep the parent group's order. Sub-groups are named after the
// group ("g/node1", "g/shard0"), and errors inside one say which ranks
// of the group its ranks are; a *backend.WaitError from a sub-group is
// rewritten in the group's ranks.
//
// A sub-group's backend exchanges its addresses or segment names through
// a rendezvous among its own ranks. The group's Rendezvous cannot serve
// it (its Exchange needs every rank of the group, while each sub-group
// calls with its own keys, at its own pace, and not at all when it has
// one rank), so the group first builds a tcp backend over all its ranks
// that connects pairs lazily, whose one exchange of addresses every rank
// makes, and the sub-groups rendezvous over its Send and Recv. It also
// carries Send and Recv between ranks on different nodes; ranks of one
// node use the intra-node sub-group.
//
// # Operations
//
//	allreduce      sharded (below) when every node has the same number of
//	               ranks and the buffer is at least hier.sharded_above;
//	               otherwise reduce to the leader, allreduce among the
//	               leaders, broadcast from the leader
//	reduce         reduce to the leader, reduce among the leaders to root's
//	               leader, which sends to root
//	broadcast      within root's node, among the leaders, within the others
//	allgather      gather to the leader, allgather among the leaders (blocks
//	               padded to the largest node), broadcast from the leader
//	reducescatter  reduce to the leader, reduce-scatter among the leaders
//	               with the blocks arranged by node, scatter from the leader
//	gather/scatter through the leaders, like allgather and reducescatter
//	barrier        node, leaders, node
//	alltoall       built from Send and Recv by the caller
//
// Sharded allreduce: each node reduce-scatters the buffer into L shards,
// local rank j of every node allreduces shard j in inter-node group j (L
// inter-node allreduces at once, each on 1/L of the data), and each node
// allgathers the shards. Every rank of a node takes part in the traffic
// between nodes, and no rank moves the whole buffer across nodes. When L
// does not divide the element count, the few elements left take the
// leader path.
//
// # Options
//
//	hier.intra          backend inside a node (shm)
//	hier.inter          backend across nodes (tcp)
//	hier.sharded_above  allreduce shards from this many bytes (0: always;
//	                    -1 never)
//
// The default comes from BenchmarkAllreduceProcs: 4 processes as 2 nodes
// of 2 on one 2-core machine, where sharding was as fast as the leader
// path or faster at every size from 4KiB to 16MiB (2 to 3 times faster
// from 1MiB up).
//
// Other keys pass to the sub-groups' backends ("tcp.chunk", "shm.dir"),
// which check their own; unknown "hier." keys are an error listing the
// valid ones.
package hier
