// Package launcher starts a raygo cluster inside a batch allocation and
// runs a driver program on it: the library behind the raygo-launch command
// (see docs/launch.md).
//
// One raygo-launch runs on each node. DetectRole works out which rank this
// process is, and how many there are, from the command line (--rank,
// --world-size, --key or --head, a nodes file) or from the launch system
// that started it: Slurm's srun, mpirun (Open MPI, MPICH and other PMI
// launchers), YARN containers or a Kubernetes indexed job. Run then does
// the rank's part:
//
//   - rank 0 starts the head and a node agent, publishes the head's address
//     and the cluster secret through a Rendezvous directory (0700, keyed by
//     the launch; no fixed ports), waits until every rank's node has joined
//     (or JoinTimeout, then MinNodes), runs the driver command with
//     RAYGO_ADDRESS set, passes signals on to it, and when the driver exits
//     stops the cluster and returns the driver's exit code;
//   - every other rank finds the head through the rendezvous (or --head),
//     runs a node agent, and returns 0 when rank 0 stops the cluster.
//
// NodeIP picks the address a node listens on (--interface: an interface,
// subnet or address) and NodeResources what it offers (flags, then the
// Slurm allocation, then what the machine has).
//
// A rank given by hand, as raygo-launch --rank 0 --world-size 4 --key run42
// -- ./pipeline would run it:
//
//	code := launcher.Run(ctx, launcher.Config{
//		Manual:        launcher.Manual{Rank: 0, WorldSize: 4, Key: "run42"},
//		RendezvousDir: "/home/alice/.raygo/rendezvous", // every rank sees it
//		Interface:     "ib0",
//		Command:       []string{"./pipeline", "--input", "/scratch/run42"},
//	})
//	os.Exit(code)
//
// Run returns an exit code, not an error: the driver's on rank 0, or one of
// ExitSetup, ExitNoJoin, ExitLostHead and ExitNoDriver, with the reason
// written to Config.Stderr.
//
// Goroutines: Run owns everything it starts. On rank 0 one goroutine waits
// for the driver process; on the others one watches for SIGTERM/SIGINT while
// the head is looked up. Both end before Run returns.
package launcher
