package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DirRendezvous is a Rendezvous for ranks that share a directory but no
// cluster: processes on one machine, or ranks of an MPI launch across
// nodes with a shared home directory. Each value is a file, written whole
// and renamed into place; readers poll for it with a short backoff.
//
// One directory serves one build of one group. NewDirRendezvous makes it;
// Finish removes it once every rank is done, Abandon takes back what a
// rank published after a failed build.
type DirRendezvous struct {
	Dir        string
	Rank, Size int
}

var _ Rendezvous = DirRendezvous{}

// NewDirRendezvous makes (or joins) the directory name under base.
func NewDirRendezvous(base, name string, rank, size int) (DirRendezvous, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return DirRendezvous{}, fmt.Errorf("rendezvous directory: %w", err)
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return DirRendezvous{}, fmt.Errorf("rendezvous directory: %w", err)
	}
	return DirRendezvous{Dir: dir, Rank: rank, Size: size}, nil
}

func (d DirRendezvous) path(key string, rank int) string {
	return filepath.Join(d.Dir, fmt.Sprintf("%s.%d", url.PathEscape(key), rank))
}

func (d DirRendezvous) publish(key string, v []byte) error {
	p := d.path(key, d.Rank)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, v, 0o600); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	return nil
}

// collect waits for the values of ranks under key; when ctx ends it names
// the ranks still missing.
func (d DirRendezvous) collect(ctx context.Context, key string, ranks []int) ([][]byte, error) {
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
			return nil, &WaitError{Op: "rendezvous " + key + " in " + d.Dir, Rank: d.Rank, Missing: missing, Err: ctx.Err()}
		case <-time.After(delay):
		}
	}
}

func (d DirRendezvous) all() []int {
	r := make([]int, d.Size)
	for i := range r {
		r[i] = i
	}
	return r
}

// Exchange publishes mine under key and returns every rank's value.
func (d DirRendezvous) Exchange(ctx context.Context, key string, mine []byte) ([][]byte, error) {
	if err := d.publish(key, mine); err != nil {
		return nil, err
	}
	return d.collect(ctx, key, d.all())
}

// Broadcast returns root's value under key.
func (d DirRendezvous) Broadcast(ctx context.Context, key string, root int, value []byte) ([]byte, error) {
	if d.Rank == root {
		return value, d.publish(key, value)
	}
	v, err := d.collect(ctx, key, []int{root})
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

// Finish ends the rendezvous: once every rank has read every value (known
// from an exchange after all of them) and said so, rank 0 removes the
// directory. The other ranks do not wait for that. The keys it uses,
// "rendezvous.done" and "rendezvous.left", are its own.
func (d DirRendezvous) Finish(ctx context.Context) error {
	if _, err := d.Exchange(ctx, "rendezvous.done", nil); err != nil {
		return err
	}
	if err := d.publish("rendezvous.left", nil); err != nil {
		return err
	}
	if d.Rank != 0 {
		return nil
	}
	if _, err := d.collect(ctx, "rendezvous.left", d.all()); err != nil {
		return err
	}
	return os.RemoveAll(d.Dir)
}

// Abandon removes what this rank published, after a failed build; rank 0
// also removes the directory if nothing else is left in it.
func (d DirRendezvous) Abandon() {
	matches, _ := filepath.Glob(filepath.Join(d.Dir, fmt.Sprintf("*.%d", d.Rank)))
	for _, m := range matches {
		os.Remove(m)
	}
	if d.Rank == 0 {
		os.Remove(d.Dir) // only if empty
	}
}
