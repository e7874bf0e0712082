package backendtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/raygo/raygo/collectives/backend"
)

// DirRendezvous is a backend.Rendezvous for ranks in separate processes
// on one machine that share a directory: each value is a file, written
// whole and renamed into place.
type DirRendezvous struct {
	Dir        string
	Rank, Size int
}

var _ backend.Rendezvous = DirRendezvous{}

func (d DirRendezvous) path(key string, rank int) string {
	return filepath.Join(d.Dir, fmt.Sprintf("%s.%d", url.PathEscape(key), rank))
}

func (d DirRendezvous) publish(key string, v []byte) error {
	p := d.path(key, d.Rank)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, v, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (d DirRendezvous) wait(ctx context.Context, key string, rank int) ([]byte, error) {
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		b, err := os.ReadFile(d.path(key, rank))
		if err == nil {
			return b, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, &backend.WaitError{Op: "rendezvous " + key, Rank: d.Rank, Missing: []int{rank}, Err: ctx.Err()}
		case <-time.After(delay):
		}
	}
}

// Exchange publishes mine and waits for every rank's value.
func (d DirRendezvous) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	if err := d.publish(key, mine); err != nil {
		return nil, err
	}
	out := make([][]byte, d.Size)
	for r := range out {
		v, err := d.wait(ctx, key, r)
		if err != nil {
			return nil, err
		}
		out[r] = v
	}
	return out, nil
}

// Broadcast returns root's value under key.
func (d DirRendezvous) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	if d.Rank == root {
		if err := d.publish(key, value); err != nil {
			return nil, err
		}
		return value, nil
	}
	return d.wait(ctx, key, root)
}
