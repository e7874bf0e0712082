package objstore_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/raygo/raygo/objstore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "objstore-example-")
	defer os.RemoveAll(dir)

	// The node agent owns the store.
	store, err := objstore.Open(objstore.Config{Dir: filepath.Join(dir, "node1"), Limit: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	// A writer (any process on the node) maps the arena once.
	arena, _ := objstore.OpenArena(store.ArenaPath(), store.Limit(), true)
	defer arena.Close()

	off, _ := store.Reserve("o1.1.1.0", 5)
	w, _ := arena.Writable(off, 5)
	copy(w, "hello")
	store.Seal("o1.1.1.0")

	// Readers get a view: no copy.
	v, _ := arena.View(off, 5)
	fmt.Println(string(v), store.Count())
	store.Delete("o1.1.1.0")
	fmt.Println(store.Count())
	// Output:
	// hello 1
	// 0
}
