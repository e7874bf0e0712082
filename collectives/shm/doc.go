// Package shm is the collectives backend for ranks on one node: they
// exchange data through one shared-memory segment, with no sockets on the
// data path. It registers itself as "shm" (see backend.Register); the
// ranks may be processes (one per worker, the usual case) or goroutines
// of one process.
//
// # Segment
//
// Rank 0 creates a file in /dev/shm (os.TempDir() when /dev/shm is
// missing, or the directory given by the option shm.dir) named after the
// group, its pid and a random token, sizes it and claims its pages with
// fallocate, so that a full /dev/shm is an error naming the path, the
// size and the free space rather than SIGBUS later. It sends the path
// through the rendezvous; every rank maps the file, and once all have
// said so, rank 0 unlinks it. From then on nothing is left behind, even
// if processes are killed; a segment left by a creator killed before
// that point is removed by the next group created in the same directory.
//
// The segment holds a counter per rank and purpose (64 bits, alone on a
// 128-byte line, written by its rank only), two stages of one slot per
// rank (shm.slot_bytes each) through which collective calls move, and a
// ring per ordered pair of ranks (shm.ring_bytes each) for Send and Recv.
//
// # Calls
//
// A collective call moves in steps of at most one slot per rank. Step g
// uses stage g mod 2: its producers copy into their slots and publish
// arrive = g; its consumers wait for that, read, and publish release = g.
// A rank writes a stage only after every rank has released the step two
// before, so one stage is filled while the other is read, and step g+1
// is written before step g is read.
//
//   - Small allreduce (up to 32 KiB over all ranks, or 1 KiB each):
//     every rank copies its data into its slot and reduces all slots
//     itself (one wait).
//   - Larger allreduce: per slot-sized chunk, every rank copies the
//     others' shares of it into its slot; each rank reduces its own share
//     (1/size of the chunk) from its data and the others' slots, writing
//     the result to its output and to its slot, and publishes reduced =
//     g; then each copies the others' results out. Chunks are pipelined
//     through the two stages, and stay in cache from copy-in to copy-out.
//   - Reduce is the same, with only root copying results out.
//   - ReduceScatter and AllToAll: each rank copies the other ranks'
//     blocks into its slot; each reads (and reduces) its own from every
//     slot. Allgather and Gather: each rank copies its data into its
//     slot. Broadcast: root fills a whole stage. Scatter: root fills each
//     rank's slot.
//
// Reductions run in rank order, so every rank gets the same bits; sums of
// float32, float64, int32 and int64 use AVX2 where the CPU has it.
//
// Calls of 32 KiB or more write the stages either through the cache or
// with non-temporal stores. Cores that share a last-level cache pass
// modified lines quickly, and the first is about twice as fast; cores on
// different dies pass them slowly, and the second is more than twice as
// fast. A virtual machine's CPUs move between the two as the host places
// them, so rank 0 times large allreduce and reduce calls, per class of
// sizes, and the group uses the faster mode, trying the other every 64th
// call (see tune.go).
// Ranks check that they agree on each call (operation, length, element
// type, root) and fail with ErrMismatch otherwise.
//
// # Waiting
//
// A rank waiting for others spins on atomic loads for 20 µs, then for up
// to 2 ms yields the processor (runtime.Gosched, so that goroutine ranks
// of one process progress, and sched_yield, so that ranks in other
// processes do), then sleeps with a delay growing from 2 µs to 1 ms, so
// that an idle wait does not burn a CPU. A group with more ranks than
// CPUs (or, for ranks that are goroutines of one process, than
// GOMAXPROCS) does not spin at all: the ranks it waits for need the core.
// It checks ctx throughout: when ctx ends the call returns a
// *backend.WaitError listing the ranks whose counters have not reached
// the step waited for. While sleeping it also checks that the processes
// waited for are alive, and fails with ErrPeerExited when one has died.
//
// A rank whose call fails (its ctx ended, the ranks disagree on the call,
// invalid arguments), or that closes its end, marks the group abandoned
// in the segment; ranks waiting for it then stop at once with
// ErrAbandoned, naming it and why, instead of waiting for their own ctx.
//
// Groups are independent: a process may hold ranks of several groups.
//
// # Options
//
//	shm.slot_bytes  size of one rank's slot in each stage; default 131072
//	                (DefaultSlotBytes); a multiple of 64 from 4096 to 1 GiB
//	shm.ring_bytes  size of each Send/Recv ring; default 8 MiB shared among
//	                the size×(size-1) rings, each between 4 KiB and 256 KiB
//	shm.dir         directory of the segment; default /dev/shm
//
// Other shm.* options are rejected. The segment takes 2 × size ×
// slot_bytes plus size × (size-1) × ring_bytes bytes of /dev/shm.
package shm
