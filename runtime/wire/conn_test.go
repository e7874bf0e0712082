package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var testSecret = []byte("the cluster secret")

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ac <- accepted{c, err}
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ac
	if a.err != nil {
		client.Close()
		t.Fatal(a.err)
	}
	t.Cleanup(func() { client.Close(); a.c.Close() })
	return client, a.c
}

func pipePair(t testing.TB) (client, server net.Conn) {
	client, server = net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var pairs = []struct {
	name string
	make func(testing.TB) (net.Conn, net.Conn)
}{
	{"tcp", tcpPair},
	{"pipe", pipePair},
}

// setHandshakeTimeout changes HandshakeTimeout for one test. Tests that use
// it do not run in parallel, and every test waits for the handshakes it
// starts, so no handshake reads the variable while it changes.
func setHandshakeTimeout(t *testing.T, d time.Duration) {
	old := HandshakeTimeout
	HandshakeTimeout = d
	t.Cleanup(func() { HandshakeTimeout = old })
}

type serverResult struct {
	role Role
	err  error
}

// serve runs ServerHandshake on nc and closes nc when it fails, as a real
// server does.
func serve(nc net.Conn, secret []byte) <-chan serverResult {
	ch := make(chan serverResult, 1)
	go func() {
		role, err := ServerHandshake(nc, secret)
		if err != nil {
			nc.Close()
		}
		ch <- serverResult{role, err}
	}()
	return ch
}

func TestHandshakeOK(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			client, server := p.make(t)
			sc := serve(server, testSecret)
			if err := ClientHandshake(client, testSecret, RoleWorker); err != nil {
				t.Fatalf("client: %v", err)
			}
			r := <-sc
			if r.err != nil {
				t.Fatalf("server: %v", r.err)
			}
			if r.role != RoleWorker {
				t.Fatalf("server saw role %v, want worker", r.role)
			}

			// Frames flow both ways afterwards.
			cc, ss := NewConn(client, 0), NewConn(server, 0)
			defer cc.Close()
			defer ss.Close()
			sendRecv(t, cc, ss, &Shutdown{Reason: "client to server"})
			sendRecv(t, ss, cc, &Shutdown{Reason: "server to client"})
		})
	}
}

// sendRecv sends m on from and checks that it arrives intact at to.
func sendRecv(t *testing.T, from, to *Conn, m Msg) {
	t.Helper()
	if err := from.Send(m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got, err := to.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %#v, want %#v", got, m)
	}
}

// TestHandshakeClearsDeadline checks that the handshake's deadline does not
// outlive it: a connection idle for longer than HandshakeTimeout still works.
func TestHandshakeClearsDeadline(t *testing.T) {
	setHandshakeTimeout(t, 100*time.Millisecond)
	client, server := tcpPair(t)
	sc := serve(server, testSecret)
	if err := ClientHandshake(client, testSecret, RoleDriver); err != nil {
		t.Fatal(err)
	}
	if r := <-sc; r.err != nil {
		t.Fatal(r.err)
	}
	time.Sleep(300 * time.Millisecond)
	cc, ss := NewConn(client, 0), NewConn(server, 0)
	defer cc.Close()
	defer ss.Close()
	sendRecv(t, cc, ss, &Cancel{Task: TaskID{1, 2, 3}})
}

func TestHandshakeWrongSecret(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			client, server := p.make(t)
			sc := serve(server, testSecret)
			err := ClientHandshake(client, []byte("another secret"), RoleDriver)
			if !errors.Is(err, ErrAuth) {
				t.Errorf("client: got %v, want ErrAuth", err)
			}
			if r := <-sc; !errors.Is(r.err, ErrAuth) {
				t.Errorf("server: got %v, want ErrAuth", r.err)
			} else if !strings.Contains(r.err.Error(), "wrong cluster secret") {
				t.Errorf("server error %q does not say why", r.err)
			}
		})
	}
}

const helloSize = len(magic) + 2 + nonceSize
const replySize = len(magic) + 2 + 1 + nonceSize + 32

func greeting(version uint16, nonce []byte) []byte {
	b := append([]byte{}, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, version)
	return append(b, nonce...)
}

