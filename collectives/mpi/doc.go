// Package mpi is the collectives backend "mpi": collective operations
// through the MPI library, for ranks started as one MPI world by mpirun,
// mpiexec or srun.
//
// # Two builds
//
// Built with the tag mpi, the package is a cgo binding of its own to MPI
// (Open MPI by default, through pkg-config "ompi"; MPICH with the tags
// mpi,mpich, through pkg-config "mpich"). On Debian: apt-get install
// libopenmpi-dev (or libmpich-dev), then
//
//	go build -tags mpi ./...        # Open MPI
//	go build -tags mpi,mpich ./...  # MPICH
//
// Without the tag, the package is a pure-Go stand-in registered under the
// same name: it reads the world from the launcher's environment and moves
// the data with the "tcp" backend (which the program must link in). Both
// builds have the same API.
//
// # The world
//
// A group on this backend is the whole MPI world, with MPI's ranks. A
// Config with Size 0 (and no Members) asks for exactly that; a Config
// whose rank or size disagrees with the world's is refused, naming both.
// Neither Members nor a Rendezvous is needed: ranks started by a launcher
// need no raygo cluster. Init returns the rank and size.
//
// With the tag, the world is MPI_COMM_WORLD, and each group gets its own
// communicator from MPI_Comm_idup, so that groups never see each other's
// messages. Making a communicator is collective over the world: every
// rank must make its groups in the same order (as MPI requires); a group
// made out of order is detected and refused. If the launcher's
// environment names a rank or size that MPI does not (srun without
// --mpi=pmix or --mpi=pmi2 starts every process as a world of one), Init
// says so.
//
// The stand-in takes the rank and size from, in order, Open MPI's
// OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/PMI_SIZE (MPICH's Hydra, srun
// --mpi=pmi2), PMIX_RANK (srun --mpi=pmix), or SLURM_PROCID and
// SLURM_NTASKS in a job step; the launcher nearest the process wins, so
// mpirun inside a batch script ignores the script's Slurm variables.
// Without a raygo Rendezvous, the ranks exchange their addresses through
// a directory they all see: the mpi.rendezvous_dir option, else
// $RAYGO_RENDEZVOUS_DIR, else ~/.raygo/rendezvous, under a name taken
// from the launch (Open MPI's job, the PMIx namespace, the Slurm job and
// step). MPICH's Hydra names no launch: on one node the ranks' common
// parent names it; across nodes set RAYGO_LAUNCH_KEY to a value new for
// each launch. Rank 0 removes the directory once every rank is done with
// it. The address published is the mpi.host option, else
// $RAYGO_INTERFACE (an address, an interface or a subnet), else the
// host name's address.
//
// # Threads
//
// MPI is initialised with MPI_Init_thread asking for
// MPI_THREAD_FUNNELED, and Init fails if the library provides less. The
// calling thread of MPI_Init_thread belongs to one goroutine, locked to
// it with runtime.LockOSThread for the life of the process, and every MPI
// call of the package runs on that goroutine: callers hand it work
// through a channel. It starts each operation as a nonblocking MPI call
// (MPI_Iallreduce, MPI_Ireduce, MPI_Ibcast, MPI_Iallgather,
// MPI_Ireduce_scatter_block, MPI_Ialltoall, MPI_Igather, MPI_Iscatter,
// MPI_Ibarrier, MPI_Isend, MPI_Irecv) and tests the operations in flight
// with MPI_Test, so that one process's groups progress together and every
// caller can stop waiting when its ctx ends. While a caller waits it
// tests without pause, as MPI's blocking calls do (MPI progresses only
// inside its calls), and after a millisecond without a completion it
// calls sched_yield between tests so that other threads on the core can
// run. Operations whose callers stopped waiting are tested with sleeps of
// up to 10 ms between tests. The thread blocks when nothing is in flight.
//
// MPI_COMM_WORLD and every group's communicator get MPI_ERRORS_RETURN,
// so MPI's failures (a message longer than the receive, lengths that
// disagree in a collective) come back as errors naming the call and the
// group instead of aborting the process.
//
// MPI cannot cancel a collective. A call whose ctx ends returns an error
// wrapping ctx.Err() (a *backend.WaitError naming the peer for Send and
// Recv; MPI cannot say which ranks a collective waits for), but its
// operation stays in flight, its buffers pinned and possibly written by
// MPI later, until the other ranks complete it; the backend then refuses
// further calls. Close frees the communicator once nothing is in flight
// on it.
//
// Finalize must be called before the process exits (after closing the
// groups), or the launcher reports the process as failed. It waits, until
// its ctx ends, for abandoned operations to complete.
//
// # Types and reductions
//
// float32, float64, int32, int64 map to MPI_FLOAT, MPI_DOUBLE,
// MPI_INT32_T and MPI_INT64_T with the library's MPI_SUM, MPI_PROD,
// MPI_MIN and MPI_MAX. MPI has no standard half-precision type: float16
// and bfloat16 travel as MPI_UINT16_T and reduce with user-defined ops
// (MPI_Op_create, commutative) written in C that widen each pair to
// float32, combine, and round back to nearest even, exactly as the
// backend package's Go reduction does. uint8 (MPI_UINT8_T) also reduces
// with ops of its own, because Open MPI 4.1.4 saturates 8-bit sums
// instead of wrapping (open-mpi/ompi#8045) and MPICH 4.0.2 compares
// unsigned integers as signed in MPI_MIN and MPI_MAX (pmodels/mpich#6083).
// Moves without a reduction use MPI_BYTE. MPI counts are C ints: Allreduce,
// Reduce, Broadcast, Send and Recv split longer buffers into several
// calls of at most mpi.max_count elements (default 2^30); the other
// operations refuse blocks of more than 2^31-1 bytes.
//
// Open MPI replaces the handlers of SIGSEGV, SIGBUS, SIGFPE and SIGILL at
// MPI_Init, which would turn Go's nil-pointer panics into crashes; unless
// OMPI_MCA_opal_signal is set, the package sets it empty first.
//
// # Options
//
//	mpi.max_count       elements per MPI call (build with the tag)
//	mpi.rendezvous_dir  the directory rendezvous (stand-in)
//	mpi.host            the address other ranks reach this one at (stand-in)
//
// Other options (tcp.*) go to the tcp backend in the stand-in.
//
// # Example
//
// A program started by mpirun -np 4 (or srun --mpi=pmix -n 4):
//
//	ctx := context.Background()
//	info, err := mpi.Init(ctx)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer mpi.Finalize(ctx)
//	f, _ := backend.Lookup(mpi.Name)
//	b, err := f(ctx, backend.Config{Group: "grads"}) // the whole world
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer b.Close()
//	grad := make([]byte, 4*1024) // 1024 float32
//	err = b.Allreduce(ctx, grad, grad, backend.F32, backend.Sum)
//	fmt.Println(info.Rank, "of", info.Size, err)
//
// Programs normally reach the backend through the collectives package
// (collectives.Join with the mpi backend) rather than directly.
package mpi
