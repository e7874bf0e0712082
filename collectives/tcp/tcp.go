package tcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/collectives/backend"
)

// Name is the name the backend is registered under.
const Name = "tcp"

func init() { backend.Register(Name, New) }

// ErrPeerLost is wrapped by the error of an operation whose connection
// to a peer broke without the peer closing the group: its process died,
// or the network failed.
var ErrPeerLost = errors.New("connection lost")

// ErrPeerClosed is wrapped by the error of an operation that needed a
// peer which had already closed the group.
var ErrPeerClosed = errors.New("peer closed the group")

// ErrPeerFailed is wrapped by the error of an operation that a peer
// aborted because it failed itself (the error says why).
var ErrPeerFailed = errors.New("peer failed")

// ErrClosed is returned by calls on a closed backend.
var ErrClosed = errors.New("collectives: tcp backend closed")

// comm is one rank's end of a group: a connection to every other rank
// (or to those it has used so far, when connecting lazily).
//
// Goroutines: the caller's goroutine runs each operation, driving its
// sockets itself (see engine); Send and Recv may come from one goroutine
// per peer and direction. A lazy backend also has an accept loop, and a
// goroutine per connection being greeted; they are counted in wg.
//
// Locks: mu guards the fields it names; a peer's rmu and wmu give one
// goroutine its read or write side. mu is never held while taking a
// peer's lock.
type comm struct {
	group      string
	rank, size int
	opt        options
	nonce      [8]byte
	addrs      []string // each rank's listening address
	nonces     [][8]byte
	slots      []slot

	// The caller's goroutine only.
	seq  uint32 // collective calls made
	eng  *engine
	tmp  []byte // scratch
	off  []int  // block offsets
	pl   []*peer
	kids []int
	stop func() bool

	// wakeR becomes readable (wakeW is closed) when the backend fails,
	// which wakes every engine sleeping in poll.
	wakeR, wakeW int

	dead     chan struct{} // closed by fail
	deadErr  error         // why, set before dead closes
	failOnce sync.Once
	wg       sync.WaitGroup

	mu       sync.Mutex
	ln       net.Listener      // mu; nil once closed
	greeting map[net.Conn]bool // mu: accepted connections still being greeted
	rejected []string          // mu: why stray connections were refused
	closed   bool              // mu: fail ran; no goroutine may be added to wg
	active   int               // mu: calls under way
	idle     chan struct{}     // mu: closed when closed and active reaches 0

	closeOnce sync.Once
}

// slot holds the connection to one rank.
type slot struct {
	p     atomic.Pointer[peer]
	ready chan struct{} // closed once p is set
	dial  sync.Mutex    // held while this rank dials the peer (lazy)
}

