package launcher

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// HeadInfo is what rank 0 tells the other ranks: where the head listens,
// the cluster secret, and the raygo-launch version (others must match).
type HeadInfo struct {
	Addr    string `json:"addr"`
	Secret  string `json:"secret"` // hex
	Version string `json:"version"`
	Host    string `json:"host"`
	Pid     int    `json:"pid"`
	Cluster string `json:"cluster"`
}

// ParseHeadInfo reads a rendezvous file, checking what it must hold.
func ParseHeadInfo(b []byte) (HeadInfo, error) {
	var info HeadInfo
	if len(b) > 64<<10 {
		return info, fmt.Errorf("rendezvous file of %d bytes is not one", len(b))
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, err
	}
	if _, _, err := net.SplitHostPort(info.Addr); err != nil {
		return info, fmt.Errorf("head address %q: %w", info.Addr, err)
	}
	if _, err := info.SecretBytes(); err != nil {
		return info, err
	}
	return info, nil
}

// SecretBytes decodes the secret.
func (h HeadInfo) SecretBytes() ([]byte, error) {
	b, err := hex.DecodeString(h.Secret)
	if err != nil || len(b) < 16 {
		return nil, errors.New("rendezvous: malformed secret")
	}
	return b, nil
}

// ErrFinal, wrapped by an accept function's error, ends Lookup at once:
// waiting cannot help (for example a live head of another version).
var ErrFinal = errors.New("cannot join")

// Rendezvous hands rank 0's HeadInfo to the other ranks through a directory
// on a filesystem they all see (the home directory, or the job's submit
// directory, on a cluster): DIR/KEY/head.json, the directory 0700 and the
// file 0600, written atomically. No fixed ports and no sleeps: the other
// ranks poll for the file with a short backoff and check it by connecting.
type Rendezvous struct {
	Dir string // base directory
	Key string // the launch's key (Role.Key)
}

// DefaultRendezvousDir is $RAYGO_RENDEZVOUS_DIR, else ~/.raygo/rendezvous.
func DefaultRendezvousDir() string {
	if d := os.Getenv("RAYGO_RENDEZVOUS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), fmt.Sprintf("raygo-%d", os.Getuid()), "rendezvous")
	}
	return filepath.Join(home, ".raygo", "rendezvous")
}

func (r Rendezvous) path() string { return filepath.Join(r.Dir, r.Key) }

// checkDir insists the directory is ours and closed to others.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d)", dir, sys.Uid, os.Getuid())
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is open to other users (mode %v): it holds cluster secrets; chmod 700 it", dir, st.Mode().Perm())
	}
	return nil
}

// Publish writes info for the other ranks (rank 0).
func (r Rendezvous) Publish(info HeadInfo) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return fmt.Errorf("rendezvous dir %s: %w", r.Dir, err)
	}
	if err := checkDir(r.Dir); err != nil {
		return fmt.Errorf("rendezvous dir: %w", err)
	}
	d := r.path()
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("rendezvous: %w", err)
	}
	if err := checkDir(d); err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	b, _ := json.Marshal(info)
	tmp, err := os.CreateTemp(d, ".head-*")
	if err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	// Write, sync and rename; the first failure stands (a failed write
	// must not publish a half-written file).
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d, "head.json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rendezvous: write %s: %w", d, err)
	}
	return nil
}

// Lookup waits for rank 0's info. accept checks a candidate (for example by
// connecting to it); a stale file from an earlier launch that fails the
// check is waited past. The wait ends with ctx.
func (r Rendezvous) Lookup(ctx context.Context, accept func(HeadInfo) error) (HeadInfo, error) {
	f := filepath.Join(r.path(), "head.json")
	delay := time.Millisecond
	var last error
	for {
		b, err := os.ReadFile(f)
		switch {
		case err == nil:
			info, err := ParseHeadInfo(b)
			if err != nil {
				last = fmt.Errorf("%s: %w", f, err)
				break
			}
			if err := checkDir(r.path()); err != nil {
				return HeadInfo{}, fmt.Errorf("rendezvous: %w", err)
			}
			if err := accept(info); err != nil {
				if errors.Is(err, ErrFinal) {
					return HeadInfo{}, fmt.Errorf("rendezvous through %s: %w", r.path(), err)
				}
				last = err
				break
			}
			return info, nil
		case errors.Is(err, os.ErrNotExist):
			// Not there yet: also make sure the base directory can be read
			// at all, so a wrong path fails fast rather than at the timeout.
			if _, serr := os.Stat(r.Dir); serr != nil && !errors.Is(serr, os.ErrNotExist) {
				return HeadInfo{}, fmt.Errorf("rendezvous dir %s: %w", r.Dir, serr)
			}
			last = fmt.Errorf("%s does not exist yet", f)
		default:
			return HeadInfo{}, fmt.Errorf("rendezvous: %w", err)
		}
		select {
		case <-ctx.Done():
			return HeadInfo{}, fmt.Errorf("rendezvous through %s: rank 0 did not publish its head in time (%v): %v", r.path(), ctx.Err(), last)
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// Remove deletes this launch's rendezvous directory (rank 0, at the end).
func (r Rendezvous) Remove() error { return os.RemoveAll(r.path()) }
