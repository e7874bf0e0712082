package tcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/collectives/backend"
)

// A connection starts with a hello from the dialing (lower) rank:
//
//	8 bytes  helloMagic
//	8 bytes  the nonce the accepting rank published with its address
//	4 bytes  dialing rank
//	4 bytes  accepting rank
//	4 bytes  group size
//	2 bytes  length of the group name, then the name
//
// and the accepting rank's answer: one status byte (0 accepted), then for
// a refusal a 2-byte length and the reason.
var helloMagic = [8]byte{'r', 'g', 'c', 'o', 'l', 't', 'c', '1'}

const helloTimeout = 10 * time.Second

// control sets the socket buffers before bind or connect, so that the
// window scale is negotiated for them.
func (c *comm) control(network, address string, rc syscall.RawConn) error {
	if c.opt.sockBuf <= 0 {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, c.opt.sockBuf); e != nil {
			serr = e
		}
		if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, c.opt.sockBuf); e != nil {
			serr = e
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// dial connects to higher rank j and greets it. Concurrent callers for
// the same j share one connection.
func (c *comm) dial(ctx context.Context, j int) (*peer, error) {
	s := &c.slots[j]
	s.dial.Lock()
	defer s.dial.Unlock()
	if p := s.p.Load(); p != nil {
		return p, nil
	}
	d := net.Dialer{Control: c.control}
	conn, err := d.DialContext(ctx, "tcp", c.addrs[j])
	if err != nil {
		if ctx.Err() != nil {
			return nil, &backend.WaitError{Op: "tcp connect in group " + c.group, Rank: c.rank, Missing: []int{j}, Err: ctx.Err()}
		}
		return nil, c.errorf("connecting to rank %d at %s: %w", j, c.addrs[j], err)
	}
	tc := conn.(*net.TCPConn)
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
	err = c.sayHello(tc, j)
	if !stop() {
		err = &backend.WaitError{Op: "tcp connect in group " + c.group, Rank: c.rank, Missing: []int{j}, Err: ctx.Err()}
	}
	if err != nil {
		tc.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return c.addPeer(j, tc)
}

func (c *comm) sayHello(conn *net.TCPConn, j int) error {
	conn.SetDeadline(time.Now().Add(helloTimeout))
	msg := make([]byte, 0, 30+len(c.group))
	msg = append(msg, helloMagic[:]...)
	msg = append(msg, c.nonces[j][:]...)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(c.rank))
	msg = binary.LittleEndian.AppendUint32(msg, uint32(j))
	msg = binary.LittleEndian.AppendUint32(msg, uint32(c.size))
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(c.group)))
	msg = append(msg, c.group...)
	if _, err := conn.Write(msg); err != nil {
		return c.errorf("greeting rank %d at %s: %w", j, c.addrs[j], err)
	}
	var status [1]byte
	if _, err := io.ReadFull(conn, status[:]); err != nil {
		return c.errorf("greeting rank %d at %s: no answer: %w", j, c.addrs[j], err)
	}
	if status[0] == 0 {
		return nil
	}
	reason, _ := readShort(conn)
	return c.errorf("rank %d at %s refused the connection: %s", j, c.addrs[j], reason)
}

// acceptLoop takes connections from lower ranks until the listener
// closes.
func (c *comm) acceptLoop(ln net.Listener) {
	defer c.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed: every peer connected, or the backend failed
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.greeting[conn] = true
		c.wg.Add(1)
		c.mu.Unlock()
		go c.greet(conn.(*net.TCPConn))
	}
}

// greet reads a hello and accepts or refuses the connection.
func (c *comm) greet(conn *net.TCPConn) {
	defer c.wg.Done()
	keep := false
	defer func() {
		c.mu.Lock()
		delete(c.greeting, conn)
		c.mu.Unlock()
		if !keep {
			conn.Close()
		}
	}()
	conn.SetDeadline(time.Now().Add(helloTimeout))
	from, reason := c.readHello(conn)
	if reason != "" {
		c.mu.Lock()
		if len(c.rejected) < 8 {
			c.rejected = append(c.rejected, fmt.Sprintf("from %s: %s", conn.RemoteAddr(), reason))
		}
		c.mu.Unlock()
		msg := []byte{1}
		msg = appendShort(msg, reason)
		conn.Write(msg)
		return
	}
	if _, err := conn.Write([]byte{0}); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := c.addPeer(from, conn); err == nil {
		keep = true
	}
}

// readHello returns the dialing rank, or why its hello is refused.
func (c *comm) readHello(conn net.Conn) (int, string) {
	var fixed [30]byte
	if _, err := io.ReadFull(conn, fixed[:]); err != nil {
		return 0, fmt.Sprintf("reading hello: %v", err)
	}
	if [8]byte(fixed[:8]) != helloMagic {
		return 0, "not a raygo collectives tcp hello"
	}
	nonce := [8]byte(fixed[8:16])
	from := int(binary.LittleEndian.Uint32(fixed[16:]))
	to := int(binary.LittleEndian.Uint32(fixed[20:]))
	size := int(binary.LittleEndian.Uint32(fixed[24:]))
	glen := int(binary.LittleEndian.Uint16(fixed[28:]))
	group := make([]byte, glen)
	if _, err := io.ReadFull(conn, group); err != nil {
		return 0, fmt.Sprintf("reading hello: %v", err)
	}
	switch {
	case string(group) != c.group:
		return 0, fmt.Sprintf("hello names group %q, but this is rank %d of group %q", group, c.rank, c.group)
	case size != c.size:
		return 0, fmt.Sprintf("hello says group %q has %d ranks, this rank has %d", c.group, size, c.size)
	case to != c.rank:
		return 0, fmt.Sprintf("hello is for rank %d of group %q, this is rank %d", to, c.group, c.rank)
	case nonce != c.nonce:
		return 0, fmt.Sprintf("hello is for another incarnation of rank %d of group %q", c.rank, c.group)
	case from < 0 || from >= c.rank:
		return 0, fmt.Sprintf("hello comes from rank %d; only lower ranks dial rank %d of group %q", from, c.rank, c.group)
	case c.slots[from].p.Load() != nil:
		return 0, fmt.Sprintf("rank %d of group %q is already connected", from, c.group)
	}
	return from, ""
}

// addPeer takes over a greeted connection to rank j: the backend keeps
// its own duplicate of the socket (non-blocking, as the runtime made it)
// and drives it with system calls; the runtime's copy is closed.
func (c *comm) addPeer(j int, conn *net.TCPConn) (*peer, error) {
	conn.SetNoDelay(true)
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, c.errorf("connection to rank %d: %w", j, err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		derr = err
	}
	conn.Close()
	if derr != nil {
		return nil, c.errorf("connection to rank %d: %w", j, derr)
	}
	p := &peer{c: c, rank: j, fd: fd}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		unix.Close(fd)
		return nil, c.deadErr
	}
	if !c.slots[j].p.CompareAndSwap(nil, p) {
		c.mu.Unlock()
		unix.Close(fd)
		return nil, c.errorf("rank %d connected twice", j)
	}
	c.mu.Unlock()
	close(c.slots[j].ready)
	return p, nil
}

func appendShort(b []byte, s string) []byte {
	if len(s) > 1<<15 {
		s = s[:1<<15]
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func readShort(r io.Reader) (string, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, binary.LittleEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
