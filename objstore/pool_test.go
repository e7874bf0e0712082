package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fill returns n bytes of a pattern that depends on seed.
func fill(n int64, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i>>12) ^ seed
	}
	return b
}

// inode returns the inode number of the file at path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// poolFiles returns the names of the pooled files in s's directory.
func poolFiles(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "~pool-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// reserve is Reserve that fails the test on error and checks recycled.
func reserve(t *testing.T, s *Store, name string, size int64, wantRecycled bool) {
	t.Helper()
	recycled, err := s.Reserve(name, size)
	if err != nil {
		t.Fatal(err)
	}
	if recycled != wantRecycled {
		t.Fatalf("Reserve(%s, %d): recycled = %v, want %v (pool: %d bytes)", name, size, recycled, wantRecycled, s.Pooled())
	}
}

// fillPool puts objects of the given sizes, then deletes them in order,
// leaving their files in the pool, oldest first.
func fillPool(t *testing.T, s *Store, sizes ...int64) {
	t.Helper()
	want := s.Pooled()
	for i, size := range sizes {
		put(t, s, fmt.Sprint("pooled-", i), fill(size, 0))
	}
	for i, size := range sizes {
		if err := s.Delete(fmt.Sprint("pooled-", i)); err != nil {
			t.Fatal(err)
		}
		want += size
	}
	if got := s.Pooled(); got != want {
		t.Fatalf("Pooled = %d, want %d", got, want)
	}
}

func TestRecycle(t *testing.T) {
	s := openStore(t, 16*MiB)
	const size = 2 * MiB
	old := fill(size, 1)
	put(t, s, "a", old)
	ino := inode(t, s.Path("a"))
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if s.Used() != 0 || s.Pooled() != size || s.Contains("a") || exists(s.Path("a")) {
		t.Errorf("after Delete: Used=%d Pooled=%d Contains=%v file=%v", s.Used(), s.Pooled(), s.Contains("a"), exists(s.Path("a")))
	}
	if p := poolFiles(t, s); len(p) != 1 {
		t.Fatalf("pool files %v, want one", p)
	}

	reserve(t, s, "b", size, true)
	if s.Used() != size || s.Pooled() != 0 || len(poolFiles(t, s)) != 0 {
		t.Errorf("after a recycled Reserve: Used=%d Pooled=%d pool files %v", s.Used(), s.Pooled(), poolFiles(t, s))
	}
	if got := inode(t, s.Path("b")); got != ino {
		t.Errorf("recycled file has inode %d, want %d (the deleted object's)", got, ino)
	}
	w, err := OpenWritable(s.Path("b"), size)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), old) {
		t.Error("recycled file does not hold the old bytes, so it was not reused")
	}
	data := fill(size, 2)
	copy(w.Bytes(), data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal("b"); err != nil {
		t.Fatal(err)
	}
	m := mustMap(t, s.Path("b"))
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("recycled object reads back wrong")
	}
	m.Close() // or Delete would not pool the file

	// Create recycles too, and hands back a mapping of the old file.
	if err := s.Delete("b"); err != nil {
		t.Fatal(err)
	}
	w, err = s.Create("c", size)
	if err != nil {
		t.Fatal(err)
	}
	if inode(t, w.Path()) != ino || s.Pooled() != 0 {
		t.Error("Create did not recycle the pooled file")
	}
	copy(w.Bytes(), old)
	w.Close()
	if err := s.Seal("c"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMap(t, s.Path("c")).Bytes(), old) {
		t.Error("object made by a recycling Create reads back wrong")
	}
}

