package objstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxNameLen is the longest object name a Store accepts.
const MaxNameLen = 128

// Config configures a Store. The zero value is not valid: set both fields.
type Config struct {
	// Dir holds the arena file. It must be absolute, since other
	// processes map the arena by path. Open creates it with mode 0700; it
	// may already exist only if it is an empty directory. Close removes
	// it. DefaultDir gives the usual choice.
	Dir string
	// Limit is the arena's size: the most bytes of objects the store
	// holds at once. It must be > 0 and no more than the size of the
	// filesystem under Dir.
	Limit int64
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Dir == "":
		errs = append(errs, errors.New("objstore: Config.Dir is empty"))
	case !filepath.IsAbs(c.Dir):
		errs = append(errs, fmt.Errorf("objstore: Config.Dir %q is not absolute (other processes open objects by path)", c.Dir))
	}
	if c.Limit <= 0 {
		errs = append(errs, fmt.Errorf("objstore: Config.Limit is %d; it must be > 0", c.Limit))
	}
	return errors.Join(errs...)
}

// DefaultDir returns the directory for one node's objects:
// /dev/shm/raygo-<cluster>-<node>, or the same name under os.TempDir() when
// /dev/shm is missing or not writable. Characters outside [A-Za-z0-9._-] in
// the IDs become '_'.
func DefaultDir(clusterID, nodeID string) string {
	base := "/dev/shm"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() || unix.Access(base, unix.W_OK|unix.X_OK) != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "raygo-"+sanitize(clusterID)+"-"+sanitize(nodeID))
}

func sanitize(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !nameByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// CheckName reports whether name is a valid object name: 1 to MaxNameLen
// characters from [A-Za-z0-9._-], other than "." and "..". The error wraps
// ErrInvalidName.
func CheckName(name string) error {
	bad := name == "" || len(name) > MaxNameLen || name == "." || name == ".."
	for i := 0; i < len(name) && !bad; i++ {
		bad = !nameByte(name[i])
	}
	if bad {
		return fmt.Errorf("objstore: %w %q: want 1 to %d characters from [A-Za-z0-9._-], not . or ..",
			ErrInvalidName, name, MaxNameLen)
	}
	return nil
}

// ArenaName is the arena file's name inside the store directory.
const ArenaName = "arena"

// Align is the alignment of every object in the arena: a page, so views
// of numeric data are aligned and objects never share a page.
const Align = 4096

// Store is one node's object store: a single arena file on tmpfs, as large
// as the store's limit, in which objects are extents. The node agent owns
// the Store and allocates extents; every process on the node maps the
// arena once (OpenArena) and writes and reads objects in place, so a put
// is one copy into memory that stays mapped, and a get is a slice of it.
//
// The arena file is sparse: the kernel gives it pages as objects first
// use them, and Reserve claims those pages with fallocate before handing
// out an extent, so a full /dev/shm is an error at Reserve, never a
// SIGBUS later. Pages stay with the arena once used (at most Limit bytes),
// which is what makes later puts fast.
//
// Safe for concurrent use.
type Store struct {
	dir   string
	path  string
	limit int64
	fd    int
	rw    []byte // the agent's own read-write mapping of the arena

	mu      sync.Mutex // guards everything below
	objects map[string]extent
	free    []span // free extents, sorted by offset, never adjacent
	used    int64  // bytes in objects (rounded to Align)
	claimed int64  // arena bytes below which pages are already allocated
	closed  bool
}

type extent struct {
	off, size int64 // size as asked; the extent spans roundUp(size)
	sealed    bool
}

type span struct{ off, n int64 }

func roundUp(n int64) int64 {
	if n == 0 {
		return Align
	}
	return (n + Align - 1) &^ (Align - 1)
}

// Open creates cfg.Dir and the arena in it.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Clean(cfg.Dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("objstore: create %s: %w", dir, err)
		}
		ents, rerr := os.ReadDir(dir)
		if rerr != nil || len(ents) != 0 {
			return nil, fmt.Errorf("objstore: %s already exists and is not empty", dir)
		}
	}
	limit := roundUp(cfg.Limit)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		if size := int64(min(st.Blocks*uint64(st.Bsize), 1<<62)); size > 0 && limit > size {
			os.Remove(dir)
			return nil, fmt.Errorf("objstore: limit %s is larger than the %s filesystem holding %s", human(limit), human(size), dir)
		}
	}
	path := filepath.Join(dir, ArenaName)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("objstore: create %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		unix.Close(fd)
		os.Remove(path)
		os.Remove(dir)
		return nil, err
	}
	if err := unix.Ftruncate(fd, limit); err != nil {
		return fail(fmt.Errorf("objstore: size %s to %s: %w", path, human(limit), err))
	}
	rw, err := unix.Mmap(fd, 0, int(limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("objstore: map %s: %w", path, err))
	}
	return &Store{dir: dir, path: path, limit: limit, fd: fd, rw: rw,
		objects: map[string]extent{}, free: []span{{0, limit}}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// ArenaPath is the arena file other processes map.
func (s *Store) ArenaPath() string { return s.path }

// Limit is the arena's size.
func (s *Store) Limit() int64 { return s.limit }

// Reserve allocates an extent of size bytes for object name and returns its
// offset. The bytes are the writer's to fill until Seal. A store without a
// free extent that large fails with *FullError; a filesystem without the
// memory fails with an error wrapping ErrNoSpace.
func (s *Store) Reserve(name string, size int64) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	if size < 0 {
		return 0, fmt.Errorf("objstore: reserve %s: negative size %d", name, size)
	}
	need := roundUp(size)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("objstore: reserve %s: %w", name, ErrClosed)
	}
	if _, ok := s.objects[name]; ok {
		return 0, fmt.Errorf("objstore: reserve %s: %w", name, ErrExists)
	}
	i := -1
	for j, f := range s.free {
		if f.n >= need {
			i = j
			break
		}
	}
	if i < 0 {
		return 0, &FullError{Name: name, Size: size, Used: s.used, Limit: s.limit, Largest: s.largestLocked()}
	}
	off := s.free[i].off
	if end := off + need; end > s.claimed {
		if err := claim(s.fd, s.claimed, end-s.claimed); err != nil {
			return 0, fmt.Errorf("objstore: reserve %s (%s): %w: %s", name, human(size), ErrNoSpace, spaceReport(s.path, end-s.claimed))
		}
		s.claimed = end
	}
	s.free[i].off += need
	s.free[i].n -= need
	if s.free[i].n == 0 {
		s.free = append(s.free[:i], s.free[i+1:]...)
	}
	s.objects[name] = extent{off: off, size: size}
	s.used += need
	return off, nil
}

