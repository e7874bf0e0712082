package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultMaxFrame bounds every frame a peer may send. Large objects never
// travel in one frame: they are pulled in chunks of at most ChunkSize.
const (
	DefaultMaxFrame = 256 << 20
	ChunkSize       = 4 << 20
	// MaxQueued bounds what may wait for a peer that does not read: past
	// it the connection is dropped rather than the process's memory grown.
	MaxQueued = 1 << 30
)

// ErrClosed is returned by Send after the connection closed.
var ErrClosed = errors.New("connection closed")

// Conn carries frames over a stream: a 4-byte little-endian length, then
// the body (type byte and fields). Sends from many goroutines are queued and
// written by one goroutine, so a burst of small messages leaves in few
// system calls while a lone message leaves at once.
type Conn struct {
	nc        net.Conn
	r         *bufio.Reader
	dec       Dec // Recv's, reused
	maxFrame  int
	maxQueued int

	mu      sync.Mutex // guards out, closed, err and wakes writer via cond
	cond    *sync.Cond
	out     []byte // frames waiting for the writer
	spare   []byte
	closed  bool
	err     error
	written chan struct{} // closed when the writer exits
}

// NewConn wraps an authenticated connection and starts its writer.
func NewConn(nc net.Conn, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), maxFrame: maxFrame, maxQueued: MaxQueued, written: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.writeLoop()
	return c
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Send queues m. It fails only when the connection is closed or m is larger
// than the frame limit.
func (c *Conn) Send(m Msg) error {
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	start := len(c.out)
	c.out = append(c.out, 0, 0, 0, 0)
	e := Enc{b: c.out}
	Append(&e, m)
	c.out = e.b
	n := len(c.out) - start - 4
	if n > c.maxFrame {
		c.out = c.out[:start]
		c.mu.Unlock()
		return fmt.Errorf("%s message of %d bytes exceeds the %d-byte frame limit", m.Type(), n, c.maxFrame)
	}
	binary.LittleEndian.PutUint32(c.out[start:], uint32(n))
	if len(c.out) > c.maxQueued {
		c.closed = true
		c.out = nil
		c.err = fmt.Errorf("%w: %s stopped reading (%d bytes queued for it)", ErrClosed, c.nc.RemoteAddr(), start+n+4)
		err := c.err
		c.cond.Signal()
		c.mu.Unlock()
		c.nc.Close()
		return err
	}
	if start == 0 {
		c.cond.Signal()
	}
	c.mu.Unlock()
	return nil
}

func (c *Conn) writeLoop() {
	defer close(c.written)
	c.mu.Lock()
	for {
		for len(c.out) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.out) == 0 && c.closed {
			c.mu.Unlock()
			return
		}
		buf := c.out
		c.out = c.spare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		if cap(buf) <= 16<<20 { // keep batches' buffer: regrowing it cost a third of a busy sender's time
			c.spare = buf[:0]
		} else {
			c.spare = nil
		}
		if err != nil {
			if c.err == nil {
				c.err = fmt.Errorf("%w: write to %s: %w", ErrClosed, c.nc.RemoteAddr(), err)
			}
			c.closed = true
			c.out = nil
			c.mu.Unlock()
			c.nc.Close()
			return
		}
	}
}

// Recv reads and decodes the next message. A frame over the limit or a
// malformed frame is an error wrapping ErrMalformed; the connection should
// then be dropped. One goroutine at a time may call Recv.
func (c *Conn) Recv() (Msg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || int64(n) > int64(c.maxFrame) {
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d) from %s", ErrMalformed, n, c.maxFrame, c.nc.RemoteAddr())
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.r, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: truncated frame from %s: %v", ErrMalformed, c.nc.RemoteAddr(), err)
	}
	m, err := decode(frame, &c.dec)
	c.dec = Dec{} // let go of the frame
	return m, err
}

// FrameReady says whether a whole frame has already been read from the
// stream, so that Recv would return without waiting for the peer. A reader
// holding a lock uses it to take a burst of messages under one acquisition.
func (c *Conn) FrameReady() bool {
	b := c.r.Buffered()
	if b < 4 {
		return false
	}
	hdr, err := c.r.Peek(4)
	if err != nil {
		return false
	}
	return int64(binary.LittleEndian.Uint32(hdr))+4 <= int64(b)
}

// CloseTimeout bounds how long Close waits for queued frames to be written
// to a peer that has stopped reading.
const CloseTimeout = 5 * time.Second

// Close flushes queued frames (waiting at most CloseTimeout for a slow
// peer) and closes the connection. Safe to call more than once.
func (c *Conn) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.cond.Signal()
	c.mu.Unlock()
	if !already {
		c.nc.SetWriteDeadline(time.Now().Add(CloseTimeout))
		<-c.written
	}
	return c.nc.Close()
}

// Abort closes at once, dropping queued frames.
func (c *Conn) Abort() {
	c.mu.Lock()
	c.closed = true
	c.out = nil
	c.cond.Signal()
	c.mu.Unlock()
	c.nc.Close()
}