func TestRecycleSizes(t *testing.T) {
	for _, c := range []struct {
		pooled, want int64
		recycled     bool
	}{
		{4 * MiB, 4 * MiB, true},
		{4 * MiB, 4*MiB - 1, true},
		{5 * MiB, 4 * MiB, true},       // exactly a quarter larger
		{5*MiB + 4096, 4 * MiB, false}, // a page more than that
		{5 * MiB, 4*MiB - 4, false},    // four bytes more than that
		{4 * MiB, 4*MiB + 1, false},    // one more page
		{MiB + 100, MiB + 4000, true},  // same pages: grown within the last one
		{MiB + 4000, MiB + 100, true},  // same pages: cut
		{2 * MiB, MiB, false},          // twice as large
		{2 * MiB, 0, false},
		{MiB, 600 * KiB, false},
		{3 * MiB / 2, 5 * MiB / 4, true},
		{3 * MiB / 2, 6*MiB/5 - 4, false},
	} {
		t.Run(fmt.Sprintf("%d-for-%d", c.pooled, c.want), func(t *testing.T) {
			s := openStore(t, 16*MiB)
			fillPool(t, s, c.pooled)
			reserve(t, s, "new", c.want, c.recycled)
			wantPooled := c.pooled
			if c.recycled {
				wantPooled = 0
				fi, err := os.Stat(s.Path("new"))
				if err != nil || fi.Size() != c.want {
					t.Fatalf("recycled file: %v, size %d, want %d", err, fi.Size(), c.want)
				}
				w, err := OpenWritable(s.Path("new"), c.want)
				if err != nil {
					t.Fatal(err)
				}
				w.Close()
				if err := s.Seal("new"); err != nil {
					t.Errorf("Seal of a recycled file: %v", err)
				}
			} else if exists(s.Path("new")) {
				t.Error("a reservation that was not recycled has a file")
			}
			if s.Pooled() != wantPooled || s.Used() != c.want {
				t.Errorf("Pooled=%d Used=%d, want %d and %d", s.Pooled(), s.Used(), wantPooled, c.want)
			}
		})
	}
}

// TestRecycleBestFit checks that Reserve takes the smallest file that fits.
func TestRecycleBestFit(t *testing.T) {
	s := openStore(t, 32*MiB)
	fillPool(t, s, 5*MiB, 4*MiB, 6*MiB)
	reserve(t, s, "x", 4*MiB, true)
	if s.Pooled() != 11*MiB {
		t.Errorf("Pooled = %d MiB, want 11 (the 4 MiB file taken)", s.Pooled()/MiB)
	}
	reserve(t, s, "y", 4*MiB, true) // the 5 MiB file, cut to 4
	if s.Pooled() != 6*MiB {
		t.Errorf("Pooled = %d MiB, want 6", s.Pooled()/MiB)
	}
	reserve(t, s, "z", 4*MiB, false) // 6 MiB is more than a quarter larger
	if s.Used() != 12*MiB || s.Used()+s.Pooled() > s.Limit() {
		t.Errorf("Used=%d Pooled=%d", s.Used(), s.Pooled())
	}
}

