package tcp

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/collectives/backend"
)

// engine moves the frames of one step of an operation: a set of
// receives and sends over any peers, all under way at once, driven by
// one goroutine with non-blocking system calls.
//
// Each pass tries every receive (reading what has arrived, at most a
// chunk, reducing it into place when the receive reduces) and then every
// send (writing what the socket takes, at most maxWrite and a chunk). A send may
// depend on a receive: it then forwards each part of that receive's
// destination as soon as it has landed (and been reduced), which
// pipelines the ring and chain algorithms: the write of one chunk, the
// arrival of the next and the reduction of another overlap, the kernel's
// socket buffers carrying the data while this goroutine reduces. Frames
// to or from one peer go in the order added.
//
// When a pass makes no progress the engine spins (yielding the processor
// to other goroutines, and after yieldAfter to other processes too) for
// the spin time, then sleeps in poll(2) on the sockets it waits for, the
// backend's wake pipe (which becomes readable when the backend fails or
// ctx ends), and, for collective calls, every other peer's socket for a
// hang-up, so the death of any rank ends the call with an error naming
// it.
type engine struct {
	c     *comm
	dt    backend.DType // for receives that reduce
	op    backend.Op
	chunk int
	watch bool // also watch the other peers for hang-ups
	recvs []recvReq
	sends []sendReq
	lastR []int // by rank: index of the last receive added, -1 if none
	lastW []int
	locks []*peer // peers whose rmu or wmu this engine holds
	fds   []unix.PollFd
	fdOf  []int   // by rank: index in fds, -1 if none
	quiet []bool  // by rank: a hung-up peer not to watch again in this run
	owner []*peer // peer of fds[i], nil for the wake pipe
}

type recvReq struct {
	p       *peer
	want    header
	dst     []byte
	src     []byte // with reduce: dst = src op data (src may be dst)
	reduce  bool
	prev    int // the previous receive from the same peer, or -1
	started bool
	got     int // bytes of dst landed (and reduced)
	fill    int // reduce: bytes of the current chunk in the peer's scratch
	discard uint64
	err     error // a recoverable error to report once the frame is consumed
	guard   int   // a send from dst: a chunk is reduced only once it went out (-1: none)
	done    bool
}

type sendReq struct {
	p     *peer
	hdr   [headerLen]byte
	hsent int
	src   []byte
	dep   int // receive whose dst is src and must land first, or -1
	prev  int // the previous send to the same peer, or -1
	sent  int
	done  bool
}

func newEngine(c *comm) *engine {
	e := &engine{c: c, lastR: make([]int, c.size), lastW: make([]int, c.size), fdOf: make([]int, c.size), quiet: make([]bool, c.size)}
	return e
}

func (e *engine) reset(watch bool) {
	e.chunk = e.c.opt.chunk
	e.watch = watch
	e.recvs = e.recvs[:0]
	e.sends = e.sends[:0]
	for i := range e.lastR {
		e.lastR[i], e.lastW[i] = -1, -1
	}
}

// recv adds a receive of a frame like want from p into dst (reducing
// with src if reduce) and returns its index.
func (e *engine) recv(p *peer, want header, dst, src []byte, reduce bool) int {
	want.n = uint64(len(dst))
	i := len(e.recvs)
	prev := e.lastR[p.rank]
	if prev < 0 && e.lastW[p.rank] < 0 {
		e.locks = append(e.locks, p)
	}
	if prev < 0 {
		p.rmu.Lock()
	}
	e.recvs = append(e.recvs, recvReq{p: p, want: want, dst: dst, src: src, reduce: reduce, prev: prev, guard: -1})
	e.lastR[p.rank] = i
	p.waiting.Add(1)
	return i
}

// send adds a frame with header h and payload src to p; with dep >= 0 it
// forwards src as receive dep lands there.
func (e *engine) send(p *peer, h header, src []byte, dep int) int {
	h.n = uint64(len(src))
	i := len(e.sends)
	prev := e.lastW[p.rank]
	if prev < 0 && e.lastR[p.rank] < 0 {
		e.locks = append(e.locks, p)
	}
	if prev < 0 {
		p.wmu.Lock()
	}
	e.sends = append(e.sends, sendReq{p: p, src: src, dep: dep, prev: prev})
	h.put(&e.sends[i].hdr)
	e.lastW[p.rank] = i
	p.sending.Add(1)
	return i
}

// unlock releases the peers' locks taken by recv and send.
func (e *engine) unlock() {
	for _, p := range e.locks {
		if e.lastR[p.rank] >= 0 {
			p.rmu.Unlock()
		}
		if e.lastW[p.rank] >= 0 {
			p.releaseW()
		}
	}
	e.locks = e.locks[:0]
}

