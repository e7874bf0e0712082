package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

// openStore opens a store in a fresh directory that the test removes.
func openStore(t *testing.T, limit int64) *Store {
	t.Helper()
	s, err := Open(Config{Dir: filepath.Join(t.TempDir(), "store"), Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// put creates, fills and seals an object through s.
func put(t *testing.T, s *Store, name string, data []byte) {
	t.Helper()
	w, err := s.Create(name, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	copy(w.Bytes(), data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(name); err != nil {
		t.Fatal(err)
	}
}

func mustMap(t *testing.T, path string) *Mapping {
	t.Helper()
	m, err := Map(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{Config{Dir: "/dev/shm/x", Limit: 1}, nil},
		{Config{}, []string{"Dir is empty", "Limit is 0"}},
		{Config{Dir: "rel/dir", Limit: -1}, []string{`"rel/dir" is not absolute`, "Limit is -1"}},
	} {
		err := c.cfg.Validate()
		if (err == nil) != (c.want == nil) {
			t.Errorf("%+v: Validate() = %v", c.cfg, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: Validate() = %q, want it to contain %q", c.cfg, err, w)
			}
		}
	}
	if _, err := Open(Config{}); err == nil {
		t.Error("Open(Config{}) succeeded")
	}
}

func TestOpenDir(t *testing.T) {
	tmp := t.TempDir()

	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{Dir: empty, Limit: MiB})
	if err != nil {
		t.Fatalf("Open on an empty existing directory: %v", err)
	}
	if s.Dir() != empty || s.Limit() != MiB {
		t.Errorf("Dir, Limit = %s, %d", s.Dir(), s.Limit())
	}
	s.Close()

	full := filepath.Join(tmp, "full")
	os.Mkdir(full, 0o700)
	os.WriteFile(filepath.Join(full, "stale"), nil, 0o600)
	if _, err := Open(Config{Dir: full, Limit: MiB}); err == nil || !strings.Contains(err.Error(), full) {
		t.Errorf("Open on a non-empty directory: err = %v, want one naming %s", err, full)
	}

	file := filepath.Join(tmp, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(Config{Dir: file, Limit: MiB}); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Open on a file: err = %v, want one naming %s", err, file)
	}

	created := filepath.Join(tmp, "new")
	s = openStoreAt(t, created)
	fi, err := os.Stat(created)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

func openStoreAt(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, Limit: MiB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDefaultDir(t *testing.T) {
	d := DefaultDir("c1", "node/7")
	if filepath.Base(d) != "raygo-c1-node_7" || !filepath.IsAbs(d) {
		t.Errorf("DefaultDir = %s", d)
	}
}

func TestLimitAccounting(t *testing.T) {
	s := openStore(t, 4*MiB)
	used := int64(32 * MiB / 10)
	if _, err := s.Reserve("big", used); err != nil {
		t.Fatal(err)
	}
	_, err := s.Reserve("X", MiB)
	want := "object store full: object X needs 1.0 MiB, 3.2 MiB of 4.0 MiB in use"
	if err == nil || err.Error() != want {
		t.Fatalf("Reserve over the limit: %v\nwant %s", err, want)
	}
	var fe *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &fe) || *fe != (FullError{"X", MiB, used, 4 * MiB}) {
		t.Errorf("Reserve over the limit: %#v, want a *FullError matching ErrFull", err)
	}
	if s.Contains("X") || s.Used() != used || s.Count() != 1 {
		t.Errorf("after a failed Reserve: Contains=%v Used=%d Count=%d", s.Contains("X"), s.Used(), s.Count())
	}

	// Exactly filling the store is allowed; one more byte is not.
	if _, err := s.Reserve("rest", 4*MiB-used); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve("one", 1); !errors.Is(err, ErrFull) {
		t.Errorf("Reserve of 1 byte in a full store: %v", err)
	}
	if _, err := s.Reserve("zero", 0); err != nil {
		t.Errorf("Reserve of 0 bytes in a full store: %v", err)
	}
	if _, err := s.Reserve("neg", -1); err == nil {
		t.Error("Reserve of -1 bytes succeeded")
	}

	for _, n := range []string{"big", "rest", "zero"} {
		if err := s.Delete(n); err != nil {
			t.Fatal(err)
		}
	}
	if s.Used() != 0 || s.Count() != 0 {
		t.Errorf("after deleting everything: Used=%d Count=%d", s.Used(), s.Count())
	}
	if err := s.Delete("big"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of a deleted object: %v", err)
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 30: "5.0 GiB", 1 << 62: "4.0 EiB",
	} {
		if got := human(n); got != want {
			t.Errorf("human(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	s := openStore(t, MiB)
	long := strings.Repeat("a", MaxNameLen)
	for _, name := range []string{"a", "A.b-c_9", long, ".hidden"} {
		if _, err := s.Reserve(name, 1); err != nil {
			t.Errorf("Reserve(%q): %v", name, err)
		}
		if p := s.Path(name); p != filepath.Join(s.Dir(), name) {
			t.Errorf("Path(%q) = %q", name, p)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x", "a b", "é", "a\x00", long + "a", "~deleted-1", "~pool-1"} {
		if _, err := s.Reserve(name, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Reserve(%q): %v, want ErrInvalidName", name, err)
		}
		if p := s.Path(name); p != "" {
			t.Errorf("Path(%q) = %q, want \"\"", name, p)
		}
		for op, f := range map[string]func(string) error{"Seal": s.Seal, "Release": s.Release, "Delete": s.Delete} {
			if err := f(name); !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s(%q): %v, want ErrInvalidName", op, name, err)
			}
		}
		if _, err := s.Create(name, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if s.Count() != 4 {
		t.Errorf("Count = %d, want 4", s.Count())
	}
}

func TestDuplicate(t *testing.T) {
	s := openStore(t, MiB)
	put(t, s, "obj", []byte("first"))
	if _, err := s.Reserve("obj", 1); !errors.Is(err, ErrExists) {
		t.Errorf("Reserve of an existing name: %v", err)
	}
	if _, err := s.Create("obj", 1); !errors.Is(err, ErrExists) {
		t.Errorf("Create of an existing name: %v", err)
	}
	if _, err := CreateFile(s.Path("obj"), 1); !errors.Is(err, ErrExists) || !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateFile on an existing file: %v", err)
	}
	if s.Used() != 5 {
		t.Errorf("Used = %d, want 5", s.Used())
	}

	// A deleted name can be used again at once, and the new file survives
	// the old one's removal.
	m := mustMap(t, s.Path("obj"))
	if err := s.Delete("obj"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "obj", []byte("second"))
	if got := string(mustMap(t, s.Path("obj")).Bytes()); got != "second" {
		t.Errorf("new object reads %q", got)
	}
	if got := string(m.Bytes()); got != "first" {
		t.Errorf("mapping of the deleted object reads %q", got)
	}
}

func TestCreateSealMap(t *testing.T) {
	s := openStore(t, 8*MiB)
	data := make([]byte, 3*MiB+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	put(t, s, "obj", data)
	if !s.Contains("obj") || s.Used() != int64(len(data)) || s.Count() != 1 {
		t.Errorf("Contains=%v Used=%d Count=%d", s.Contains("obj"), s.Used(), s.Count())
	}
	if err := s.Seal("obj"); err != nil {
		t.Errorf("second Seal: %v", err)
	}
	fi, err := os.Stat(s.Path("obj"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("object file: %v, %v; want mode 0600", fi.Mode(), err)
	}

	m := mustMap(t, s.Path("obj"))
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("mapping differs from what was written")
	}
	if m.Path() != s.Path("obj") {
		t.Errorf("Mapping.Path = %s", m.Path())
	}

	if err := s.Delete("obj"); err != nil {
		t.Fatal(err)
	}
	if exists(s.Path("obj")) || s.Contains("obj") || s.Used() != 0 {
		t.Error("Delete left the object behind")
	}
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("mapping changed after Delete")
	}
	if err := m.Close(); err != nil || m.Bytes() != nil || m.Close() != nil {
		t.Errorf("Mapping.Close: %v, Bytes after Close = %v", err, m.Bytes() != nil)
	}

	_, err = Map(s.Path("obj"))
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), s.Path("obj")) {
		t.Errorf("Map of a missing file: %v, want ErrNotFound naming the path", err)
	}
	if _, err := Map(s.Dir()); err == nil {
		t.Error("Map of a directory succeeded")
	}
}

func TestZeroSize(t *testing.T) {
	s := openStore(t, MiB)
	w, err := s.Create("empty", 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := w.Bytes(); b == nil || len(b) != 0 {
		t.Errorf("Bytes = %v, want empty and non-nil", b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal("empty"); err != nil {
		t.Fatal(err)
	}
	m := mustMap(t, s.Path("empty"))
	if b := m.Bytes(); b == nil || len(b) != 0 {
		t.Errorf("Mapping.Bytes = %v, want empty and non-nil", b)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestZeroCopy checks that mappings share pages with the writer: a write
// through a Writable that is still open shows in two mappings made before it.
func TestZeroCopy(t *testing.T) {
	s := openStore(t, MiB)
	w, err := s.Create("obj", 64*KiB)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m1, m2 := mustMap(t, s.Path("obj")), mustMap(t, s.Path("obj"))
	if m1.Bytes()[40000] != 0 {
		t.Fatal("new object is not zeroed")
	}
	w.Bytes()[40000] = 42
	copy(w.Bytes()[100:], "hello")
	for i, m := range []*Mapping{m1, m2} {
		if b := m.Bytes(); b[40000] != 42 || string(b[100:105]) != "hello" {
			t.Errorf("mapping %d does not see the write", i+1)
		}
	}
}

func TestMappingReadOnly(t *testing.T) {
	s := openStore(t, MiB)
	put(t, s, "obj", []byte("constant"))
	m := mustMap(t, s.Path("obj"))
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if recover() == nil {
				t.Error("writing to a Mapping did not fault")
			}
		}()
		m.Bytes()[0] = 'X'
	}()
	if string(m.Bytes()) != "constant" {
		t.Errorf("mapping reads %q", m.Bytes())
	}
}

func TestSealWrongSize(t *testing.T) {
	s := openStore(t, MiB)
	if _, err := s.Reserve("obj", 100); err != nil {
		t.Fatal(err)
	}
	// Another process creates the file, with the wrong size.
	w, err := CreateFile(s.Path("obj"), 50)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	err = s.Seal("obj")
	if err == nil || !strings.Contains(err.Error(), "has 50 bytes, 100 were reserved") {
		t.Errorf("Seal of a short file: %v", err)
	}
	if s.Contains("obj") || s.Used() != 0 || exists(s.Path("obj")) {
		t.Error("a failed Seal kept the reservation or the file")
	}

	// No file at all.
	s.Reserve("nofile", 10)
	if err := s.Seal("nofile"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Seal without a file: %v", err)
	}
	if s.Contains("nofile") || s.Used() != 0 {
		t.Error("a failed Seal kept the reservation")
	}

	if err := s.Seal("unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Seal of an unknown name: %v", err)
	}
}

func TestReleaseAndAbort(t *testing.T) {
	s := openStore(t, MiB)
	s.Reserve("obj", 100)
	w, err := CreateFile(s.Path("obj"), 100)
	if err != nil {
		t.Fatal(err)
	}
	w.Close() // the writer died after writing part of it
	if err := s.Release("obj"); err != nil {
		t.Fatal(err)
	}
	if s.Contains("obj") || s.Used() != 0 || exists(s.Path("obj")) {
		t.Error("Release kept the reservation or the file")
	}
	if err := s.Release("obj"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Release: %v", err)
	}

	put(t, s, "sealed", []byte("x"))
	if err := s.Release("sealed"); !errors.Is(err, ErrSealed) || !s.Contains("sealed") {
		t.Errorf("Release of a sealed object: %v", err)
	}

	w, err = s.Create("aborted", 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil || exists(w.Path()) || w.Bytes() != nil {
		t.Errorf("Abort: %v; file left: %v", err, exists(w.Path()))
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := s.Seal("aborted"); err == nil || s.Contains("aborted") {
		t.Errorf("Seal after Abort: %v", err)
	}

	if _, err := CreateFile(filepath.Join(s.Dir(), "neg"), -1); err == nil {
		t.Error("CreateFile of -1 bytes succeeded")
	}
}

func TestClose(t *testing.T) {
	s := openStore(t, MiB)
	put(t, s, "sealed", []byte("sealed data"))
	s.Reserve("reserved", 10)
	w, err := CreateFile(s.Path("reserved"), 10) // still being written
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	os.WriteFile(filepath.Join(s.Dir(), "stray"), []byte("?"), 0o600)
	m := mustMap(t, s.Path("sealed"))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(s.Dir()) {
		ents, _ := os.ReadDir(s.Dir())
		t.Errorf("Close left %s behind with %d entries", s.Dir(), len(ents))
	}
	if string(m.Bytes()) != "sealed data" {
		t.Error("mapping changed after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Reserve("x", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Reserve after Close: %v", err)
	}
	if err := s.Delete("sealed"); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	if s.Contains("sealed") || s.Used() != 0 || s.Count() != 0 {
		t.Error("a closed store still reports objects")
	}
}

// TestNoSpace fills a 1 MiB tmpfs. It needs to mount one (root, or
// CAP_SYS_ADMIN) and skips otherwise.
func TestNoSpace(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })

	if _, err := Open(Config{Dir: filepath.Join(dir, "store"), Limit: 2 * MiB}); err == nil ||
		!strings.Contains(err.Error(), "exceeds the 1.0 MiB filesystem") {
		t.Errorf("Open with a Limit above the filesystem size: %v", err)
	}
	if exists(filepath.Join(dir, "store")) {
		t.Error("a failed Open left its directory behind")
	}

	w, err := CreateFile(filepath.Join(dir, "fits"), 600*KiB)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	path := filepath.Join(dir, "too-big")
	_, err = CreateFile(path, 600*KiB)
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("CreateFile on a full tmpfs: %v, want ErrNoSpace", err)
	}
	for _, want := range []string{path, "600.0 KiB needed", "of 1.0 MiB free on the tmpfs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if exists(path) {
		t.Error("a failed CreateFile left its file behind")
	}
	t.Log(err)
}

// TestConcurrent hammers one store from many goroutines and checks that
// the accounting never goes over the limit and returns to zero.
func TestConcurrent(t *testing.T) {
	const limit = 10 * KiB
	s := openStore(t, limit)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 0))
			for i := range 200 {
				name := fmt.Sprintf("g%d-%d", g, i)
				size := r.Int64N(2 * KiB)
				if i%10 == 0 { // sometimes with a real file
					w, err := s.Create(name, size)
					if errors.Is(err, ErrFull) {
						continue
					} else if err != nil {
						t.Error(err)
						return
					}
					w.Close()
					if err := s.Seal(name); err != nil {
						t.Error(err)
					}
				} else if _, err := s.Reserve(name, size); errors.Is(err, ErrFull) {
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				if u := s.Used(); u > limit {
					t.Errorf("Used = %d > limit %d", u, limit)
				}
				if err := s.Delete(name); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s.Used() != 0 || s.Count() != 0 {
		t.Errorf("after the storm: Used=%d Count=%d", s.Used(), s.Count())
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
		t.Errorf("%d files left in the store directory", len(ents))
	}
}