// New builds one rank's end of a tcp group: it listens on its member's
// host, publishes the address through cfg.Rendezvous and connects to
// every other rank (the lower rank of each pair dials). With the option
// tcp.connect=lazy it connects to a peer only when an operation first
// needs it.
func New(ctx context.Context, cfg backend.Config) (backend.Backend, error) {
	c, err := newComm(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func newComm(ctx context.Context, cfg backend.Config) (*comm, error) {
	opt, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	if cfg.Size < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return nil, fmt.Errorf("collectives: tcp group %q: rank %d of %d is out of range", cfg.Group, cfg.Rank, cfg.Size)
	}
	if cfg.Size > 1 {
		if len(cfg.Members) != cfg.Size {
			return nil, fmt.Errorf("collectives: tcp group %q: %d members listed for %d ranks", cfg.Group, len(cfg.Members), cfg.Size)
		}
		if cfg.Rendezvous == nil {
			return nil, fmt.Errorf("collectives: tcp group %q: no rendezvous to exchange addresses through", cfg.Group)
		}
		if cfg.Members[cfg.Rank].Host == "" {
			return nil, fmt.Errorf("collectives: tcp group %q: member %d has no host to listen on", cfg.Group, cfg.Rank)
		}
	}
	c := &comm{
		group: cfg.Group,
		rank:  cfg.Rank,
		size:  cfg.Size,
		opt:   opt,
		slots: make([]slot, cfg.Size),
		dead:  make(chan struct{}),
		idle:  make(chan struct{}),
	}
	for i := range c.slots {
		c.slots[i].ready = make(chan struct{})
	}
	var pfd [2]int
	if err := unix.Pipe2(pfd[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("collectives: tcp group %q rank %d: %w", cfg.Group, cfg.Rank, err)
	}
	c.wakeR, c.wakeW = pfd[0], pfd[1]
	c.eng = newEngine(c)
	if cfg.Size == 1 {
		return c, nil
	}
	if err := c.connect(ctx, cfg); err != nil {
		c.fail(err)
		c.Close()
		return nil, err
	}
	return c, nil
}

// connect listens, exchanges addresses and, unless lazy, connects to
// every peer.
func (c *comm) connect(ctx context.Context, cfg backend.Config) error {
	if _, err := rand.Read(c.nonce[:]); err != nil {
		return err
	}
	host := cfg.Members[cfg.Rank].Host
	lc := net.ListenConfig{Control: c.control}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return c.errorf("listen on %s: %w", host, err)
	}
	c.mu.Lock()
	c.ln = ln
	c.greeting = map[net.Conn]bool{}
	c.mu.Unlock()
	port := ln.Addr().(*net.TCPAddr).Port
	mine := net.JoinHostPort(host, fmt.Sprint(port)) + " " + hex.EncodeToString(c.nonce[:])
	all, err := cfg.Rendezvous.Exchange(ctx, "tcp.addr", []byte(mine))
	if err != nil {
		return c.errorf("exchanging addresses: %w", err)
	}
	if len(all) != c.size {
		return c.errorf("exchanging addresses: rendezvous returned %d values for %d ranks", len(all), c.size)
	}
	c.addrs = make([]string, c.size)
	c.nonces = make([][8]byte, c.size)
	for i, v := range all {
		addr, nonce, ok := strings.Cut(string(v), " ")
		b, herr := hex.DecodeString(nonce)
		if !ok || herr != nil || len(b) != 8 {
			return c.errorf("rank %d published a malformed address %q", i, v)
		}
		c.addrs[i] = addr
		copy(c.nonces[i][:], b)
	}
	c.wg.Add(1)
	go c.acceptLoop(ln)
	if c.opt.lazy {
		return nil
	}
	if err := c.connectAll(ctx); err != nil {
		return err
	}
	// Every peer is connected: stop listening.
	c.mu.Lock()
	c.ln = nil
	c.mu.Unlock()
	ln.Close()
	return nil
}

// connectAll dials every higher rank and waits for every lower one.
func (c *comm) connectAll(ctx context.Context) error {
	errs := make(chan error, c.size)
	for j := c.rank + 1; j < c.size; j++ {
		go func() {
			_, err := c.dial(ctx, j)
			errs <- err
		}()
	}
	for j := c.rank + 1; j < c.size; j++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	for j := 0; j < c.rank; j++ {
		select {
		case <-c.slots[j].ready:
		case <-ctx.Done():
			return c.connectWaitError(ctx.Err())
		case <-c.dead:
			return c.deadErr
		}
	}
	return nil
}

func (c *comm) connectWaitError(err error) error {
	var missing []int
	for j := range c.slots {
		if j != c.rank && c.slots[j].p.Load() == nil {
			missing = append(missing, j)
		}
	}
	c.mu.Lock()
	rej := slices.Clone(c.rejected)
	c.mu.Unlock()
	if len(rej) > 0 {
		err = fmt.Errorf("%w (refused connections: %s)", err, strings.Join(rej, "; "))
	}
	return &backend.WaitError{Op: "tcp connect in group " + c.group, Rank: c.rank, Missing: missing, Err: err}
}

// peer returns the connection to rank j, connecting first if the backend
// is lazy and none exists yet.
func (c *comm) peer(ctx context.Context, j int) (*peer, error) {
	s := &c.slots[j]
	if p := s.p.Load(); p != nil {
		return p, nil
	}
	if c.rank < j {
		return c.dial(ctx, j)
	}
	select {
	case <-s.ready:
		return s.p.Load(), nil
	case <-c.dead:
		return nil, c.deadErr
	case <-ctx.Done():
		return nil, &backend.WaitError{Op: "tcp connect in group " + c.group, Rank: c.rank, Missing: []int{j}, Err: ctx.Err()}
	}
}

// fail makes the backend unusable: it records err as the reason, wakes
// every engine, tells the peers (an abort frame where no write is under
// way) and shuts every connection down, which ends the calls on both
// sides.
func (c *comm) fail(err error) {
	c.failOnce.Do(func() {
		c.deadErr = err
		c.mu.Lock()
		c.closed = true
		ln := c.ln
		c.ln = nil
		for conn := range c.greeting {
			conn.Close()
		}
		c.mu.Unlock()
		close(c.dead)
		unix.Close(c.wakeW)
		if ln != nil {
			ln.Close()
		}
		for j := range c.slots {
			if p := c.slots[j].p.Load(); p != nil {
				p.hangUp()
			}
		}
	})
}

// enter counts a call under way, so that Close waits for it before
// closing its sockets.
func (c *comm) enter() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.deadErr
	}
	c.active++
	return nil
}

