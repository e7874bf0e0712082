package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func open(t *testing.T, limit int64) *Store {
	t.Helper()
	s, err := Open(Config{Dir: filepath.Join(t.TempDir(), "store"), Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConfig(t *testing.T) {
	err := Config{Dir: "rel", Limit: 0}.Validate()
	if err == nil || !strings.Contains(err.Error(), "not absolute") || !strings.Contains(err.Error(), "Limit") {
		t.Fatalf("Validate: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o600)
	if _, err := Open(Config{Dir: dir, Limit: 1 << 20}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty dir: %v", err)
	}
}

func TestReserveWriteReadDelete(t *testing.T) {
	s := open(t, 1<<20)
	w, err := OpenArena(s.ArenaPath(), s.Limit(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenArena(s.ArenaPath(), s.Limit(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	off, err := s.Reserve("a", 10000)
	if err != nil {
		t.Fatal(err)
	}
	if off%Align != 0 {
		t.Fatalf("offset %d not aligned", off)
	}
	b, _ := w.Writable(off, 10000)
	for i := range b {
		b[i] = byte(i)
	}
	if err := s.Seal("a"); err != nil {
		t.Fatal(err)
	}
	v, err := r.View(off, 10000)
	if err != nil || !bytes.Equal(v, b) {
		t.Fatalf("view differs: %v", err)
	}
	if got, size, ok := s.Lookup("a"); !ok || got != off || size != 10000 {
		t.Fatalf("lookup: %d %d %v", got, size, ok)
	}
	if _, err := s.Reserve("a", 1); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Release("a"); !errors.Is(err, ErrSealed) {
		t.Fatalf("release of sealed: %v", err)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if s.Used() != 0 || s.Count() != 0 {
		t.Fatalf("used %d count %d after delete", s.Used(), s.Count())
	}
	if err := s.Delete("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("double delete: %v", err)
	}
	// The freed extent is reused: its pages are already resident.
	off2, err := s.Reserve("b", 8000)
	if err != nil || off2 != off {
		t.Fatalf("reuse: off %d err %v, want %d", off2, err, off)
	}
	// Read-only views fault when written.
	func() {
		defer func() { recover() }()
		old := debugSetPanicOnFault(true)
		defer debugSetPanicOnFault(old)
		v[0] = 1
		t.Fatal("write to a read-only view did not fault")
	}()
}

func TestFullAndFragmented(t *testing.T) {
	s := open(t, 16*Align)
	for i := 0; i < 4; i++ {
		if _, err := s.Reserve(fmt.Sprint("o", i), 4*Align); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Reserve("big", 1)
	var fe *FullError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "object big needs 1 B") {
		t.Fatalf("full: %v", err)
	}
	s.Delete("o1")
	s.Delete("o3")
	_, err = s.Reserve("big", 8*Align)
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "largest free extent is 16.0 KiB") {
		t.Fatalf("fragmented: %v", err)
	}
	s.Delete("o2") // o1..o3 merge into one 12-page hole
	if off, err := s.Reserve("big", 8*Align); err != nil || off != 4*Align {
		t.Fatalf("after merge: %d %v", off, err)
	}
}

func TestConcurrent(t *testing.T) {
	s := open(t, 64<<20)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				name := fmt.Sprintf("g%d-%d", g, i)
				if _, err := s.Reserve(name, int64(1+i*37)); err != nil {
					t.Error(err)
					return
				}
				s.Seal(name)
				if err := s.Delete(name); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if s.Used() != 0 || len(s.free) != 1 {
		t.Fatalf("used %d, free list %v", s.Used(), s.free)
	}
}

func TestNoSpace(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if _, err := Open(Config{Dir: filepath.Join(dir, "s"), Limit: 64 << 20}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("limit over the filesystem: %v", err)
	}
	s, err := Open(Config{Dir: filepath.Join(dir, "s"), Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Fill the tmpfs behind the store's back.
	os.WriteFile(filepath.Join(dir, "hog"), make([]byte, 900<<10), 0o600)
	_, err = s.Reserve("x", 512<<10)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "tmpfs") {
		t.Fatalf("want ErrNoSpace naming the tmpfs, got %v", err)
	}
	if s.Used() != 0 {
		t.Fatal("failed reservation kept bytes")
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(Config{Dir: dir, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Reserve("a", 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
	if _, err := s.Reserve("b", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	s.Close()
	if _, err := OpenArena(filepath.Join(dir, ArenaName), 1<<20, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open removed arena: %v", err)
	}
}

func TestNames(t *testing.T) {
	s := open(t, 1<<20)
	for _, bad := range []string{"", ".", "..", "a/b", strings.Repeat("x", MaxNameLen+1), "sp ace"} {
		if _, err := s.Reserve(bad, 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Put-sized copies into a warm arena against memcpy into a reused buffer.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int64{1 << 20, 256 << 20} {
		b.Run(human(size), func(b *testing.B) {
			s, err := Open(Config{Dir: filepath.Join(b.TempDir(), "s"), Limit: 2 * size})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a, _ := OpenArena(s.ArenaPath(), s.Limit(), true)
			defer a.Close()
			src := make([]byte, size)
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off, err := s.Reserve("x", size)
				if err != nil {
					b.Fatal(err)
				}
				w, _ := a.Writable(off, size)
				copy(w, src)
				s.Seal("x")
				s.Delete("x")
			}
		})
	}
}

func BenchmarkMemcpy(b *testing.B) {
	for _, size := range []int64{1 << 20, 256 << 20} {
		b.Run(human(size), func(b *testing.B) {
			src, dst := make([]byte, size), make([]byte, size)
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				copy(dst, src)
			}
		})
	}
}
