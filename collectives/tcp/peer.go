package tcp

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBufSize is a peer's read-ahead buffer: a small frame arrives whole
// with one read system call; larger payloads are read straight into
// their destination.
const readBufSize = 16 << 10

// peer is the connection to one other rank: a non-blocking socket that
// the backend owns (not the Go runtime's poller), so one goroutine can
// drive reads and writes on several sockets at once (see engine).
//
// One goroutine reads at a time (rmu) and one writes at a time (wmu):
// the operation's goroutine, or for Send and Recv the caller's.
type peer struct {
	c    *comm
	rank int
	fd   int // closed by comm.Close only, after every user is gone

	rmu     sync.Mutex
	rbuf    []byte // read-ahead: rbuf[rpos:rend] is unread
	rpos    int
	rend    int
	hdrBuf  [headerLen]byte
	hfill   int    // bytes of hdrBuf read so far
	tmp     []byte // scratch for reductions
	recvSeq uint32 // point-to-point messages received
	closed  bool   // rmu: the peer sent a bye

	wmu      sync.Mutex
	wiov     [2]syscall.Iovec
	wmsg     syscall.Msghdr
	midFrame bool   // wmu: a frame's header went out without all its payload
	sendSeq  uint32 // point-to-point messages sent
	hungUp   bool   // wmu: hangUpLocked ran

	// hangUpLater asks the holder of wmu to hang up as it lets go.
	hangUpLater atomic.Bool

	// Engines of Send and Recv, each used by one goroutine at a time.
	sendEng, recvEng *engine

	waiting atomic.Int32 // receives from this peer under way
	sending atomic.Int32 // sends to this peer under way
}

// tryRead reads what has arrived, up to len(b), without blocking: from
// the read-ahead buffer first, then from the socket (straight into b
// when b is large). It returns 0, nil when nothing has arrived.
func (p *peer) tryRead(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.rpos < p.rend {
		n := copy(b, p.rbuf[p.rpos:p.rend])
		p.rpos += n
		return n, nil
	}
	if len(b) >= readBufSize/2 {
		return p.sysRead(b)
	}
	if p.rbuf == nil {
		p.rbuf = make([]byte, readBufSize)
	}
	n, err := p.sysRead(p.rbuf)
	if n <= 0 {
		return 0, err
	}
	p.rpos, p.rend = 0, n
	k := copy(b, p.rbuf[:n])
	p.rpos = k
	return k, nil
}

func (p *peer) sysRead(b []byte) (int, error) {
	for {
		n, err := syscall.Read(p.fd, b)
		switch {
		case n > 0:
			return n, nil
		case err == syscall.EAGAIN:
			return 0, nil
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, p.lostError(err)
		default:
			return 0, p.lostError(errEOF)
		}
	}
}

var errEOF = errors.New("end of stream")

// tryHeader reads the next frame's header without blocking; it reports
// whether the header is complete.
func (p *peer) tryHeader() (header, bool, error) {
	for p.hfill < headerLen {
		n, err := p.tryRead(p.hdrBuf[p.hfill:])
		if err != nil || n == 0 {
			return header{}, false, err
		}
		p.hfill += n
	}
	return parseHeader(&p.hdrBuf), true, nil
}

// consumeHeader lets the next tryHeader read a new frame.
func (p *peer) consumeHeader() { p.hfill = 0 }

// tryWrite writes as much of hdr and b as the socket takes without
// blocking, in one system call.
func (p *peer) tryWrite(hdr, b []byte) (int, error) {
	iov := p.wiov[:0]
	if len(hdr) > 0 {
		iov = append(iov, syscall.Iovec{Base: &hdr[0], Len: uint64(len(hdr))})
	}
	if len(b) > 0 {
		iov = append(iov, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
	}
	if len(iov) == 0 {
		return 0, nil
	}
	p.wmsg.Iov = &iov[0]
	p.wmsg.Iovlen = uint64(len(iov))
	var n uintptr
	var e syscall.Errno
	for {
		n, _, e = syscall.Syscall(syscall.SYS_SENDMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.wmsg)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if e != syscall.EINTR {
			break
		}
	}
	p.wiov = [2]syscall.Iovec{} // keep no buffer alive
	p.wmsg.Iov = nil
	switch e {
	case 0:
		return int(n), nil
	case syscall.EAGAIN:
		return 0, nil
	}
	return 0, p.writeError(e)
}

// scratch returns the peer's reduction buffer of n bytes.
func (p *peer) scratch(n int) []byte {
	if cap(p.tmp) < n {
		p.tmp = make([]byte, n)
	}
	return p.tmp[:n]
}

// lostError describes a connection that broke: the peer's process died
// or the network failed (or this backend failed and shut it down, in
// which case the backend's own error is returned).
func (p *peer) lostError(err error) error {
	select {
	case <-p.c.dead:
		return p.c.deadErr
	default:
	}
	what := "the connection broke"
	switch {
	case err == errEOF:
		what = "it closed the connection without closing the group (its process died, or it gave up in the middle of a message)"
	case errors.Is(err, syscall.ECONNRESET):
		what = "the connection was reset (its process died, or it gave up in the middle of a message)"
	}
	return fmt.Errorf("collectives: tcp group %q rank %d: lost rank %d: %s: %w: %v", p.c.group, p.c.rank, p.rank, what, ErrPeerLost, err)
}

func (p *peer) writeError(err error) error {
	select {
	case <-p.c.dead:
		return p.c.deadErr
	default:
	}
	what := "the connection broke"
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		what = "the connection was reset (its process died, or it gave up in the middle of a message)"
	}
	return fmt.Errorf("collectives: tcp group %q rank %d: sending to rank %d: %s: %w: %v", p.c.group, p.c.rank, p.rank, what, ErrPeerLost, err)
}

