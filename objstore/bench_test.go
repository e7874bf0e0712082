package objstore

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Run with
//
//	go test -run '^$' -bench 'CreateWrite|Memcpy' -benchtime 20x ./objstore/
//
// and record the machine next to the numbers (see createMapFlags).

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
	dir, err := os.MkdirTemp(filepath.Dir(DefaultDir("bench", "bench")), "objstore-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "obj")
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

var sink []byte

// BenchmarkMemcpy copies the same bytes into fresh memory, for scale:
// go-slice is a new Go slice each time (after the first iterations the Go
// heap hands back pages it already has, so this is mostly zeroing plus
// copying); anon-mmap is a new anonymous mapping each time, so every page
// comes fresh from the kernel, as with a new object file.
func BenchmarkMemcpy(b *testing.B) {
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
