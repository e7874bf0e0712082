package raygo_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/raygo/raygo"
)

// floats makes an 8 MiB slice whose contents depend on i.
func floats(i int) []float64 {
	xs := make([]float64, 1<<20)
	for j := range xs {
		xs[j] = float64(i*1_000_003 + j)
	}
	return xs
}

func floatsSum(i int) float64 {
	s := 0.0
	for _, x := range floats(i) {
		s += x
	}
	return s
}

// spillFiles lists the object files in the spill directories under tmp.
func spillFiles(t *testing.T, tmp string) (dirs, files []string) {
	t.Helper()
	dirs, _ = filepath.Glob(filepath.Join(tmp, "raygo-spill-*"))
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "owner" {
				files = append(files, filepath.Join(d, e.Name()))
			}
		}
	}
	return dirs, files
}

func TestSpilling(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := initLocal(t, raygo.ObjectStoreMemory(64<<20))

	// Three times the store, every object still referenced.
	const n = 24
	refs := make([]raygo.Ref[[]float64], n)
	for i := range refs {
		r, err := raygo.Put(ctx, floats(i))
		if err != nil {
			t.Fatalf("put %d of %d: %v", i, n, err)
		}
		refs[i] = r
	}
	if used := storeUsed(t, ctx); used > 64<<20 {
		t.Fatalf("store holds %d bytes, more than its limit", used)
	}
	if _, files := spillFiles(t, tmp); len(files) < n-8 {
		t.Fatalf("%d spill files after putting %d objects into a store for 7", len(files), n)
	}

	// Tasks get spilled arguments (the oldest objects are on disk).
	for i := 0; i < 3; i++ {
		if got, want := get(t, ctx, sumFloats.Remote(refs[i])), floatsSum(i); got != want {
			t.Fatalf("task on spilled object %d: sum %g, want %g", i, got, want)
		}
	}
	// A task's large result needs room in the full store too.
	if got := get(t, ctx, makeBig.Remote(raygo.Val(1<<20))); len(got) != 1<<20 || got[12345] != 12345 {
		t.Fatal("big result wrong")
	}

	// Every object reads back whole, spilled or not.
	for i, r := range refs {
		xs := get(t, ctx, r)
		want := floats(i)
		if len(xs) != len(want) {
			t.Fatalf("object %d has %d elements, want %d", i, len(xs), len(want))
		}
		for j := 0; j < len(xs); j += 4099 {
			if xs[j] != want[j] {
				t.Fatalf("object %d element %d = %g, want %g", i, j, xs[j], want[j])
			}
		}
		if xs[len(xs)-1] != want[len(want)-1] {
			t.Fatalf("object %d last element = %g, want %g", i, xs[len(xs)-1], want[len(want)-1])
		}
	}

	// Dropping them frees the store and deletes the spill files.
	refs = nil
	runtime.GC()
	waitFor(t, func() bool {
		_, files := spillFiles(t, tmp)
		return storeUsed(t, ctx) == 0 && len(files) == 0
	})

	raygo.Shutdown(context.Background())
	if dirs, _ := spillFiles(t, tmp); len(dirs) != 0 {
		t.Fatalf("spill directories left after Shutdown: %v", dirs)
	}
}

func TestSpillLimit(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := initLocal(t, raygo.ObjectStoreMemory(64<<20), raygo.ObjectSpillLimit(32<<20))

	// 7 objects fit in the store and 3 on disk; the next put fails.
	var refs []raygo.Ref[[]float64]
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		var r raygo.Ref[[]float64]
		if r, err = raygo.Put(ctx, floats(i)); err == nil {
			refs = append(refs, r)
		}
	}
	if err == nil {
		t.Fatalf("put 160 MiB into 64 MiB of store and 32 MiB of spill space")
	}
	if msg := err.Error(); !strings.Contains(msg, "object store full") || !strings.Contains(msg, "spill disk full") {
		t.Fatalf("put beyond the spill limit: %v", err)
	}
	if len(refs) != 10 {
		t.Fatalf("%d puts succeeded, want 10 (7 in memory, 3 spilled)", len(refs))
	}
	// What was stored is intact.
	for i, r := range refs {
		if xs := get(t, ctx, r); xs[12345] != floats(i)[12345] {
			t.Fatalf("object %d is wrong", i)
		}
	}
	// An object larger than the store never fits, whatever the disk holds.
	if _, err := raygo.Put(ctx, make([]byte, 100<<20)); err == nil || !strings.Contains(err.Error(), "object store full") {
		t.Fatalf("oversized put: %v", err)
	}
}
