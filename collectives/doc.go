// Package collectives runs collective operations (allreduce, broadcast,
// allgather, reduce-scatter, all-to-all, gather, scatter, barrier, send
// and receive) among the processes of a raygo job, on plain Go slices.
//
// A group is a named set of ranks 0..n-1. Either each member joins it
// itself, knowing its rank and the group's size:
//
//	g, err := collectives.Join(ctx, "grads", rank, world)
//
// or the driver declares it over actors, and each actor opens it from
// one of its methods:
//
//	collectives.Declare(ctx, "grads", workers)        // driver
//	g, err := collectives.Open(ctx, "grads")          // in a method of each worker
//	err = collectives.AllreduceInPlace(ctx, g, grads, collectives.Avg)
//
// The ranks meet through the cluster's key-value store. Element types are
// float32, float64, int32, int64, uint8, Float16 and BFloat16 (16-bit
// floats stored as uint16 and reduced in float32); reductions are Sum,
// Prod, Min, Max and Avg.
//
// Backends move the bytes. shm (every rank on one node: shared memory,
// no sockets), tcp (one rank per node), hier (shm inside each node, tcp
// between nodes) are chosen automatically from where the ranks run; mpi
// (MPI through cgo with the build tag mpi, ranks started by mpirun or
// srun) and nccl (NCCL loaded at run time, for GPUs) are chosen with
// WithBackend, per group, or Via, per call. Backends implement
// collectives/backend.Backend and register by name, as database/sql
// drivers do.
//
// Every call takes a context; a call that waits too long returns an error
// wrapping a *WaitError that lists the ranks that never reached it.
// docs/collectives.md describes the algorithms, their size table, and
// the benchmark (raygo bench collectives).
package collectives
