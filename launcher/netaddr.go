package launcher

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// NodeIP picks the address this node's head or agent listens on.
//
// spec (from --interface or RAYGO_INTERFACE) may name an interface ("ib0"),
// a subnet ("10.12.0.0/16", "fd00::/8") or an address. Without one: the
// address this node uses to reach the head (ranks other than 0), else the
// address this host's name resolves to if it is local, else the first
// address of an interface that is up (IPv4 first), else 127.0.0.1.
func NodeIP(spec, head string) (string, error) {
	if spec != "" {
		return ipFromSpec(spec)
	}
	if head != "" {
		if ip := routeTo(head); ip != "" {
			return ip, nil
		}
	}
	locals := localAddrs()
	if h, err := os.Hostname(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, _ := net.DefaultResolver.LookupHost(ctx, h)
		cancel()
		for _, a := range addrs {
			if ip := net.ParseIP(a); ip != nil && locals[ip.String()] {
				return ip.String(), nil
			}
		}
	}
	if ip := firstUp(); ip != "" {
		return ip, nil
	}
	return "127.0.0.1", nil
}

func ipFromSpec(spec string) (string, error) {
	if ip := net.ParseIP(spec); ip != nil {
		if !isLocal(ip) {
			return "", fmt.Errorf("interface: %s is not an address of this host (have %s)", spec, describeAddrs())
		}
		return ip.String(), nil
	}
	if _, subnet, err := net.ParseCIDR(spec); err == nil {
		ifs, _ := net.Interfaces()
		for _, ifc := range ifs {
			addrs, _ := ifc.Addrs()
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
					return ipn.IP.String(), nil
				}
			}
		}
		return "", fmt.Errorf("interface: no address of this host is in %s (have %s)", spec, describeAddrs())
	}
	ifc, err := net.InterfaceByName(spec)
	if err != nil {
		return "", fmt.Errorf("interface %q: not an interface, subnet or address of this host (have %s)", spec, describeAddrs())
	}
	addrs, _ := ifc.Addrs()
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
		if v6 == "" && !ipn.IP.IsLinkLocalUnicast() {
			v6 = ipn.IP.String()
		}
	}
	if v6 != "" {
		return v6, nil
	}
	return "", fmt.Errorf("interface %s has no usable address", spec)
}

// routeTo is the local address the kernel would use to reach addr (no
// packet is sent: a UDP socket only picks a route).
func routeTo(addr string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return ""
}

// isLocal says whether ip belongs to this host: one of its addresses, or
// in a loopback network it has (all of 127.0.0.0/8 answers on lo).
func isLocal(ip net.IP) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ipn.IP.Equal(ip) || (ipn.IP.IsLoopback() && ipn.Contains(ip)) {
			return true
		}
	}
	return false
}

func localAddrs() map[string]bool {
	out := map[string]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out[ipn.IP.String()] = true
		}
	}
	return out
}

func firstUp() string {
	ifs, _ := net.Interfaces()
	var v6 string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
			if v6 == "" {
				v6 = ipn.IP.String()
			}
		}
	}
	return v6
}

func describeAddrs() string {
	var parts []string
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		var as []string
		for _, a := range addrs {
			as = append(as, a.String())
		}
		parts = append(parts, ifc.Name+" "+strings.Join(as, " "))
	}
	return strings.Join(parts, "; ")
}