func (s *Store) largestLocked() int64 {
	var m int64
	for _, f := range s.free {
		m = max(m, f.n)
	}
	return m
}

// claim gives the arena's pages in [off, off+n) backing memory.
func claim(fd int, off, n int64) error {
	const chunk = 64 << 20 // tmpfs undoes a whole interrupted fallocate
	for n > 0 {
		c := min(n, chunk)
		switch err := unix.Fallocate(fd, 0, off, c); err {
		case nil:
			off += c
			n -= c
		case unix.EINTR:
		case unix.EOPNOTSUPP:
			return nil
		default:
			return err
		}
	}
	return nil
}

// Seal marks a reserved object complete.
func (s *Store) Seal(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked("seal", name)
	if err != nil {
		return err
	}
	e.sealed = true
	s.objects[name] = e
	return nil
}

// Rename gives object old the name new (for example a transfer finishing
// under its final name). It fails with ErrExists if new is taken.
func (s *Store) Rename(old, new string) error {
	if err := CheckName(new); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked("rename", old)
	if err != nil {
		return err
	}
	if _, ok := s.objects[new]; ok {
		return fmt.Errorf("objstore: rename %s to %s: %w", old, new, ErrExists)
	}
	delete(s.objects, old)
	s.objects[new] = e
	return nil
}

// Release frees a reservation whose object was never sealed.
func (s *Store) Release(name string) error {
	return s.drop("release", name, false)
}

// Delete frees an object's extent; a later object may reuse its bytes.
func (s *Store) Delete(name string) error {
	return s.drop("delete", name, true)
}

func (s *Store) drop(op, name string, sealedOK bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookupLocked(op, name)
	if err != nil {
		return err
	}
	if e.sealed && !sealedOK {
		return fmt.Errorf("objstore: %s %s: %w (use Delete)", op, name, ErrSealed)
	}
	delete(s.objects, name)
	n := roundUp(e.size)
	s.used -= n
	s.freeLocked(span{e.off, n})
	return nil
}

// freeLocked returns a span to the free list, merging with its neighbours.
func (s *Store) freeLocked(sp span) {
	i := sort.Search(len(s.free), func(i int) bool { return s.free[i].off > sp.off })
	s.free = append(s.free, span{})
	copy(s.free[i+1:], s.free[i:])
	s.free[i] = sp
	if i+1 < len(s.free) && s.free[i].off+s.free[i].n == s.free[i+1].off {
		s.free[i].n += s.free[i+1].n
		s.free = append(s.free[:i+1], s.free[i+2:]...)
	}
	if i > 0 && s.free[i-1].off+s.free[i-1].n == s.free[i].off {
		s.free[i-1].n += s.free[i].n
		s.free = append(s.free[:i], s.free[i+1:]...)
	}
}

func (s *Store) lookupLocked(op, name string) (extent, error) {
	if s.closed {
		return extent{}, fmt.Errorf("objstore: %s %s: %w", op, name, ErrClosed)
	}
	e, ok := s.objects[name]
	if !ok {
		return extent{}, fmt.Errorf("objstore: %s %s: %w", op, name, ErrNotFound)
	}
	return e, nil
}

// Lookup returns an object's offset and size in the arena.
func (s *Store) Lookup(name string) (off, size int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.objects[name]
	return e.off, e.size, ok
}

// Contains reports whether name is reserved or sealed.
func (s *Store) Contains(name string) bool {
	_, _, ok := s.Lookup(name)
	return ok
}

// Bytes is the agent's read-write view of [off, off+n) of the arena.
func (s *Store) Bytes(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > s.limit {
		return nil, fmt.Errorf("objstore: bytes [%d, %d) outside the %d-byte arena", off, off+n, s.limit)
	}
	return s.rw[off : off+n : off+n], nil
}

// Used is the bytes held by reserved and sealed objects (whole pages).
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Resident is the bytes of the arena backed by memory so far.
func (s *Store) Resident() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimed
}

// Count is the number of reserved and sealed objects.
func (s *Store) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// Close unmaps and removes the arena and the directory. Processes that
// still map the arena keep their mappings; the memory goes when they unmap.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.objects = nil
	s.mu.Unlock()
	unix.Munmap(s.rw)
	unix.Close(s.fd)
	err := os.RemoveAll(s.dir)
	if err != nil {
		return fmt.Errorf("objstore: remove %s: %w", s.dir, err)
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