// mismatch explains a header that is not the one expected.
func (p *peer) mismatch(h header, want header) error {
	op, seq := want.op, want.seq
	switch {
	case h.kind == kindBye:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d closed the group while this rank waited for its %s data (call %d): %w", p.c.group, p.c.rank, p.rank, op, seq, ErrPeerClosed)
	case h.kind == kindAbort:
		return p.abortError(h)
	case want.kind == kindColl && h.kind == kindP2P:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent a point-to-point message of %d bytes while this rank waited for its %s data (call %d): a Send is not matched by a Recv", p.c.group, p.c.rank, p.rank, h.n, op, seq)
	case want.kind == kindP2P && h.kind == kindColl:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent %s data (call %d) while this rank waited in Recv: collective calls and Send/Recv are mixed up", p.c.group, p.c.rank, p.rank, h.op, h.seq)
	case h.kind != want.kind:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent %v: protocol error", p.c.group, p.c.rank, p.rank, h.kind)
	case want.kind == kindP2P:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent message %d, this rank expected message %d: protocol error", p.c.group, p.c.rank, p.rank, h.seq, seq)
	case h.seq != seq || h.op != op:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent data of %s call %d while this rank waited for %s call %d: the ranks called collective operations in different orders", p.c.group, p.c.rank, p.rank, h.op, h.seq, op, seq)
	case h.step != want.step:
		return fmt.Errorf("collectives: tcp group %q rank %d: rank %d sent step %d of %s call %d while this rank waited for step %d: the ranks disagree about the algorithm (different options?)", p.c.group, p.c.rank, p.rank, h.step, op, seq, want.step)
	default:
		return fmt.Errorf("collectives: tcp group %q rank %d: %s call %d: rank %d sent %d bytes where this rank expected %d: buffer lengths differ across ranks", p.c.group, p.c.rank, op, seq, p.rank, h.n, want.n)
	}
}

// abortError reads the reason carried by an abort frame, as far as it
// has arrived.
func (p *peer) abortError(h header) error {
	b := make([]byte, min(int(h.n), maxAbortLen))
	got := 0
	for spins := 0; got < len(b) && spins < 1000; spins++ {
		n, err := p.tryRead(b[got:])
		if err != nil {
			break
		}
		got += n
	}
	return fmt.Errorf("collectives: tcp group %q rank %d: rank %d gave up: %s: %w", p.c.group, p.c.rank, p.rank, b[:got], ErrPeerFailed)
}

// hangUp ends the connection after the backend failed or closed: it
// sends a bye or an abort frame (naming why) if no frame is half written
// and the socket takes it at once, then shuts the connection down, which
// ends any blocked call on either side. The descriptor stays open until
// Close. When a call holds the write side, the call hangs up as it lets
// go of it (releaseW), so that the frame can still go out.
func (p *peer) hangUp() {
	p.hangUpLater.Store(true)
	if p.wmu.TryLock() {
		p.hangUpLocked()
		p.wmu.Unlock()
	} // else the holder sees hangUpLater in releaseW
}

// releaseW lets go of the write side, hanging up if asked to meanwhile.
// (The flag is read after the unlock: a hangUp whose TryLock failed set
// it before, so one of the two goroutines hangs up.)
func (p *peer) releaseW() {
	p.wmu.Unlock()
	if p.hangUpLater.Load() && p.wmu.TryLock() {
		p.hangUpLocked()
		p.wmu.Unlock()
	}
}

// hangUpLocked is hangUp with wmu held.
func (p *peer) hangUpLocked() {
	p.hangUpLater.Store(false)
	if p.hungUp {
		return
	}
	p.hungUp = true
	<-p.c.dead
	if !p.midFrame {
		h := header{kind: kindAbort}
		var payload []byte
		if errors.Is(p.c.deadErr, ErrClosed) {
			h.kind = kindBye
		} else {
			payload = []byte(p.c.deadErr.Error())
			if len(payload) > maxAbortLen {
				payload = payload[:maxAbortLen]
			}
		}
		h.n = uint64(len(payload))
		var hb [headerLen]byte
		h.put(&hb)
		frame := append(hb[:], payload...)
		// All or nothing: a partial frame would be worse than none.
		if n, _, e := syscall.Syscall6(syscall.SYS_SENDTO, uintptr(p.fd), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0); e == 0 && int(n) < len(frame) {
			p.midFrame = true
		}
	}
	syscall.Shutdown(p.fd, syscall.SHUT_RDWR)
}

// inspect looks at what a peer that this rank is not reading from right
// now (the caller owns its read side) has sent next, after poll said it
// hung up or another connection broke: an abort (returned as its error),
// or the end of the stream (an ErrPeerLost error). It returns nil when it
// cannot tell or the peer closed the group properly (a bye, which it
// consumes, marking the peer closed).
func (p *peer) inspect() error {
	if p.closed || p.hfill > 0 {
		return nil
	}
	var b [headerLen]byte
	if p.rend-p.rpos >= headerLen {
		copy(b[:], p.rbuf[p.rpos:])
	} else if p.rpos < p.rend {
		return nil
	} else {
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(p.fd), uintptr(unsafe.Pointer(&b[0])), headerLen, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == syscall.EAGAIN:
			return nil
		case e != 0:
			return p.lostError(e)
		case n == 0:
			return p.lostError(errEOF)
		case n < headerLen:
			return nil
		}
	}
	h := parseHeader(&b)
	switch h.kind {
	case kindBye:
		p.closed = true
		return nil
	case kindAbort:
		var hb [headerLen]byte
		p.tryRead(hb[:]) // the header, so that abortError reads the reason
		return p.abortError(h)
	}
	return nil
}