func nonce() []byte {
	n := make([]byte, nonceSize)
	rand.Read(n) // never fails since Go 1.24
	return n
}

// clientReply is what a client holding secret answers to the server nonce sn.
func clientReply(secret []byte, version uint16, role Role, sn, cn []byte) []byte {
	b := append([]byte{}, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = append(b, byte(role))
	b = append(b, cn...)
	return append(b, mac(secret, "raygo client", role, sn, cn)...)
}

// TestHandshakeServerCannotImpersonate plays a server that does not know the
// secret but says "ok" anyway: the client must refuse it.
func TestHandshakeServerCannotImpersonate(t *testing.T) {
	client, server := tcpPair(t)
	go func() {
		server.Write(greeting(Version, nonce()))
		io.ReadFull(server, make([]byte, replySize))
		server.Write(append([]byte{hsOK}, make([]byte, 32)...))
	}()
	err := ClientHandshake(client, testSecret, RoleDriver)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "could not prove") {
		t.Fatalf("got %v, want ErrAuth saying the node could not prove itself", err)
	}
}

// TestHandshakeReplay records a good client reply and replays it to a new
// server: the new server nonce makes the old proof worthless.
func TestHandshakeReplay(t *testing.T) {
	client, server := tcpPair(t)
	var recorded []byte
	sc := serve(server, testSecret)
	// A recording proxy would see exactly these bytes.
	hello := make([]byte, helloSize)
	if _, err := io.ReadFull(client, hello); err != nil {
		t.Fatal(err)
	}
	recorded = clientReply(testSecret, Version, RoleAdmin, hello[len(magic)+2:], nonce())
	client.Write(recorded)
	if r := <-sc; r.err != nil || r.role != RoleAdmin {
		t.Fatalf("first handshake: %v %v", r.role, r.err)
	}

	client2, server2 := tcpPair(t)
	sc = serve(server2, testSecret)
	if _, err := io.ReadFull(client2, hello); err != nil {
		t.Fatal(err)
	}
	client2.Write(recorded)
	if r := <-sc; !errors.Is(r.err, ErrAuth) {
		t.Fatalf("replayed handshake: got %v, want ErrAuth", r.err)
	}
}

// TestHandshakeClientOtherVersion plays a client of the next version that
// holds the secret: the server refuses it with a message naming both
// versions, and the client can read that message.
func TestHandshakeClientOtherVersion(t *testing.T) {
	client, server := tcpPair(t)
	sc := serve(server, testSecret)
	hello := make([]byte, helloSize)
	if _, err := io.ReadFull(client, hello); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hello[:len(magic)], []byte("RAYGO\x00")) || binary.LittleEndian.Uint16(hello[len(magic):]) != Version {
		t.Fatalf("bad greeting %q", hello)
	}
	other := Version + 1
	client.Write(clientReply(testSecret, other, RoleDriver, hello[len(magic)+2:], nonce()))
	resp, err := io.ReadAll(client) // the server closes after refusing
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("peer speaks v%d, this node speaks v%d", other, Version)
	if len(resp) == 0 || resp[0] != hsVersion || string(resp[1:]) != want {
		t.Errorf("client read %q, want status %d and %q", resp, hsVersion, want)
	}
	r := <-sc
	if !errors.Is(r.err, ErrVersion) || !strings.Contains(r.err.Error(), want) {
		t.Errorf("server: got %v, want ErrVersion with %q", r.err, want)
	}
}

// TestHandshakeServerRefusesVersion plays a server that refuses the client's
// version: ClientHandshake returns ErrVersion carrying the server's words.
func TestHandshakeServerRefusesVersion(t *testing.T) {
	client, server := tcpPair(t)
	const why = "peer speaks v1, this node speaks v7"
	go func() {
		server.Write(greeting(Version, nonce()))
		io.ReadFull(server, make([]byte, replySize))
		server.Write(append([]byte{hsVersion}, why...))
		server.Close()
	}()
	err := ClientHandshake(client, testSecret, RoleDriver)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), why) {
		t.Fatalf("got %v, want ErrVersion with %q", err, why)
	}
}

