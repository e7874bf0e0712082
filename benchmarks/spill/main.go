// Command spill measures whether compressing spilled objects pays: the
// time to write (and read back) an object to local disk raw, with s2 and
// with zstd, for numeric data of two kinds. Compression pays only when the
// disk is slower than the compressor.
//
//	go run ./benchmarks/spill [-dir DIR] [-mib 64]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory to spill into (use the node's local disk)")
	mib := flag.Int("mib", 64, "object size in MiB")
	flag.Parse()
	n := *mib << 20 / 8
	smooth := make([]float64, n) // a simulation field: neighbouring values close
	noisy := make([]float64, n)  // measurements: full-entropy mantissas
	counts := make([]float64, n) // small integers stored as float64
	r := rand.New(rand.NewSource(1))
	for i := range smooth {
		smooth[i] = math.Sin(float64(i)/1000) * 100
		noisy[i] = r.NormFloat64()
		counts[i] = float64(r.Intn(100))
	}
	fmt.Printf("%-8s %-6s %10s %10s %10s %8s\n", "data", "codec", "write MB/s", "read MB/s", "size MiB", "ratio")
	for _, d := range []struct {
		name string
		xs   []float64
	}{{"smooth", smooth}, {"noisy", noisy}, {"counts", counts}} {
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d.xs))), len(d.xs)*8)
		for _, c := range []string{"none", "s2", "zstd"} {
			w, rd, size := measure(*dir, c, raw)
			fmt.Printf("%-8s %-6s %10.0f %10.0f %10.1f %8.2f\n", d.name, c, w, rd, float64(size)/(1<<20), float64(len(raw))/float64(size))
		}
	}
}

// measure writes raw through codec c to a file (fsync'd: a spill must not
// sit in the page cache only) and reads it back, returning MB/s of the
// uncompressed bytes and the file's size.
func measure(dir, c string, raw []byte) (float64, float64, int64) {
	path := filepath.Join(dir, "raygo-spill-bench-"+c)
	defer os.Remove(path)
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	var w io.WriteCloser = nopCloser{f}
	switch c {
	case "s2":
		w = s2.NewWriter(f)
	case "zstd":
		w, _ = zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	if _, err := w.Write(raw); err != nil {
		log.Fatal(err)
	}
	w.Close()
	f.Sync()
	f.Close()
	wt := time.Since(start)
	st, _ := os.Stat(path)
	start = time.Now()
	b, _ := os.ReadFile(path)
	var out []byte
	switch c {
	case "none":
		out = b
	case "s2":
		out, _ = io.ReadAll(s2.NewReader(bytes.NewReader(b)))
	case "zstd":
		zr, _ := zstd.NewReader(bytes.NewReader(b))
		out, _ = io.ReadAll(zr)
		zr.Close()
	}
	rt := time.Since(start)
	if !bytes.Equal(out, raw) {
		log.Fatalf("%s: round trip differs", c)
	}
	mb := float64(len(raw)) / 1e6
	return mb / wt.Seconds(), mb / rt.Seconds(), st.Size()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
