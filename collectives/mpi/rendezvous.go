//go:build !mpi

package mpi

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

// pickHost chooses the address other ranks reach this one at: the
// mpi.host option, else RAYGO_INTERFACE (an address, an interface name or
// a subnet), else a local address this host's name resolves to, else the
// first address of an interface that is up, else 127.0.0.1.
func pickHost(ctx context.Context, option, iface string) (string, error) {
	spec := option
	if spec == "" {
		spec = iface
	}
	if spec != "" {
		if ip := net.ParseIP(spec); ip != nil {
			return ip.String(), nil
		}
		if ifc, err := net.InterfaceByName(spec); err == nil {
			addrs, _ := ifc.Addrs()
			if ip := firstIP(addrs, nil); ip != "" {
				return ip, nil
			}
			return "", fmt.Errorf("interface %s has no address", spec)
		}
		if _, subnet, err := net.ParseCIDR(spec); err == nil {
			addrs, _ := net.InterfaceAddrs()
			if ip := firstIP(addrs, subnet); ip != "" {
				return ip, nil
			}
			return "", fmt.Errorf("no local address in %s", spec)
		}
		return "", fmt.Errorf("%q is not an address, an interface or a subnet", spec)
	}
	locals := map[string]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			locals[n.IP.String()] = true
		}
	}
	if h, err := os.Hostname(); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		names, _ := net.DefaultResolver.LookupHost(ctx, h)
		cancel()
		for _, a := range names {
			if ip := net.ParseIP(a); ip != nil && !ip.IsLoopback() && locals[ip.String()] {
				return ip.String(), nil
			}
		}
	}
	ifcs, _ := net.Interfaces()
	for _, ifc := range ifcs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		if ip := firstIP(addrs, nil); ip != "" {
			return ip, nil
		}
	}
	return "127.0.0.1", nil
}

// firstIP is the first address in addrs (IPv4 first) inside subnet
// (any when nil), skipping link-local ones.
func firstIP(addrs []net.Addr, subnet *net.IPNet) string {
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLinkLocalUnicast() || (subnet != nil && !subnet.Contains(n.IP)) {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	return v6
}