// run moves every frame added since reset.
func (e *engine) run() error {
	defer e.unlock()
	for i := range e.quiet {
		e.quiet[i] = false
	}
	idleSince := time.Time{}
	for {
		progress, pending := false, false
		for i := range e.recvs {
			r := &e.recvs[i]
			if r.done {
				continue
			}
			pending = true
			if r.prev >= 0 && !e.recvs[r.prev].done {
				continue
			}
			ok, err := e.stepRecv(r)
			if err != nil {
				return e.rootCause(err, r.p)
			}
			progress = progress || ok
		}
		for i := range e.sends {
			s := &e.sends[i]
			if s.done {
				continue
			}
			pending = true
			if s.prev >= 0 && !e.sends[s.prev].done {
				continue
			}
			ok, err := e.stepSend(s)
			if err != nil {
				return e.rootCause(err, s.p)
			}
			progress = progress || ok
		}
		if !pending {
			return nil
		}
		if progress {
			idleSince = time.Time{}
			continue
		}
		select {
		case <-e.c.dead:
			return e.c.deadErr
		default:
		}
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if idle := now.Sub(idleSince); idle < e.c.opt.spin {
			runtime.Gosched()
			if idle > yieldAfter {
				// Let another process have this CPU: on a busy node it may
				// be the peer this call waits for.
				syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
			}
			continue
		}
		if err := e.block(); err != nil {
			return err
		}
		idleSince = time.Time{}
	}
}

// maxWrite bounds one write system call. On loopback between two
// processes, 256KiB writes beat 512KiB ones from 2MiB messages up and tie
// below (OpenMPI's TCP transport writes 256KiB too); 128KiB is worse.
const maxWrite = 256 << 10

// yieldAfter is how long a spinning call yields only to goroutines
// before it also yields to other processes.
const yieldAfter = 10 * time.Microsecond

// stepRecv reads what has arrived for r, at most one chunk.
func (e *engine) stepRecv(r *recvReq) (bool, error) {
	p := r.p
	progress := false
	if !r.started {
		h, ok, err := p.tryHeader()
		if err != nil || !ok {
			return false, err
		}
		if err := e.accept(r, h); err != nil {
			return false, err
		}
		r.started = true
		progress = true
	}
	switch {
	case r.discard > 0:
		n, err := p.tryRead(p.scratch(int(min(r.discard, readBufSize))))
		if err != nil {
			return false, err
		}
		r.discard -= uint64(n)
		progress = progress || n > 0
	case r.reduce:
		// A chunk lands in scratch when reducing in place (dst holds this
		// rank's operand), else straight in dst; once whole, it is reduced.
		if r.got == len(r.dst) {
			break
		}
		end := min((r.got/e.chunk+1)*e.chunk, len(r.dst))
		dst, src := r.dst[r.got:end], r.src[r.got:end]
		land := dst
		inPlace := &dst[0] == &src[0]
		if inPlace {
			land = p.scratch(e.chunk)[:len(dst)]
		}
		n, err := p.tryRead(land[r.fill:])
		if err != nil {
			return false, err
		}
		r.fill += n
		if r.fill == len(land) && r.guard >= 0 && e.sends[r.guard].sent < end {
			return progress || n > 0, nil // dst[got:end] has yet to go out
		}
		if r.fill == len(land) {
			if inPlace {
				backend.Reduce(e.dt, e.op, dst, land)
			} else {
				backend.Reduce(e.dt, e.op, dst, src)
			}
			r.got, r.fill = end, 0
		}
		progress = progress || n > 0
	default:
		n, err := p.tryRead(r.dst[r.got:min(r.got+max(e.chunk, readBufSize), len(r.dst))])
		if err != nil {
			return false, err
		}
		r.got += n
		progress = progress || n > 0
	}
	if r.got == len(r.dst) && r.discard == 0 {
		r.done = true
		p.waiting.Add(-1)
	}
	return progress, nil
}

// accept checks the header of the frame r receives.
func (e *engine) accept(r *recvReq, h header) error {
	p := r.p
	w := r.want
	if w.kind == kindP2P && h.kind == kindP2P {
		p.consumeHeader()
		p.recvSeq++
		if h.seq != p.recvSeq {
			w.seq = p.recvSeq
			return p.mismatch(h, w)
		}
		if h.n != w.n {
			r.discard = h.n
			r.dst = r.dst[:0]
			r.err = recoverable{p.c.errorf("Recv of %d bytes from rank %d got a message of %d bytes (message %d from that rank): lengths of Send and Recv differ", w.n, p.rank, h.n, h.seq)}
		}
		return nil
	}
	if w.kind == kindP2P && h.kind == kindBye {
		// Left unread, so every later Recv from this peer says the same.
		p.closed = true
		r.dst = r.dst[:0]
		r.err = recoverable{p.c.errorf("Recv from rank %d: it closed the group: %w", p.rank, ErrPeerClosed)}
		return nil
	}
	if h.kind == w.kind && h.op == w.op && h.seq == w.seq && h.step == w.step && h.n == w.n {
		p.consumeHeader()
		return nil
	}
	if h.kind == kindAbort {
		p.consumeHeader()
	}
	return p.mismatch(h, w)
}

