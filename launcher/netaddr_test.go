package launcher_test

import (
	"net"
	"strings"
	"testing"

	"github.com/raygo/raygo/launcher"
)

// These tests use only the loopback interface: every Linux host has lo
// with 127.0.0.1/8, and all of 127.0.0.0/8 answers on it.

func loopbackName(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			return ifc.Name
		}
	}
	t.Skip("no loopback interface")
	return ""
}

func TestNodeIPSpec(t *testing.T) {
	lo := loopbackName(t)
	inLoopback := func(ip string) bool {
		p := net.ParseIP(ip)
		return p != nil && p.To4() != nil && p.IsLoopback()
	}
	cases := []struct {
		spec string
		ok   func(string) bool
		want string
	}{
		{"127.0.0.1", nil, "127.0.0.1"},
		// Not configured on lo by name, but lo answers for all of 127/8:
		// this is how the end-to-end test gives each rank its own address.
		{"127.0.0.2", nil, "127.0.0.2"},
		{"127.0.0.3", nil, "127.0.0.3"},
		{"127.0.0.0/8", inLoopback, "an address in 127.0.0.0/8"},
		{lo, inLoopback, "an IPv4 address of " + lo},
	}
	for _, c := range cases {
		got, err := launcher.NodeIP(c.spec, "")
		switch {
		case err != nil:
			t.Errorf("NodeIP(%q): %v", c.spec, err)
		case c.ok == nil && got != c.want, c.ok != nil && !c.ok(got):
			t.Errorf("NodeIP(%q) = %q, want %s", c.spec, got, c.want)
		}
	}
}

func TestNodeIPBadSpec(t *testing.T) {
	lo := loopbackName(t)
	// Only compared with this host's addresses: nothing is sent anywhere.
	for _, spec := range []string{"ib7-does-not-exist", "10.255.255.0/30"} {
		_, err := launcher.NodeIP(spec, "")
		if err == nil {
			t.Errorf("NodeIP(%q) succeeded", spec)
			continue
		}
		// The error lists what this host has, so the user can pick.
		for _, w := range []string{spec, "have ", lo + " 127.0.0.1/8"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NodeIP(%q): error %q does not mention %q", spec, err, w)
			}
		}
	}
}

func TestNodeIPRouteToHead(t *testing.T) {
	// Without a spec, a node uses the address it reaches the head from
	// (a UDP "connect" picks the route; no packet is sent).
	got, err := launcher.NodeIP("", "127.0.0.1:6380")
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(got); ip == nil || !ip.IsLoopback() {
		t.Errorf("NodeIP with a loopback head = %q, want a loopback address", got)
	}
}
