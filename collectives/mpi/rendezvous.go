//go:build !mpi

package mpi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/raygo/raygo/collectives/backend"
)

// dirRendezvous exchanges values through a directory that every rank
// sees (a shared home directory across nodes): each value is a file,
// written whole and renamed into place. One directory serves one build of
// one group; rank 0 removes it once every rank is done with it.
type dirRendezvous struct {
	dir        string
	rank, size int
}

func newDirRendezvous(base, name string, rank, size int) (*dirRendezvous, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("rendezvous directory: %w", err)
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("rendezvous directory: %w", err)
	}
	return &dirRendezvous{dir: dir, rank: rank, size: size}, nil
}

func (d *dirRendezvous) path(key string, rank int) string {
	return filepath.Join(d.dir, fmt.Sprintf("%s.%d", url.PathEscape(key), rank))
}

func (d *dirRendezvous) publish(key string, v []byte) error {
	p := d.path(key, d.rank)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, v, 0o600); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	return nil
}

// collect waits for the values of ranks under key, polling with a short
// backoff; when ctx ends it names the ranks still missing.
func (d *dirRendezvous) collect(ctx context.Context, key string, ranks []int) ([][]byte, error) {
	out := make([][]byte, len(ranks))
	left := len(ranks)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		for i, r := range ranks {
			if out[i] != nil {
				continue
			}
			b, err := os.ReadFile(d.path(key, r))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("rendezvous: %w", err)
			}
			if b == nil {
				b = []byte{}
			}
			out[i] = b
			left--
		}
		if left == 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			var missing []int
			for i, r := range ranks {
				if out[i] == nil {
					missing = append(missing, r)
				}
			}
			return nil, &backend.WaitError{Op: "rendezvous " + key + " in " + d.dir, Rank: d.rank, Missing: missing, Err: ctx.Err()}
		case <-time.After(delay):
		}
	}
}

func (d *dirRendezvous) all() []int {
	r := make([]int, d.size)
	for i := range r {
		r[i] = i
	}
	return r
}

// Exchange publishes mine under key and returns every rank's value.
func (d *dirRendezvous) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	if err := d.publish(key, mine); err != nil {
		return nil, err
	}
	return d.collect(ctx, key, d.all())
}

// Broadcast returns root's value under key.
func (d *dirRendezvous) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	if d.rank == root {
		return value, d.publish(key, value)
	}
	v, err := d.collect(ctx, key, []int{root})
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// finish ends the rendezvous: once every rank has read every value
// (known from an exchange after all of them) and said so, rank 0 removes
// the directory. The other ranks do not wait for that. Nil does nothing.
func (d *dirRendezvous) finish(ctx context.Context) error {
	if d == nil {
		return nil
	}
	if _, err := d.Exchange(ctx, Name+".done", nil); err != nil {
		return err
	}
	if err := d.publish(Name+".left", nil); err != nil {
		return err
	}
	if d.rank != 0 {
		return nil
	}
	if _, err := d.collect(ctx, Name+".left", d.all()); err != nil {
		return err
	}
	return os.RemoveAll(d.dir)
}

// abandon removes what this rank published, after a failed build. Nil
// does nothing.
func (d *dirRendezvous) abandon() {
	if d == nil {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(d.dir, fmt.Sprintf("*.%d", d.rank)))
	for _, m := range matches {
		os.Remove(m)
	}
	if d.rank == 0 {
		os.Remove(d.dir) // only if empty
	}
}

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