// TestHandshakeServerOtherVersion: the client refuses a greeting of another
// version before sending anything.
func TestHandshakeServerOtherVersion(t *testing.T) {
	client, server := pipePair(t)
	go server.Write(greeting(Version+1, nonce()))
	err := ClientHandshake(client, testSecret, RoleDriver)
	want := fmt.Sprintf("peer speaks v%d, this process speaks v%d", Version+1, Version)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want ErrVersion with %q", err, want)
	}
}

func TestHandshakeSilentPeer(t *testing.T) {
	setHandshakeTimeout(t, 200*time.Millisecond)
	for _, p := range pairs {
		t.Run("client/"+p.name, func(t *testing.T) {
			client, server := p.make(t)
			if p.name == "pipe" {
				// A pipe has no buffer: take the greeting, then say nothing.
				go io.ReadFull(client, make([]byte, helloSize))
			}
			start := time.Now()
			r := <-serve(server, testSecret)
			if !errors.Is(r.err, ErrAuth) {
				t.Fatalf("server: got %v, want ErrAuth", r.err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("silent client dropped after %v", d)
			}
		})
		t.Run("server/"+p.name, func(t *testing.T) {
			client, _ := p.make(t)
			start := time.Now()
			err := ClientHandshake(client, testSecret, RoleDriver)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client: got %v, want a deadline error", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("silent server dropped after %v", d)
			}
		})
	}
}

func TestHandshakeGarbage(t *testing.T) {
	setHandshakeTimeout(t, 2*time.Second)
	httpReq := []byte("GET / HTTP/1.1\r\nHost: 10.0.0.1:7000\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")
	// Right magic and version, then zeros where the role, nonce and MAC go.
	zeroMAC := make([]byte, replySize)
	copy(zeroMAC, greeting(Version, nil))
	cases := []struct {
		name, want string
		send       []byte
		close      bool
	}{
		{"http request", "not a raygo peer", httpReq, false},
		{"long garbage", "not a raygo peer", bytes.Repeat([]byte{0xA5}, 4096), false},
		{"short garbage then close", "no valid reply", []byte("hello?"), true},
		{"right magic, then close", "no valid reply", greeting(Version, nil), true},
		{"zero MAC", "wrong cluster secret", zeroMAC, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, server := tcpPair(t)
			sc := serve(server, testSecret)
			client.Write(c.send)
			if c.close {
				client.(*net.TCPConn).CloseWrite()
			}
			r := <-sc
			if !errors.Is(r.err, ErrAuth) || !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("server: got %v, want ErrAuth with %q", r.err, c.want)
			}
		})
	}
	t.Run("client gets garbage", func(t *testing.T) {
		client, server := tcpPair(t)
		server.Write(httpReq)
		err := ClientHandshake(client, testSecret, RoleDriver)
		if err == nil || !strings.Contains(err.Error(), "not a raygo node") {
			t.Fatalf("got %v, want a bad-greeting error", err)
		}
	})
}

// writeRaw writes, from another goroutine, a frame header announcing n
// bytes and then body.
func writeRaw(t *testing.T, nc net.Conn, n uint32, body []byte) {
	t.Helper()
	go nc.Write(append(binary.LittleEndian.AppendUint32(nil, n), body...))
}

