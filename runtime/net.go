package runtime

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

// dial connects to addr ("unix:/path" or "host:port") and authenticates.
func dial(ctx context.Context, addr string, secret []byte, role wire.Role) (*wire.Conn, error) {
	network, address := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", p
	}
	var d net.Dialer
	if _, ok := ctx.Deadline(); !ok {
		d.Timeout = 10 * time.Second
	}
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if err := wire.ClientHandshake(nc, secret, role); err != nil {
		nc.Close()
		return nil, err
	}
	return wire.NewConn(nc, wire.DefaultMaxFrame), nil
}

// listen opens a listener on "unix:/path" or "host:port".
func listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", addr)
}

// serve accepts connections, authenticates each within the handshake
// timeout, and hands authenticated ones to handle in their own goroutine.
// Failed handshakes are logged by logf and dropped; they never reach handle.
func serve(ln net.Listener, secret []byte, logf func(string, ...any), handle func(*wire.Conn, wire.Role)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		go func() {
			role, err := wire.ServerHandshake(nc, secret)
			if err != nil {
				logf("refused connection: %v", err)
				nc.Close()
				return
			}
			handle(wire.NewConn(nc, wire.DefaultMaxFrame), role)
		}()
	}
}
