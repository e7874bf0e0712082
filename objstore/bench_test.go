package objstore

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Run with
//
//	go test -run '^$' -bench 'CreateWrite|Memcpy|PutRecycled' -benchtime 20x ./objstore/
//
// and record the machine next to the numbers (see createMapFlags and
// openMapFlags). Add -args -benchdir=DIR to run them on another
// filesystem, such as a tmpfs mounted with huge=within_size.

var benchDirFlag = flag.String("benchdir", "", "parent `directory` for benchmark stores (default: where DefaultDir puts them)")

const benchSize = 256 << 20

func benchSource() []byte {
	src := make([]byte, benchSize)
	for i := range src {
		src[i] = byte(i)
	}
	return src
}

// BenchmarkCreateWrite creates a fresh object file on the node's tmpfs,
// fills it and unmaps it, with and without MAP_POPULATE. Removing the file
// is not timed.
func BenchmarkCreateWrite(b *testing.B) {
	src := benchSource()
	path := filepath.Join(benchDir(b), "obj")
	for _, c := range []struct {
		name  string
		flags int
	}{{"populate", unix.MAP_POPULATE}, {"no-populate", 0}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				w, err := createFile(path, benchSize, c.flags)
				if err != nil {
					b.Fatal(err)
				}
				copy(w.Bytes(), src)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.Remove(path)
				b.StartTimer()
			}
		})
	}
}

// putSizes are the object sizes of BenchmarkPutRecycled and
// BenchmarkMemcpy/reused.
var putSizes = []struct {
	name string
	size int
}{{"256MiB", 256 << 20}, {"1GiB", 1 << 30}}

// BenchmarkPutRecycled puts an object the way a warm store does: Reserve
// (which hands back the file the last Delete pooled), OpenWritable, copy,
// Close, Seal, Delete, all timed. Compare with BenchmarkMemcpy/reused.
// The prefault variants are the ways to map the resident file: nothing
// (one minor fault per page on first write), MAP_POPULATE, and
// madvise(MADV_POPULATE_WRITE) after mmap.
func BenchmarkPutRecycled(b *testing.B) {
	for _, sz := range putSizes {
		src := make([]byte, sz.size)
		for i := range src {
			src[i] = byte(i)
		}
		for _, c := range []struct {
			name    string
			flags   int
			madvise bool
		}{{"populate", unix.MAP_POPULATE, false}, {"no-populate", 0, false}, {"madv-populate-write", 0, true}} {
			b.Run(sz.name+"/"+c.name, func(b *testing.B) {
				s, err := Open(Config{Dir: filepath.Join(benchDir(b), "store"), Limit: 2 * int64(sz.size)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				put := func(want bool) {
					recycled, err := s.Reserve("obj", int64(sz.size))
					if err != nil {
						b.Fatal(err)
					}
					if recycled != want {
						b.Fatalf("recycled = %v, want %v", recycled, want)
					}
					var w *Writable
					if recycled {
						w, err = openWritable(s.Path("obj"), int64(sz.size), c.flags)
					} else {
						w, err = CreateFile(s.Path("obj"), int64(sz.size))
					}
					if err != nil {
						b.Fatal(err)
					}
					if c.madvise {
						if err := unix.Madvise(w.Bytes(), unix.MADV_POPULATE_WRITE); err != nil {
							b.Fatal(err)
						}
					}
					copy(w.Bytes(), src)
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
					if err := s.Seal("obj"); err != nil {
						b.Fatal(err)
					}
					if err := s.Delete("obj"); err != nil {
						b.Fatal(err)
					}
				}
				put(false) // warm the store: the file goes to the pool
				b.SetBytes(int64(sz.size))
				for b.Loop() {
					put(true)
				}
			})
		}
	}
}

// benchDir returns a new directory under -benchdir, by default beside
// DefaultDir's (tmpfs), removed when b ends.
func benchDir(b *testing.B) string {
	parent := *benchDirFlag
	if parent == "" {
		parent = filepath.Dir(DefaultDir("bench", "bench"))
	}
	dir, err := os.MkdirTemp(parent, "objstore-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var sink []byte

// BenchmarkMemcpy copies the same bytes into memory, for scale: go-slice
// is a new Go slice each time (after the first iterations the Go heap
// hands back pages it already has, so this is mostly zeroing plus
// copying); anon-mmap is a new anonymous mapping each time, so every page
// comes fresh from the kernel, as with a new object file; reused copies
// into one resident Go buffer, the bound for BenchmarkPutRecycled.
func BenchmarkMemcpy(b *testing.B) {
	for _, sz := range putSizes {
		b.Run("reused/"+sz.name, func(b *testing.B) {
			src := make([]byte, sz.size)
			for i := range src {
				src[i] = byte(i)
			}
			dst := make([]byte, sz.size)
			copy(dst, src) // fault it in
			b.SetBytes(int64(sz.size))
			for b.Loop() {
				copy(dst, src)
			}
		})
	}
	src := benchSource()
	b.Run("go-slice", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			dst := make([]byte, benchSize)
			copy(dst, src)
			sink = dst
		}
		sink = nil
	})
	b.Run("anon-mmap", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			dst, err := unix.Mmap(-1, 0, benchSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				b.Fatal(err)
			}
			copy(dst, src)
			unix.Munmap(dst)
		}
	})
}
