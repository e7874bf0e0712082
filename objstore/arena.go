package objstore

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Arena is one process's mapping of a node's arena: a read-only view for
// reading objects and, for writers, a read-write one. Both stay mapped for
// the life of the Arena, so slices handed out never fault; an object's
// bytes are its own only while the object exists (a freed extent is
// reused), which the runtime guarantees while a reference is held.
type Arena struct {
	path string
	size int64
	ro   []byte
	rw   []byte
}

// OpenArena maps the arena at path (size bytes). With writable, it also
// maps it read-write for Writable.
func OpenArena(path string, size int64, writable bool) (*Arena, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("objstore: open arena %s: %w (%w)", path, ErrNotFound, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("objstore: open arena %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("objstore: stat arena %s: %w", path, err)
	}
	if st.Size != size || size <= 0 {
		return nil, fmt.Errorf("objstore: arena %s is %d bytes, want %d", path, st.Size, size)
	}
	a := &Arena{path: path, size: size}
	a.ro, err = unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("objstore: map arena %s: %w", path, err)
	}
	if writable {
		a.rw, err = unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			unix.Munmap(a.ro)
			return nil, fmt.Errorf("objstore: map arena %s for writing: %w", path, err)
		}
	}
	return a, nil
}

// Path is the arena file.
func (a *Arena) Path() string { return a.path }

// View returns [off, off+n) read-only: writing to it faults.
func (a *Arena) View(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > a.size || a.ro == nil {
		return nil, fmt.Errorf("objstore: view [%d, %d) outside arena %s (%d bytes)", off, off+n, a.path, a.size)
	}
	return a.ro[off : off+n : off+n], nil
}

// Writable returns [off, off+n) for writing a reserved object.
func (a *Arena) Writable(off, n int64) ([]byte, error) {
	if a.rw == nil {
		return nil, fmt.Errorf("objstore: arena %s was opened read-only", a.path)
	}
	if off < 0 || n < 0 || off+n > a.size {
		return nil, fmt.Errorf("objstore: extent [%d, %d) outside arena %s (%d bytes)", off, off+n, a.path, a.size)
	}
	return a.rw[off : off+n : off+n], nil
}

// Close unmaps the arena. Slices from View and Writable must not be used
// after it.
func (a *Arena) Close() error {
	var err error
	if a.ro != nil {
		err = unix.Munmap(a.ro)
		a.ro = nil
	}
	if a.rw != nil {
		if e := unix.Munmap(a.rw); err == nil {
			err = e
		}
		a.rw = nil
	}
	return err
}
