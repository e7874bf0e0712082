package objstore_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/raygo/raygo/objstore"
)

func Example() {
	tmp, err := os.MkdirTemp("", "objstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// The node agent opens the store (normally at objstore.DefaultDir).
	s, err := objstore.Open(objstore.Config{Dir: filepath.Join(tmp, "store"), Limit: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A producer writes an object straight into shared memory...
	msg := []byte("hello from shared memory")
	w, err := s.Create("obj-1", int64(len(msg)))
	if err != nil {
		log.Fatal(err)
	}
	copy(w.Bytes(), msg)
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// ...the agent seals it...
	if err := s.Seal("obj-1"); err != nil {
		log.Fatal(err)
	}

	// ...and any process on the node maps it without copying.
	m, err := objstore.Map(s.Path("obj-1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%d of %d bytes used)\n", m.Bytes(), s.Used(), s.Limit())
	m.Close()

	if err := s.Delete("obj-1"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("objects left:", s.Count())
	// Output:
	// hello from shared memory (24 of 1048576 bytes used)
	// objects left: 0
}
