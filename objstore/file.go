package objstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// createMapFlags are the extra mmap flags CreateFile uses: none.
// MAP_POPULATE (fault every page in during mmap) was measured and lost.
// BenchmarkCreateWrite and BenchmarkMemcpy, 256 MiB per op, medians of 5
// runs of -benchtime 20x on a 2-vCPU AMD EPYC VM (24 GiB, Linux 6.18,
// /dev/shm tmpfs with 4 KiB pages), go1.26.8, at commit f3ca79e plus this
// package:
//
//	CreateWrite/no-populate  1.44 GB/s   (kept)
//	CreateWrite/populate     1.10 GB/s
//	Memcpy/anon-mmap         1.6 GB/s    new anonymous mapping per op
//	Memcpy/go-slice          3.5 GB/s    12-13 GB/s once the Go heap reuses its pages
//
// Of the ~175 ms per 256 MiB object, fallocate takes ~65 ms, the page
// faults (which zero the pages) ~85 ms and the copy itself ~12 ms: the cost
// is the kernel handing out 65536 fresh pages, as with fresh anonymous
// memory. On a tmpfs mounted with huge=within_size the same create+write
// took 21 ms (~12 GB/s), so mount the store's tmpfs that way where you can.
const createMapFlags = 0

// fallocChunk is the most bytes one fallocate call allocates. tmpfs gives
// up on an fallocate when a signal is pending, undoing it and returning
// EINTR; Go programs take signals (SIGURG for preemption, SIGPROF when
// profiling), so a big file is allocated in chunks, each retried on EINTR.
const fallocChunk = 64 << 20

// Writable is a new object file mapped for writing. It is not safe for
// concurrent use, but its Bytes may be written from many goroutines.
type Writable struct {
	path     string
	b        []byte
	unmapped bool // Close or Abort has run
	removed  bool // Abort has run
}

// CreateFile creates the object file at path with exactly size bytes and
// maps it for writing (PROT_READ|PROT_WRITE, MAP_SHARED). The file is
// created with O_EXCL and mode 0600, so an existing file is an error that
// wraps ErrExists. All size bytes are allocated before mapping, so a full
// filesystem fails here with an error that wraps ErrNoSpace and says how
// much was free, instead of with SIGBUS on some later write. A size of 0 is
// allowed and maps nothing. On error nothing is left at path.
func CreateFile(path string, size int64) (*Writable, error) {
	return createFile(path, size, createMapFlags)
}

func createFile(path string, size int64, mapFlags int) (*Writable, error) {
	if size < 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("objstore: create %s: invalid size %d", path, size)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err == unix.EEXIST {
		return nil, fmt.Errorf("objstore: create %s: %w (%w)", path, ErrExists, os.NewSyscallError("open", err))
	} else if err != nil {
		return nil, fmt.Errorf("objstore: create %s: %w", path, os.NewSyscallError("open", err))
	}
	w := &Writable{path: path, b: []byte{}}
	err = allocate(fd, size)
	if err == unix.ENOSPC || err == unix.EDQUOT {
		err = fmt.Errorf("%w: %s (fallocate: %w)", ErrNoSpace, spaceReport(path, size), err)
	} else if err != nil {
		err = os.NewSyscallError("fallocate", err)
	} else if size > 0 {
		w.b, err = unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|mapFlags)
		err = os.NewSyscallError("mmap", err)
	}
	unix.Close(fd) // a mapping holds its own reference to the file
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("objstore: create %s: %w", path, err)
	}
	return w, nil
}

// allocate gives fd's file size bytes of backing store; see fallocChunk.
// Where fallocate is unsupported it only sets the size, and a full
// filesystem will then show as SIGBUS on write.
func allocate(fd int, size int64) error {
	for off := int64(0); off < size; {
		n := min(size-off, fallocChunk)
		switch err := unix.Fallocate(fd, 0, off, n); err {
		case nil:
			off += n
		case unix.EINTR:
		case unix.EOPNOTSUPP:
			return unix.Ftruncate(fd, size)
		default:
			return err
		}
	}
	return nil
}

// spaceReport describes the filesystem holding path for an ENOSPC error.
func spaceReport(path string, need int64) string {
	dir := filepath.Dir(path)
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return fmt.Sprintf("%s needed in %s", human(need), dir)
	}
	fsType := "filesystem"
	if st.Type == unix.TMPFS_MAGIC {
		fsType = "tmpfs"
	}
	free := st.Bavail * uint64(st.Bsize)
	size := st.Blocks * uint64(st.Bsize)
	return fmt.Sprintf("%s needed, %s of %s free on the %s holding %s",
		human(need), human(int64(min(free, 1<<62))), human(int64(min(size, 1<<62))), fsType, dir)
}

// Path returns the file's path.
func (w *Writable) Path() string { return w.path }

// Bytes returns the mapped file, empty for size 0 and nil after Close or
// Abort. Using it after Close or Abort faults.
func (w *Writable) Bytes() []byte { return w.b }

// Close unmaps the file and leaves it in place for the store to Seal.
// Calling it again does nothing.
func (w *Writable) Close() error {
	if w.unmapped {
		return nil
	}
	w.unmapped = true
	b := w.b
	w.b = nil
	if len(b) == 0 {
		return nil
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("objstore: close %s: %w", w.path, os.NewSyscallError("munmap", err))
	}
	return nil
}

// Abort unmaps the file if that is not done, and removes it. The store's
// reservation, if any, remains: Release it. Calling it again does nothing.
func (w *Writable) Abort() error {
	err := w.Close()
	if !w.removed {
		w.removed = true
		if rerr := os.Remove(w.path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("objstore: abort: %w", rerr))
		}
	}
	return err
}

// Mapping is a read-only, zero-copy view of an object file. It is safe for
// concurrent use.
type Mapping struct {
	path string
	mu   sync.Mutex // guards b
	b    []byte     // nil once closed
}

// Map maps the whole file at path read-only (PROT_READ, MAP_SHARED). Writes
// made through a Writable for the same file, in any process, show through.
// A missing file is an error that wraps ErrNotFound and names path.
func Map(path string) (*Mapping, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, fmt.Errorf("objstore: map %s: %w (%w)", path, ErrNotFound, os.NewSyscallError("open", err))
	} else if err != nil {
		return nil, fmt.Errorf("objstore: map %s: %w", path, os.NewSyscallError("open", err))
	}
	defer unix.Close(fd) // the mapping holds its own reference
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("objstore: map %s: %w", path, os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("objstore: map %s: not a regular file", path)
	}
	if int64(int(st.Size)) != st.Size {
		return nil, fmt.Errorf("objstore: map %s: %d bytes is too large to map", path, st.Size)
	}
	m := &Mapping{path: path, b: []byte{}}
	if st.Size > 0 {
		m.b, err = unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("objstore: map %s: %w", path, os.NewSyscallError("mmap", err))
		}
	}
	return m, nil
}

// Path returns the mapped file's path.
func (m *Mapping) Path() string { return m.path }

// Bytes returns the mapped file: empty for an empty file, nil after Close.
// It is read-only: writing to it faults. Using it after Close faults.
func (m *Mapping) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}

// Close unmaps the file. Calling it again does nothing.
func (m *Mapping) Close() error {
	m.mu.Lock()
	b := m.b
	m.b = nil
	m.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("objstore: close mapping %s: %w", m.path, os.NewSyscallError("munmap", err))
	}
	return nil
}
