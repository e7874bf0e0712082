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

// Example_recycle shows the protocol between the agent, which owns the
// Store, and a writer in another process, and how a warm store hands a
// freed file to the next object.
func Example_recycle() {
	tmp, err := os.MkdirTemp("", "objstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	s, err := objstore.Open(objstore.Config{Dir: filepath.Join(tmp, "store"), Limit: 64 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	const size = 4 << 20 // at least objstore.MinPoolSize, so Delete keeps the file
	for _, name := range []string{"obj-1", "obj-2"} {
		// Agent: admit the object.
		recycled, err := s.Reserve(name, size)
		if err != nil {
			log.Fatal(err)
		}
		// Writer: open the file the agent's answer says to, write all of it.
		open := objstore.CreateFile
		if recycled {
			open = objstore.OpenWritable
		}
		w, err := open(s.Path(name), size)
		if err != nil {
			log.Fatal(err)
		}
		for i := range w.Bytes() {
			w.Bytes()[i] = name[len(name)-1]
		}
		w.Close()
		// Agent: seal; readers map it; when nobody needs it, delete it.
		if err := s.Seal(name); err != nil {
			log.Fatal(err)
		}
		if err := s.Delete(name); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: recycled %v; after Delete %d bytes used, %d pooled\n", name, recycled, s.Used(), s.Pooled())
	}
	// Output:
	// obj-1: recycled false; after Delete 0 bytes used, 4194304 pooled
	// obj-2: recycled true; after Delete 0 bytes used, 4194304 pooled
}
