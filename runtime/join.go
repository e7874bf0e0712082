package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/raygo/raygo/runtime/wire"
)

// ClusterDir is where `raygo start --head` keeps a cluster's secret and
// address on this machine: a 0700 directory per user and head address.
func ClusterDir(headAddr string) string {
	safe := strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(headAddr)
	return filepath.Join(os.TempDir(), fmt.Sprintf("raygo-%d", os.Getuid()), "clusters", safe)
}

// WriteSecret stores a cluster's secret for others on this machine to
// join with: the file is 0600 in a 0700 directory.
func WriteSecret(headAddr string, secret []byte) (string, error) {
	dir := ClusterDir(headAddr)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "secret")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%x\n", secret); err != nil {
		return "", err
	}
	return path, nil
}

// ReadSecret reads the secret of the cluster at headAddr from file, or
// from the file WriteSecret made on this machine.
func ReadSecret(headAddr, file string) ([]byte, error) {
	if file == "" {
		file = filepath.Join(ClusterDir(headAddr), "secret")
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w (start the head on this machine with `raygo start --head`, or give --secret-file / RAYGO_SECRET_FILE)", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cluster secret %s is readable by others (mode %v): chmod 600 it", file, st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	var secret []byte
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%x", &secret); err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("cluster secret %s is not a hex secret", file)
	}
	return secret, nil
}

// HeadRequest makes one request of the head directly (the CLI's way in).
func HeadRequest(ctx context.Context, headAddr string, secret []byte, op wire.Op, body []byte) ([]byte, error) {
	conn, err := dial(ctx, headAddr, secret, wire.RoleAdmin)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var c calls
	go func() {
		for {
			m, err := conn.Recv()
			if err != nil {
				c.fail(fmt.Errorf("head %s: %w", headAddr, err))
				return
			}
			if r, ok := m.(*wire.Rep); ok {
				c.deliver(r)
			}
		}
	}()
	return c.call(ctx, conn, op, body)
}

// LocalAgentAddr finds the node agent a driver on this machine should use:
// one on this host, else the first node.
func LocalAgentAddr(ctx context.Context, headAddr string, secret []byte) (string, error) {
	body, err := HeadRequest(ctx, headAddr, secret, wire.OpStatus, nil)
	if err != nil {
		return "", err
	}
	st, err := DecodeStatus(body)
	if err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	var first string
	for _, n := range st.Nodes {
		if !n.Alive {
			continue
		}
		if first == "" {
			first = n.Addr
		}
		if n.Labels["driver-socket"] != "" && n.Hostname == host {
			if _, err := os.Stat(strings.TrimPrefix(n.Labels["driver-socket"], "unix:")); err == nil {
				return n.Labels["driver-socket"], nil
			}
		}
	}
	if first == "" {
		return "", fmt.Errorf("cluster at %s has no live node", headAddr)
	}
	return first, nil
}

// CleanupSecret removes what WriteSecret made.
func CleanupSecret(headAddr string) {
	os.RemoveAll(ClusterDir(headAddr))
}