func TestRecvOversizedFrame(t *testing.T) {
	const limit = 1 << 10
	for _, n := range []uint32{limit + 1, 1 << 31, 1<<32 - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			client, server := pipePair(t)
			ss := NewConn(server, limit)
			defer ss.Abort()
			writeRaw(t, client, n, nil)
			_, err := ss.Recv()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), fmt.Sprintf("frame of %d bytes (limit %d)", n, limit)) {
				t.Fatalf("got %v, want ErrMalformed naming size and limit", err)
			}
		})
	}
	t.Run("default limit", func(t *testing.T) {
		client, server := pipePair(t)
		ss := NewConn(server, 0)
		defer ss.Abort()
		writeRaw(t, client, DefaultMaxFrame+1, nil)
		if _, err := ss.Recv(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
}

func TestRecvBadFrames(t *testing.T) {
	t.Run("zero length", func(t *testing.T) {
		client, server := pipePair(t)
		ss := NewConn(server, 0)
		defer ss.Abort()
		writeRaw(t, client, 0, nil)
		if _, err := ss.Recv(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		client, server := tcpPair(t)
		ss := NewConn(server, 0)
		defer ss.Abort()
		client.Write(binary.LittleEndian.AppendUint32(nil, 100))
		client.Write([]byte{byte(TShutdown), 3, 'a'})
		client.Close()
		_, err := ss.Recv()
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "unexpected EOF") {
			t.Fatalf("got %v, want ErrMalformed for a truncated frame", err)
		}
	})
	t.Run("clean EOF", func(t *testing.T) {
		client, server := tcpPair(t)
		ss := NewConn(server, 0)
		defer ss.Abort()
		client.Close()
		if _, err := ss.Recv(); err != io.EOF {
			t.Fatalf("got %v, want io.EOF", err)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		client, server := pipePair(t)
		ss := NewConn(server, 0)
		defer ss.Abort()
		writeRaw(t, client, 2, []byte{0xee, 0})
		if _, err := ss.Recv(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
}

// limitReq returns a Req whose frame body is exactly n bytes.
func limitReq(n int) *Req {
	for body := n; body >= 0; body-- {
		m := &Req{Op: OpPull, Body: make([]byte, body)}
		if len(encode(m)) == n {
			return m
		}
	}
	panic("no Req of that size")
}

func TestFrameLimitBoundary(t *testing.T) {
	const limit = 1 << 10
	client, server := tcpPair(t)
	cc, ss := NewConn(client, limit), NewConn(server, limit)
	defer cc.Close()
	defer ss.Close()

	m := limitReq(limit)
	m.Body[0], m.Body[len(m.Body)-1] = 1, 2
	sendRecv(t, cc, ss, m)

	big := limitReq(limit + 1)
	err := cc.Send(big)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("req message of %d bytes exceeds the %d-byte frame limit", limit+1, limit)) {
		t.Fatalf("Send of %d bytes: got %v, want a frame-limit error", limit+1, err)
	}
	// The refused message left nothing behind: the next one arrives intact.
	sendRecv(t, cc, ss, &Shutdown{Reason: "after the refused one"})
}

func TestSendOversized(t *testing.T) {
	client, _ := pipePair(t)
	cc := NewConn(client, 4<<10)
	defer cc.Abort()
	err := cc.Send(&Put{Value: Value{Data: make([]byte, 8<<10)}})
	if err == nil || !strings.Contains(err.Error(), "put message") || !strings.Contains(err.Error(), "exceeds the 4096-byte frame limit") {
		t.Fatalf("got %v, want an error naming the message and the limit", err)
	}
}

func TestConcurrentSend(t *testing.T) {
	const senders, each = 16, 500
	client, server := tcpPair(t)
	cc, ss := NewConn(client, 0), NewConn(server, 0)
	defer ss.Close()

	body := func(g, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%d/%d;", g, i)), 1+(g*7+i)%50)
	}
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := cc.Send(&Req{ID: uint64(g)<<32 | uint64(i), Op: OpKVPut, Body: body(g, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	recvd := make(chan error, 1)
	next := make([]int, senders) // the next index expected from each sender
	go func() {
		for n := 0; n < senders*each; n++ {
			m, err := ss.Recv()
			if err != nil {
				recvd <- fmt.Errorf("after %d messages: %w", n, err)
				return
			}
			r, ok := m.(*Req)
			if !ok {
				recvd <- fmt.Errorf("got %T", m)
				return
			}
			g, i := int(r.ID>>32), int(r.ID&(1<<32-1))
			if g >= senders || i != next[g] {
				recvd <- fmt.Errorf("from sender %d got message %d, want %d", g, i, next[g])
				return
			}
			next[g]++
			if r.Op != OpKVPut || !bytes.Equal(r.Body, body(g, i)) {
				recvd <- fmt.Errorf("message %d/%d damaged", g, i)
				return
			}
		}
		recvd <- nil
	}()
	wg.Wait()
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-recvd; err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Recv(); err != io.EOF {
		t.Fatalf("after all messages: got %v, want io.EOF", err)
	}
}

func TestCloseFlushes(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			const n = 5000
			client, server := p.make(t)
			cc, ss := NewConn(client, 0), NewConn(server, 0)
			defer ss.Close()
			count := make(chan int, 1)
			go func() {
				i := 0
				for {
					m, err := ss.Recv()
					if err != nil {
						break
					}
					if m.(*Req).ID != uint64(i) {
						break
					}
					i++
				}
				count <- i
			}()
			for i := range n {
				if err := cc.Send(&Req{ID: uint64(i), Body: make([]byte, 200)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := cc.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := <-count; got != n {
				t.Fatalf("received %d of %d messages sent before Close", got, n)
			}
		})
	}
}

func TestSendAfterClose(t *testing.T) {
	client, _ := tcpPair(t)
	cc := NewConn(client, 0)
	cc.Close()
	if err := cc.Send(&Shutdown{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: got %v, want ErrClosed", err)
	}
	cc.Close() // a second Close neither hangs nor panics

	client2, _ := tcpPair(t)
	cc = NewConn(client2, 0)
	cc.Abort()
	if err := cc.Send(&Shutdown{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Abort: got %v, want ErrClosed", err)
	}
	cc.Close()
}

// TestSendAfterPeerGone: once a write fails, Send reports the write error.
func TestSendAfterPeerGone(t *testing.T) {
	client, server := pipePair(t)
	cc := NewConn(client, 0)
	defer cc.Close()
	server.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cc.Send(&Shutdown{})
		if err != nil {
			if !errors.Is(err, io.ErrClosedPipe) || !strings.Contains(err.Error(), "write to") {
				t.Fatalf("got %v, want the write error", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Send kept succeeding after the peer closed")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPeerThatDoesNotRead: frames for a peer that stops reading pile up
// only to a bound; then the connection is dropped, not the process's
// memory grown.
func TestPeerThatDoesNotRead(t *testing.T) {
	client, server := net.Pipe() // nothing ever reads server
	defer server.Close()
	c := NewConn(client, 0)
	c.mu.Lock()
	c.maxQueued = 1 << 20
	c.mu.Unlock()
	big := &Put{Value: Value{Data: make([]byte, 64<<10)}}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = c.Send(big)
	}
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "stopped reading") {
		t.Fatalf("after queueing past the bound: %v", err)
	}
}

// TestFrameReady: FrameReady is true only while a whole frame is already
// read, so a reader holding a lock never waits in Recv for the peer.
func TestFrameReady(t *testing.T) {
	a, b := net.Pipe()
	receiver := NewConn(b, 0)
	defer receiver.Close()
	defer a.Close()
	if receiver.FrameReady() {
		t.Fatal("FrameReady before anything was sent")
	}
	frame := func(m Msg) []byte {
		e := Enc{b: []byte{0, 0, 0, 0}}
		Append(&e, m)
		binary.LittleEndian.PutUint32(e.b, uint32(len(e.b)-4))
		return e.b
	}
	// Two frames in one write: the first Recv reads both into the buffer.
	go a.Write(append(frame(&Shutdown{Reason: "one"}), frame(&Shutdown{Reason: "two"})...))
	if _, err := receiver.Recv(); err != nil {
		t.Fatal(err)
	}
	if !receiver.FrameReady() {
		t.Fatal("FrameReady false with the second frame of the batch read")
	}
	if m, err := receiver.Recv(); err != nil || m.(*Shutdown).Reason != "two" {
		t.Fatalf("second Recv: %v, %v", m, err)
	}
	if receiver.FrameReady() {
		t.Fatal("FrameReady true with nothing left")
	}
	// Half a frame: its length is there, not all of its body.
	go a.Write([]byte{10, 0, 0, 0, 1, 2})
	if _, err := receiver.r.Peek(6); err != nil {
		t.Fatal(err)
	}
	if receiver.FrameReady() {
		t.Fatal("FrameReady true with 2 of a frame's 10 bytes read")
	}
}
