package launcher_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raygo/raygo/launcher"
)

func headInfo(addr string) launcher.HeadInfo {
	return launcher.HeadInfo{Addr: addr, Secret: strings.Repeat("ab", 32), Version: "v-test", Host: "node001", Pid: 4711, Cluster: "c0ffee"}
}

func acceptAll(launcher.HeadInfo) error { return nil }

// rendezvousDir makes a base directory as raygo-launch wants it: 0700.
func rendezvousDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "rendezvous")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRendezvousPublishLookup(t *testing.T) {
	rv := launcher.Rendezvous{Dir: rendezvousDir(t), Key: "manual-k"}
	want := headInfo("127.0.0.1:40001")
	if err := rv.Publish(want); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := rv.Lookup(ctx, acceptAll)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Lookup = %+v, want %+v", got, want)
	}
	if b, err := got.SecretBytes(); err != nil || len(b) != 32 {
		t.Errorf("SecretBytes = %x, %v", b, err)
	}
	// The key's directory and file are private; nothing else is left there.
	keyDir := filepath.Join(rv.Dir, rv.Key)
	if st, err := os.Stat(keyDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("key directory: %v, %v; want mode 0700", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(keyDir, "head.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("head.json: %v, %v; want mode 0600", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(keyDir); len(ents) != 1 {
		t.Errorf("key directory holds %d entries, want only head.json", len(ents))
	}
	// A later publish (a relaunch) replaces the file.
	again := headInfo("127.0.0.1:40002")
	if err := rv.Publish(again); err != nil {
		t.Fatal(err)
	}
	if got, err = rv.Lookup(ctx, acceptAll); err != nil || got.Addr != again.Addr {
		t.Errorf("after a second Publish: %+v, %v", got, err)
	}
	if err := rv.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
}

func TestRendezvousStaleFileSkipped(t *testing.T) {
	rv := launcher.Rendezvous{Dir: rendezvousDir(t), Key: "slurm-4242.0"}
	// An earlier launch with the same key left its file behind.
	if err := rv.Publish(headInfo("127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	var staleSeen atomic.Int32
	accept := func(h launcher.HeadInfo) error {
		if h.Addr == "127.0.0.1:1" {
			staleSeen.Add(1)
			return errors.New("does not answer")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		h   launcher.HeadInfo
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, err := rv.Lookup(ctx, accept)
		done <- result{h, err}
	}()
	for staleSeen.Load() < 2 {
		select {
		case r := <-done:
			t.Fatalf("Lookup returned %+v, %v while only the stale file was there", r.h, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	fresh := headInfo("127.0.0.1:40003")
	if err := rv.Publish(fresh); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.h.Addr != fresh.Addr {
		t.Fatalf("Lookup = %+v, %v; want the fresh head %s", r.h, r.err, fresh.Addr)
	}
}

func TestRendezvousOpenDirRefused(t *testing.T) {
	base := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755) // whatever the umask
	rv := launcher.Rendezvous{Dir: base, Key: "k"}
	err := rv.Publish(headInfo("127.0.0.1:40004"))
	if err == nil {
		t.Fatal("Publish into a 0755 directory succeeded")
	}
	for _, w := range []string{base, "open to other users", "chmod 700"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}

	// A key directory opened up after the fact is refused by Lookup too,
	// at once.
	base2 := rendezvousDir(t)
	rv2 := launcher.Rendezvous{Dir: base2, Key: "k"}
	if err := rv2.Publish(headInfo("127.0.0.1:40005")); err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(base2, "k")
	if err := os.Chmod(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = rv2.Lookup(ctx, acceptAll)
	if err == nil || !strings.Contains(err.Error(), keyDir) || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("Lookup in a 0755 key directory: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing took %v", d)
	}
}

func TestRendezvousUnreadableDirFailsFast(t *testing.T) {
	cases := map[string]func(t *testing.T) string{
		"mode 000": func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root reads a mode 000 directory")
			}
			d := filepath.Join(t.TempDir(), "locked")
			if err := os.Mkdir(d, 0o000); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(d, 0o700) })
			return d
		},
		"a file": func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := mk(t)
			rv := launcher.Rendezvous{Dir: dir, Key: "k"}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err := rv.Lookup(ctx, acceptAll)
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("Lookup under %s: %v, want an error naming it", dir, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: a base directory that cannot be read should fail at once, not at the timeout", d)
			}
		})
	}
}

func TestRendezvousLookupTimeout(t *testing.T) {
	// The base directory need not exist yet: rank 0 may create it.
	rv := launcher.Rendezvous{Dir: filepath.Join(t.TempDir(), "later"), Key: "manual-k"}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rv.Lookup(ctx, acceptAll)
	if err == nil {
		t.Fatal("Lookup found a head nobody published")
	}
	path := filepath.Join(rv.Dir, rv.Key)
	for _, w := range []string{path, "did not publish", "does not exist yet"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("returned before the deadline, after %v", time.Since(start))
	}
}

func TestRendezvousLookupReportsLastRefusal(t *testing.T) {
	rv := launcher.Rendezvous{Dir: rendezvousDir(t), Key: "k"}
	if err := rv.Publish(headInfo("127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := rv.Lookup(ctx, func(h launcher.HeadInfo) error {
		return errors.New("version mismatch: rank 0 runs v-old")
	})
	if err == nil || !strings.Contains(err.Error(), "version mismatch: rank 0 runs v-old") {
		t.Errorf("Lookup = %v, want the last refusal in the error", err)
	}
}

func TestHeadInfoSecretBytes(t *testing.T) {
	// Not hex, empty, or shorter than 16 bytes.
	for _, s := range []string{"", "zz", strings.Repeat("ab", 15)} {
		if _, err := (launcher.HeadInfo{Secret: s}).SecretBytes(); err == nil {
			t.Errorf("secret %q accepted", s)
		}
	}
}
