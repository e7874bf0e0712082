package wire

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// typicalSubmit is a task call with two small inline arguments, the common
// case on the driver-to-agent path.
func typicalSubmit() *Submit {
	return &Submit{Spec: TaskSpec{
		ID:         TaskID{Node: 1, Proc: 3, Seq: 123456},
		Job:        1,
		Func:       "example.com/app/train.Step",
		Name:       "train.Step",
		Args:       []Arg{{Data: make([]byte, 64)}, {Data: make([]byte, 256)}},
		NumReturns: 1,
		Resources:  Resources{"CPU": 1, "GPU": 0.5},
		MaxRetries: 3,
	}}
}

func BenchmarkEncodeDecodeSubmit(b *testing.B) {
	m := typicalSubmit()
	var e Enc
	Append(&e, m)
	b.SetBytes(int64(len(e.Bytes())))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		Append(&e, m)
		if _, err := Decode(e.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// unixPair returns the two ends of a unix-domain stream socket.
func unixPair(b *testing.B) (client, server net.Conn) {
	dir, err := os.MkdirTemp("", "wire") // short: socket paths are limited to ~100 bytes
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		b.Skip("no unix sockets:", err)
	}
	defer l.Close()
	ac := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ac <- c
	}()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-ac
	if server == nil {
		b.Fatal("accept failed")
	}
	return client, server
}

// BenchmarkConnPingPong measures one request and its reply over a unix
// socket: a Send, the peer's Recv and Send, and a Recv. ns/op is the round
// trip.
func BenchmarkConnPingPong(b *testing.B) {
	client, server := unixPair(b)
	cc, ss := NewConn(client, 0), NewConn(server, 0)
	echoed := make(chan error, 1)
	go func() {
		for {
			m, err := ss.Recv()
			if err != nil {
				ss.Close()
				echoed <- nil
				return
			}
			req := m.(*Req)
			if err := ss.Send(&Rep{ID: req.ID, Body: req.Body}); err != nil {
				echoed <- err
				return
			}
		}
	}()
	req := &Req{Op: OpKVGet, Body: []byte("some/key")}
	b.ReportAllocs()
	for b.Loop() {
		req.ID++
		if err := cc.Send(req); err != nil {
			b.Fatal(err)
		}
		m, err := cc.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if m.(*Rep).ID != req.ID {
			b.Fatal("reply to the wrong request")
		}
	}
	b.StopTimer()
	cc.Close()
	if err := <-echoed; err != nil {
		b.Fatal(err)
	}
}