// TestRecycleInUse checks that a file still mapped or open anywhere is not
// pooled, so that its mappings keep their bytes.
func TestRecycleInUse(t *testing.T) {
	s := openStore(t, 16*MiB)
	const size = 2 * MiB
	data := fill(size, 3)
	put(t, s, "mapped", data)
	m := mustMap(t, s.Path("mapped"))
	if err := s.Delete("mapped"); err != nil {
		t.Fatal(err)
	}
	if s.Pooled() != 0 || len(poolFiles(t, s)) != 0 {
		t.Errorf("a mapped file was pooled: Pooled=%d files %v", s.Pooled(), poolFiles(t, s))
	}
	reserve(t, s, "next", size, false)
	w, err := CreateFile(s.Path("next"), size)
	if err != nil {
		t.Fatal(err)
	}
	copy(w.Bytes(), fill(size, 4))
	w.Close()
	if !bytes.Equal(m.Bytes(), data) {
		t.Error("the mapping of a deleted object changed")
	}
	m.Close()

	// A writer that has not closed its Writable.
	w, err = s.Create("writing", size)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := s.Seal("writing"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("writing"); err != nil {
		t.Fatal(err)
	}
	if s.Pooled() != 0 {
		t.Error("a file still mapped for writing was pooled")
	}

	// An open descriptor, without a mapping.
	put(t, s, "open", data)
	f, err := os.Open(s.Path("open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Delete("open"); err != nil {
		t.Fatal(err)
	}
	if s.Pooled() != 0 {
		t.Error("an open file was pooled")
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 1 { // "next"
		t.Errorf("%d files in the store, want 1", len(ents))
	}
}

// TestNotPooled checks what goes to the pool: only sealed objects of at
// least MinPoolSize, through Delete, while the pool has room.
func TestNotPooled(t *testing.T) {
	s := openStore(t, 128*MiB)
	put(t, s, "small", fill(MinPoolSize-1, 0))
	s.Delete("small")

	s.Reserve("released", MiB)
	w, err := CreateFile(s.Path("released"), MiB)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	s.Release("released")

	s.Reserve("unsealed", MiB)
	w, err = CreateFile(s.Path("unsealed"), MiB)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	s.Delete("unsealed")

	s.Reserve("badseal", 2*MiB)
	w, err = CreateFile(s.Path("badseal"), MiB)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if s.Seal("badseal") == nil {
		t.Fatal("Seal of a short file succeeded")
	}
	if s.Pooled() != 0 {
		t.Fatalf("Pooled = %d, want 0", s.Pooled())
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
		t.Fatalf("%d files left", len(ents))
	}

	for i := range MaxPoolFiles + 1 {
		put(t, s, fmt.Sprint("o", i), fill(MiB, 0))
	}
	for i := range MaxPoolFiles + 1 {
		if err := s.Delete(fmt.Sprint("o", i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Pooled() != MaxPoolFiles*MiB || len(poolFiles(t, s)) != MaxPoolFiles {
		t.Errorf("Pooled = %d MiB in %d files, want %d in %d", s.Pooled()/MiB, len(poolFiles(t, s)), MaxPoolFiles, MaxPoolFiles)
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != MaxPoolFiles {
		t.Errorf("%d files in the store, want %d", len(ents), MaxPoolFiles)
	}
}

// TestPoolEviction checks that Reserve unlinks pooled files, oldest first,
// when it needs their room.
func TestPoolEviction(t *testing.T) {
	s := openStore(t, 8*MiB)
	fillPool(t, s, 2*MiB, 2*MiB, 2*MiB)
	files := poolFiles(t, s)
	if len(files) != 3 || s.Pooled() != 6*MiB {
		t.Fatalf("pool %v, %d bytes", files, s.Pooled())
	}
	// 5 MiB fits no pooled file and needs two of them gone.
	reserve(t, s, "big", 5*MiB, false)
	if s.Pooled() != 2*MiB || s.Used() != 5*MiB {
		t.Errorf("after eviction: Pooled=%d Used=%d", s.Pooled(), s.Used())
	}
	newest := files[0]
	for _, f := range files { // ~pool-N with the largest N
		if len(f) > len(newest) || len(f) == len(newest) && f > newest {
			newest = f
		}
	}
	if left := poolFiles(t, s); len(left) != 1 || left[0] != newest {
		t.Errorf("pool files left %v, want [%s] (oldest evicted first)", left, newest)
	}
	// The remaining 2 MiB file is recycled for a 2 MiB object.
	reserve(t, s, "fits", 2*MiB, true)
	if s.Pooled() != 0 || s.Used() != 7*MiB {
		t.Errorf("Pooled=%d Used=%d", s.Pooled(), s.Used())
	}
}

// TestPoolFull checks that a reservation that does not fit even with the
// pool emptied fails with a *FullError about the live objects, and leaves
// the pool alone.
func TestPoolFull(t *testing.T) {
	s := openStore(t, 4*MiB)
	fillPool(t, s, MiB)
	reserve(t, s, "live", 3*MiB, false)
	_, err := s.Reserve("x", 2*MiB)
	var fe *FullError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFull) || *fe != (FullError{"x", 2 * MiB, 3 * MiB, 4 * MiB}) {
		t.Fatalf("Reserve that cannot fit: %v, want a *FullError with Used 3 MiB", err)
	}
	if want := "object store full: object x needs 2.0 MiB, 3.0 MiB of 4.0 MiB in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if s.Pooled() != MiB || len(poolFiles(t, s)) != 1 || s.Contains("x") {
		t.Errorf("a failed Reserve touched the pool: Pooled=%d files %v", s.Pooled(), poolFiles(t, s))
	}
	// What does fit takes the pooled file.
	reserve(t, s, "y", MiB, true)
	if s.Used() != 4*MiB || s.Pooled() != 0 {
		t.Errorf("Used=%d Pooled=%d", s.Used(), s.Pooled())
	}
}

func TestOpenWritable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if _, err := OpenWritable(path, 10); !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenWritable of a missing file: %v", err)
	}
	os.WriteFile(path, []byte("0123456789"), 0o600)
	if _, err := OpenWritable(path, 11); err == nil || !strings.Contains(err.Error(), "file has 10 bytes, want 11") {
		t.Errorf("OpenWritable with the wrong size: %v", err)
	}
	if _, err := OpenWritable(path, -1); err == nil {
		t.Error("OpenWritable of -1 bytes succeeded")
	}
	if _, err := OpenWritable(dir, 0); err == nil {
		t.Error("OpenWritable of a directory succeeded")
	}
	link := filepath.Join(dir, "link")
	os.Symlink(path, link)
	if _, err := OpenWritable(link, 10); err == nil {
		t.Error("OpenWritable followed a symlink")
	}
	w, err := OpenWritable(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.Bytes()) != "0123456789" || w.Path() != path {
		t.Errorf("Bytes %q, Path %s", w.Bytes(), w.Path())
	}
	copy(w.Bytes()[2:], "ab")
	if err := w.Close(); err != nil || w.Bytes() != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "01ab456789" {
		t.Errorf("file reads %q", b)
	}
	w, _ = OpenWritable(path, 10)
	if err := w.Abort(); err != nil || exists(path) {
		t.Errorf("Abort: %v, file left: %v", err, exists(path))
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	w, err = OpenWritable(empty, 0)
	if err != nil || w.Bytes() == nil || len(w.Bytes()) != 0 || w.Close() != nil {
		t.Errorf("OpenWritable of an empty file: %v", err)
	}
}

// TestCloseWithPool checks that Close removes pooled and recycled files.
func TestCloseWithPool(t *testing.T) {
	s := openStore(t, 16*MiB)
	fillPool(t, s, 2*MiB, 3*MiB)
	reserve(t, s, "c", 2*MiB, true) // recycled, not yet written
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(s.Dir()) {
		t.Errorf("Close left %s behind", s.Dir())
	}
	if s.Pooled() != 0 || s.Used() != 0 {
		t.Errorf("closed store: Used=%d Pooled=%d", s.Used(), s.Pooled())
	}
	if _, err := s.Reserve("d", 3*MiB); !errors.Is(err, ErrClosed) {
		t.Errorf("Reserve after Close: %v", err)
	}
}

// TestConcurrentRecycle puts, reads and deletes pooled-size objects from
// many goroutines, each sometimes holding a mapping across the next
// object's life, and checks that no object and no held mapping ever reads
// another's bytes, that used+pooled never exceeds the limit, and that the
// pool is all that is left at the end.
func TestConcurrentRecycle(t *testing.T) {
	const limit = 12 * MiB
	s := openStore(t, limit)
	sizes := []int64{MiB, MiB + 1000, MiB + 4000, 3 * MiB / 2, 2 * MiB, 3 * MiB}
	var recycled, full sync.Map // counts, for the log
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			pats := [2][]byte{bytes.Repeat([]byte{byte(2 * g)}, 3*MiB), bytes.Repeat([]byte{byte(2*g + 1)}, 3*MiB)}
			var held *Mapping
			var heldPat []byte
			defer func() {
				if held != nil {
					held.Close()
				}
			}()
			for i := range 40 {
				name := fmt.Sprintf("g%d-%d", g, i)
				size := sizes[r.IntN(len(sizes))]
				pat := pats[i%2][:size]
				rec, err := s.Reserve(name, size)
				if errors.Is(err, ErrFull) {
					full.Store(name, true)
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				if rec {
					recycled.Store(name, true)
				}
				s.mu.Lock()
				if s.used+s.pooled > limit {
					t.Errorf("used %d + pooled %d > limit %d", s.used, s.pooled, limit)
				}
				s.mu.Unlock()
				open := CreateFile
				if rec {
					open = OpenWritable
				}
				w, err := open(s.Path(name), size)
				if err != nil {
					t.Error(err)
					return
				}
				copy(w.Bytes(), pat)
				w.Close()
				if err := s.Seal(name); err != nil {
					t.Error(err)
					return
				}
				m, err := Map(s.Path(name))
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(m.Bytes(), pat) {
					t.Errorf("%s reads back wrong", name)
				}
				if held != nil {
					if !bytes.Equal(held.Bytes(), heldPat) {
						t.Errorf("a mapping held across Delete changed (%s)", held.Path())
					}
					held.Close()
					held = nil
				}
				if i%3 == 0 {
					held, heldPat = m, pat // hold it while deleting
				} else {
					m.Close()
				}
				if err := s.Delete(name); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	n := func(m *sync.Map) (k int) { m.Range(func(any, any) bool { k++; return true }); return k }
	t.Logf("%d reservations recycled, %d full", n(&recycled), n(&full))
	if n(&recycled) == 0 {
		t.Error("nothing was recycled")
	}
	if s.Used() != 0 || s.Count() != 0 {
		t.Errorf("after the storm: Used=%d Count=%d", s.Used(), s.Count())
	}
	ents, _ := os.ReadDir(s.Dir())
	var onDisk int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !strings.HasPrefix(e.Name(), "~pool-") {
			t.Errorf("left in the store: %s (%v)", e.Name(), err)
			continue
		}
		onDisk += fi.Size()
	}
	if onDisk != s.Pooled() || len(ents) > MaxPoolFiles {
		t.Errorf("%d pool files with %d bytes, Pooled() = %d", len(ents), onDisk, s.Pooled())
	}
	if err := s.Close(); err != nil || exists(s.Dir()) {
		t.Errorf("Close: %v, directory left: %v", err, exists(s.Dir()))
	}
}
