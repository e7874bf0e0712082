// Package tcp is a collectives backend over TCP, in pure Go, for ranks on
// any nodes. It registers itself as "tcp".
//
// # Connections
//
// Each rank listens on its member's Host (an ephemeral port), publishes
// "host:port" and a random nonce through the group's Rendezvous, and
// connects to every other rank: one connection per pair, dialed by the
// lower rank, which opens with a hello naming the group, both ranks, the
// group size and the nonce. A hello for another group, rank, size or
// incarnation is refused, and both sides' errors say why. With the
// option tcp.connect=lazy a pair connects when an operation first needs
// it instead of at start.
//
// Sockets have Nagle's algorithm off and, by default, the kernel's
// automatic buffer sizing (tcp.sockbuf sets a fixed size instead).
//
// # Progress
//
// An operation drives its sockets from the caller's goroutine with
// non-blocking system calls: every pass reads what has arrived (into its
// destination, reducing a chunk into place once it is whole) and writes
// what the sockets take, at most 256KiB per message and pass, a header
// and its payload in one sendmsg. A message that forwards another (ring, chain)
// goes out chunk by chunk as its source lands, so the transfer of one
// chunk, the arrival of the next and the reduction of another overlap;
// the kernel's socket buffers carry data while the goroutine reduces.
// Recursive doubling streams too: the partner's vector is reduced into
// place as it arrives while this rank's goes out. A call with nothing to
// do spins for tcp.spin (yielding to other goroutines, and after 10µs to
// other processes, which on a busy node may be the peer it waits for),
// then sleeps in poll(2). Buffers are reused: calls allocate nothing per
// message.
//
// # Algorithms and the size table
//
// Each operation picks its algorithm by the size of its buffer:
//
//	operation      below the threshold     from the threshold up            option            default
//	allreduce      recursive doubling      ring: reduce-scatter+allgather   tcp.ring_above    256KiB
//	reduce         binomial tree           ring reduce-scatter, gather      tcp.ring_above    256KiB
//	broadcast      binomial tree           pipelined chain                  tcp.chain_above   256KiB
//	allgather      ring (pipelined)
//	reducescatter  ring (pipelined)
//	barrier        dissemination
//	gather         every rank sends to root, which receives from all at once
//	scatter        root sends to every rank at once
//	alltoall       every rank sends to and receives from all at once
//	send/recv      one frame on the pair's connection, in order
//
// Recursive doubling handles any group size (the ranks beyond the largest
// power of two fold into a partner first). Setting a threshold to 0
// forces the ring or chain; setting it above any message (1G) forces
// the other.
//
// The defaults come from 2 processes on one 2-core machine over loopback,
// measured side by side with OpenMPI 4.1's TCP transport (see
// BenchmarkAllreduceProcs): recursive doubling wins below 256KiB there
// and the ring from 1MiB up (2 ranks: even against recursive doubling that
// streams, since it moves the same bytes with half the reduction); chunks
// of 128KiB lose to 512KiB from 1MiB up (more system calls for no better
// overlap), and 256KiB or 1MiB do no better; the kernel's own buffer sizing
// beats fixed 4MiB buffers; and spinning 500µs instead of 50µs gains
// nothing measurable once waiting calls yield to other processes.
//
// Options (Config.Options; unknown "tcp." keys are an error listing the
// valid ones; byte counts take K, KiB, M, MiB, G or GiB suffixes):
//
//	tcp.ring_above   allreduce and reduce use the ring at or above this many bytes (256KiB)
//	tcp.chain_above  broadcast uses the pipelined chain at or above this many bytes (256KiB)
//	tcp.chunk        pipeline chunk in bytes (512KiB)
//	tcp.sockbuf      fixed socket send and receive buffers in bytes (0: the kernel's sizing)
//	tcp.spin         how long a waiting call polls before sleeping, a Go duration (50us)
//	tcp.connect      eager (the default) or lazy
//
// # Frames and errors
//
// Every message is a frame: a 16-byte header (kind, operation, step,
// call number, length) and its payload. The receiver checks each header
// against what it expects, so ranks that call different operations,
// call them in a different order or pass different lengths get an error
// naming the peer and both sides' values. A Recv whose buffer length
// differs from the message's fails with both lengths and leaves the
// connection usable.
//
// A connection that breaks without the peer closing the group (its
// process died) fails the call with ErrPeerLost naming the peer; every
// call also watches the connections it is not using, so a rank that dies
// anywhere in the group ends every rank's call within milliseconds. A rank
// whose call fails tells its peers why (ErrPeerFailed, with the reason)
// before it hangs up. A call whose ctx ends returns a *backend.WaitError
// naming the ranks it was waiting for. After a failure the backend is
// unusable; Close says goodbye to the peers (ErrPeerClosed on their side
// if they still wait for this rank) and releases the sockets.
package tcp