func (c *comm) leave() {
	c.mu.Lock()
	c.active--
	if c.closed && c.active == 0 {
		select {
		case <-c.idle:
		default:
			close(c.idle)
		}
	}
	c.mu.Unlock()
}

// begin starts a collective call: it checks that the backend is usable,
// numbers the call, and arranges for ctx's end to abort it with a
// WaitError naming the ranks it waits for. end finishes it.
func (c *comm) begin(ctx context.Context, op opcode) error {
	if err := c.enter(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		c.leave()
		return fmt.Errorf("collectives: tcp %s on rank %d of group %q: %w", op, c.rank, c.group, err)
	}
	c.seq++
	c.stop = c.watch(ctx, op)
	return nil
}

// end finishes a collective call; after a failure it makes the backend
// unusable and returns the first failure's error.
func (c *comm) end(err error) error {
	c.stop()
	c.stop = nil
	c.leave()
	if err == nil {
		return nil
	}
	c.fail(err)
	return c.deadErr
}

// watch fails the backend with a WaitError when ctx ends before the
// returned stop is called.
func (c *comm) watch(ctx context.Context, op opcode) func() bool {
	if ctx.Done() == nil {
		return noStop
	}
	return context.AfterFunc(ctx, func() {
		c.fail(&backend.WaitError{Op: op.String(), Rank: c.rank, Missing: c.waitingFor(), Err: ctx.Err()})
	})
}

func noStop() bool { return true }

// waitingFor lists the ranks this rank waits to hear from, or failing
// that, those it is blocked sending to.
func (c *comm) waitingFor() []int {
	var recv, send []int
	for j := range c.slots {
		p := c.slots[j].p.Load()
		if p == nil {
			continue
		}
		if p.waiting.Load() > 0 {
			recv = append(recv, j)
		}
		if p.sending.Load() > 0 {
			send = append(send, j)
		}
	}
	if len(recv) > 0 {
		return recv
	}
	return send
}

// Close hangs up on every peer (telling them this rank closed the
// group), waits for the calls under way to return and releases the
// sockets.
func (c *comm) Close() error {
	c.closeOnce.Do(func() {
		c.fail(fmt.Errorf("%w (rank %d of group %q)", ErrClosed, c.rank, c.group))
		c.wg.Wait()
		c.mu.Lock()
		if c.active == 0 {
			select {
			case <-c.idle:
			default:
				close(c.idle)
			}
		}
		c.mu.Unlock()
		<-c.idle
		for j := range c.slots {
			if p := c.slots[j].p.Load(); p != nil {
				unix.Close(p.fd)
			}
		}
		unix.Close(c.wakeR)
	})
	return nil
}

// errorf formats an error about this rank.
func (c *comm) errorf(format string, args ...any) error {
	return fmt.Errorf("collectives: tcp group %q rank %d: "+format, append([]any{c.group, c.rank}, args...)...)
}