// stepSend writes what the socket takes of s's ready bytes.
func (e *engine) stepSend(s *sendReq) (bool, error) {
	avail := len(s.src)
	if s.dep >= 0 {
		avail = e.recvs[s.dep].got
		// Forward in pieces of at least a chunk, or the rest.
		if avail < len(s.src) && avail-s.sent < e.chunk {
			return false, nil
		}
	}
	var hdr []byte
	if s.hsent < headerLen {
		hdr = s.hdr[s.hsent:]
	}
	// At most maxWrite (and a chunk) per pass, so that reading and
	// reducing what the peers send interleave with a long send.
	avail = min(avail, s.sent+min(e.chunk, maxWrite))
	n, err := s.p.tryWrite(hdr, s.src[s.sent:avail])
	if err != nil || n == 0 {
		return false, err
	}
	h := min(n, len(hdr))
	s.hsent += h
	s.sent += n - h
	s.done = s.hsent == headerLen && s.sent == len(s.src)
	s.p.midFrame = !s.done
	if s.done {
		s.p.sending.Add(-1)
	}
	return true, nil
}

// block sleeps until a socket the engine waits for is ready, the backend
// fails, or a watched peer hangs up.
func (e *engine) block() error {
	c := e.c
	e.fds = append(e.fds[:0], unix.PollFd{Fd: int32(c.wakeR), Events: unix.POLLIN})
	e.owner = append(e.owner[:0], nil)
	for i := range e.fdOf {
		e.fdOf[i] = -1
	}
	add := func(p *peer, ev int16) {
		if k := e.fdOf[p.rank]; k >= 0 {
			e.fds[k].Events |= ev
			return
		}
		e.fdOf[p.rank] = len(e.fds)
		e.fds = append(e.fds, unix.PollFd{Fd: int32(p.fd), Events: ev})
		e.owner = append(e.owner, p)
	}
	for i := range e.recvs {
		r := &e.recvs[i]
		if !r.done && (r.prev < 0 || e.recvs[r.prev].done) {
			add(r.p, unix.POLLIN)
		}
	}
	for i := range e.sends {
		s := &e.sends[i]
		if s.done || (s.prev >= 0 && !e.sends[s.prev].done) {
			continue
		}
		if s.dep < 0 || e.recvs[s.dep].got-s.sent >= min(e.chunk, len(s.src)-s.sent) {
			add(s.p, unix.POLLOUT)
		}
	}
	if e.watch {
		for j := range c.slots {
			if p := c.slots[j].p.Load(); p != nil && e.fdOf[j] < 0 && !e.quiet[j] {
				add(p, unix.POLLRDHUP)
			}
		}
	}
	if _, err := unix.Poll(e.fds, -1); err != nil && err != syscall.EINTR {
		return c.errorf("poll: %w", err)
	}
	if e.fds[0].Revents != 0 {
		<-c.dead // closed before the pipe: orders the read of deadErr
		return c.deadErr
	}
	for k := 1; k < len(e.fds); k++ {
		f := &e.fds[k]
		if f.Events != unix.POLLRDHUP || f.Revents == 0 {
			continue
		}
		p := e.owner[k]
		e.quiet[p.rank] = true
		if err := e.inspect(p); err != nil {
			return err
		}
	}
	return nil
}

// inspect calls p.inspect unless this engine is in the middle of a frame
// from p or another goroutine reads from p.
func (e *engine) inspect(p *peer) error {
	if i := e.lastR[p.rank]; i >= 0 {
		for i := range e.recvs {
			if r := &e.recvs[i]; r.p == p && !r.done {
				if r.started {
					return nil
				}
				break
			}
		}
		return p.inspect()
	}
	if !p.rmu.TryLock() {
		return nil
	}
	defer p.rmu.Unlock()
	return p.inspect()
}

// rootCause refines the error of a connection to p that broke. A peer
// that gives up tells the others why with an abort frame where it can,
// then hangs up; so when p or another peer has an abort waiting, or
// another peer's connection ended without a goodbye (the kernel closes
// every connection of a dead process at once), that is the likelier
// first failure, and the error names it first.
func (e *engine) rootCause(err error, p *peer) error {
	if !errors.Is(err, ErrPeerLost) {
		return err
	}
	c := e.c
	if cause := e.inspect(p); cause != nil && errors.Is(cause, ErrPeerFailed) {
		return fmt.Errorf("%w (and then: %v)", cause, err)
	}
	var fds []unix.PollFd
	var owners []*peer
	for j := range c.slots {
		if q := c.slots[j].p.Load(); q != nil && q != p {
			fds = append(fds, unix.PollFd{Fd: int32(q.fd), Events: unix.POLLRDHUP})
			owners = append(owners, q)
		}
	}
	if len(fds) == 0 {
		return err
	}
	if _, perr := unix.Poll(fds, 20); perr != nil {
		return err
	}
	var lost error
	for i, f := range fds {
		if f.Revents == 0 {
			continue
		}
		cause := e.inspect(owners[i])
		switch {
		case errors.Is(cause, ErrPeerFailed):
			return fmt.Errorf("%w (and then: %v)", cause, err)
		case errors.Is(cause, ErrPeerLost) && lost == nil:
			lost = cause
		}
	}
	if lost != nil {
		return fmt.Errorf("%w (and then: %v)", lost, err)
	}
	return err
}
