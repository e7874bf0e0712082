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

// openMapFlags are the extra mmap flags OpenWritable uses: MAP_POPULATE.
// A recycled file's pages are resident already; what a put still pays for
// is the page tables. Without MAP_POPULATE the first write to each 4 KiB
// page takes a minor fault (~1.1 us); MAP_POPULATE builds the entries in
// one go (~0.3 us a page), and munmap tears them down (~0.15 us a page).
// BenchmarkPutRecycled (Reserve, OpenWritable, copy, Close, Seal, Delete)
// and BenchmarkMemcpy/reused, medians of 5 runs of -benchtime 10x, same
// machine as createMapFlags, at commit dc8a52c plus the pool:
//
//	                                     /dev/shm, 4 KiB pages   tmpfs huge=within_size
//	PutRecycled/1GiB/populate             6.1 GB/s (kept)        24.1 GB/s
//	PutRecycled/1GiB/no-populate          3.0 GB/s               22.8 GB/s
//	PutRecycled/1GiB/madv-populate-write  3.4 GB/s               24.2 GB/s
//	PutRecycled/256MiB/populate           5.7 GB/s               23.1 GB/s
//	Memcpy/reused/1GiB                   22.8 GB/s               23.9 GB/s
//	CreateWrite/no-populate (256 MiB)     1.6 GB/s               11.0 GB/s
//
// With 4 KiB pages a 1 GiB put spends ~80 ms in mmap, ~44 ms copying and
// ~40 ms in munmap, so recycling alone reaches about a quarter of memcpy;
// with huge pages the mapping costs under 1 ms and a put runs at memcpy
// speed.
const openMapFlags = unix.MAP_POPULATE

// fallocChunk is the most bytes one fallocate call allocates. tmpfs gives
// up on an fallocate when a signal is pending, undoing it and returning
// EINTR; Go programs take signals (SIGURG for preemption, SIGPROF when
// profiling), so a big file is allocated in chunks, each retried on EINTR.
const fallocChunk = 64 << 20

// Writable is an object file mapped for writing. It is not safe for
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

// OpenWritable maps the existing object file at path, which must be a
// regular file of exactly size bytes, for writing (PROT_READ|PROT_WRITE,
// MAP_SHARED). It is how a writer opens the file of a recycled reservation
// (see Store.Reserve), whose pages are already allocated and resident, so
// writing them costs about a memcpy. The old contents are still there:
// write every byte. A missing file is an error that wraps ErrNotFound; a
// file of another size is an error that says both sizes. Close and Abort
// work as for CreateFile.
func OpenWritable(path string, size int64) (*Writable, error) {
	return openWritable(path, size, openMapFlags)
}

func openWritable(path string, size int64, mapFlags int) (*Writable, error) {
	if size < 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("objstore: open %s: invalid size %d", path, size)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == unix.ENOENT {
		return nil, fmt.Errorf("objstore: open %s: %w (%w)", path, ErrNotFound, os.NewSyscallError("open", err))
	} else if err != nil {
		return nil, fmt.Errorf("objstore: open %s: %w", path, os.NewSyscallError("open", err))
	}
	defer unix.Close(fd) // a mapping holds its own reference to the file
	var st unix.Stat_t
	switch err := unix.Fstat(fd, &st); {
	case err != nil:
		return nil, fmt.Errorf("objstore: open %s: %w", path, os.NewSyscallError("fstat", err))
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("objstore: open %s: not a regular file", path)
	case st.Size != size:
		return nil, fmt.Errorf("objstore: open %s: file has %d bytes, want %d", path, st.Size, size)
	}
	w := &Writable{path: path, b: []byte{}}
	if size > 0 {
		if w.b, err = unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|mapFlags); err != nil {
			return nil, fmt.Errorf("objstore: open %s: %w", path, os.NewSyscallError("mmap", err))
		}
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
