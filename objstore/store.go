package objstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxNameLen is the longest object name a Store accepts.
const MaxNameLen = 128

// The pool of freed object files; see Store.
const (
	// MinPoolSize is the smallest file Delete keeps for reuse. Smaller
	// files cost little to create and are unlinked.
	MinPoolSize = 1 << 20
	// MaxPoolFiles is the most files the pool holds; Delete unlinks a
	// file that finds the pool full.
	MaxPoolFiles = 64
)

// Config configures a Store. The zero value is not valid: set both fields.
type Config struct {
	// Dir holds the object files. It must be absolute, since other
	// processes open objects by path. Open creates it with mode 0700; it
	// may already exist only if it is an empty directory. Close removes
	// it. DefaultDir gives the usual choice.
	Dir string
	// Limit is the most bytes the store admits, counting reserved and
	// sealed objects. It must be > 0 and no more than the size of the
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

// Store accounts for the objects in one node's directory. It is safe for
// concurrent use. It does not write objects itself (see Create and
// CreateFile) and does not know who maps them.
//
// Writing a new tmpfs file is bound by the kernel handing out fresh pages
// (see createMapFlags), so the Store keeps freed files for reuse: Delete
// renames the file of a sealed object of at least MinPoolSize bytes to
// "~pool-N" (a name no object can have) and keeps it in a pool of at most
// MaxPoolFiles files, unless some process still has the file open or
// mapped, in which case the file is unlinked as before and the mappings
// keep the old bytes. Reserve hands a pooled file of a fitting size (see
// fits) to the new object, whose writer then overwrites pages that are
// already resident. Pooled files occupy memory, so they count against the
// Limit: Reserve unlinks pooled files, oldest first, when it needs their
// room.
type Store struct {
	dir   string // cleaned Config.Dir
	limit int64

	// mu guards the fields below, and also the names of the files in dir:
	// a file is only renamed or removed under mu, so that a name freed by
	// Delete can be reserved again at once without the old file's removal
	// hitting the new one. Nothing slow runs under mu except Close; large
	// files are renamed to a tombstone under mu and unlinked after it, and
	// a recycled file is cut to size after it.
	//
	// used+pooled <= limit always: the bytes in RAM that the store owns.
	mu      sync.Mutex
	objects map[string]object
	used    int64    // sum of objects[*].size
	pool    []pooled // freed files for reuse, oldest first
	pooled  int64    // sum of pool[*].size
	tombs   uint64   // tombstones and pool files made so far, for unique names
	closed  bool
}

// pooled is a freed object file kept for reuse.
type pooled struct {
	path string // dir/~pool-N
	size int64
}

// object is the Store's record of one reserved or sealed object.
type object struct {
	size   int64
	sealed bool
}

// Open creates cfg.Dir and returns a Store for it.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Clean(cfg.Dir)
	created := true
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("objstore: open: %w", err)
		}
		created = false
		ents, err := os.ReadDir(dir) // fails with ENOTDIR for a file
		if err != nil {
			return nil, fmt.Errorf("objstore: open: %w", err)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("objstore: open: directory %s is not empty (%d entries, e.g. %s): another store may be using it, or one did not close",
				dir, len(ents), ents[0].Name())
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		if capacity := st.Blocks * uint64(st.Bsize); capacity > 0 && uint64(cfg.Limit) > capacity {
			if created {
				os.Remove(dir)
			}
			return nil, fmt.Errorf("objstore: open: Config.Limit %s exceeds the %s filesystem holding %s",
				human(cfg.Limit), human(int64(min(capacity, 1<<62))), dir)
		}
	}
	return &Store{dir: dir, limit: cfg.Limit, objects: make(map[string]object)}, nil
}

// Dir returns the directory holding the object files.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of object name's file, for CreateFile and Map in
// any process on the node. It returns "" if name is invalid (see CheckName);
// the methods that take a name return that error instead.
func (s *Store) Path(name string) string {
	if CheckName(name) != nil {
		return ""
	}
	return s.path(name)
}

// path is Path for a name already checked.
func (s *Store) path(name string) string { return s.dir + string(filepath.Separator) + name }

// Reserve admits an object of size bytes under name. It fails with a
// *FullError if Used()+size would exceed Limit(), and with ErrExists if
// name is taken. Pooled files make room: Reserve unlinks as many as it
// needs to, and fails only when the live objects alone leave no room.
//
// If recycled is false, the object's file does not exist yet: create it
// with CreateFile(s.Path(name), size). If recycled is true, Reserve has
// given the object a pooled file, which is at s.Path(name) with exactly
// size bytes: open it with OpenWritable(s.Path(name), size) instead. Its
// contents are whatever an earlier object left there, so the writer must
// write every byte. Either way, follow with Seal or Release.
func (s *Store) Reserve(name string, size int64) (recycled bool, err error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	if size < 0 {
		return false, fmt.Errorf("objstore: reserve %s: negative size %d", name, size)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, fmt.Errorf("objstore: reserve %s: %w", name, ErrClosed)
	}
	if _, ok := s.objects[name]; ok {
		s.mu.Unlock()
		return false, fmt.Errorf("objstore: reserve %s: %w", name, ErrExists)
	}
	if size > s.limit-s.used {
		err := &FullError{Name: name, Size: size, Used: s.used, Limit: s.limit}
		s.mu.Unlock()
		return false, err
	}
	var evicted []string
	fd := -1 // the recycled file, to cut to size once mu is released
	if i := s.bestFitLocked(size); i >= 0 {
		p := s.pool[i]
		s.pool = append(s.pool[:i], s.pool[i+1:]...)
		s.pooled -= p.size
		var aerr error
		if fd, aerr = s.adoptLocked(p.path, name); aerr != nil {
			evicted = append(evicted, p.path) // and create a new file
		}
	}
	for len(s.pool) > 0 && size > s.limit-s.used-s.pooled {
		evicted = append(evicted, s.pool[0].path)
		s.pooled -= s.pool[0].size
		s.pool = s.pool[1:]
	}
	s.objects[name] = object{size: size}
	s.used += size
	s.mu.Unlock()

	var errs []error
	if fd >= 0 {
		recycled = true
		if err := ftruncate(fd, size); err != nil {
			errs = append(errs, fmt.Errorf("objstore: reserve %s: cut recycled file to size: %w", name, err))
		}
		unix.Close(fd)
	}
	for _, path := range evicted {
		errs = append(errs, unlink(path))
	}
	if err := errors.Join(errs...); err != nil {
		// An error means nothing was reserved, whatever failed.
		return false, errors.Join(err, s.Release(name))
	}
	return recycled, nil
}

// fits reports whether a pooled file of have bytes may hold an object of
// want bytes: it is at most a quarter larger (cutting it to size frees the
// rest), or it has the same number of pages (growing it stays within its
// last page).
func fits(have, want int64) bool {
	if have >= want && have-want <= want/4 {
		return true
	}
	page := int64(os.Getpagesize())
	return (have+page-1)/page == (want+page-1)/page
}

// bestFitLocked returns the index of the smallest pooled file that fits
// size bytes, or -1.
func (s *Store) bestFitLocked(size int64) int {
	best := -1
	for i, p := range s.pool {
		if fits(p.size, size) && (best < 0 || p.size < s.pool[best].size) {
			best = i
		}
	}
	return best
}

// adoptLocked opens the pooled file at path for writing and renames it to
// name. It fails, leaving the file for the caller to unlink, if name is
// taken by a file the store does not know (RENAME_NOREPLACE), so that
// such a file is reported by CreateFile as before.
func (s *Store) adoptLocked(path, name string) (fd int, err error) {
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, path, unix.AT_FDCWD, s.path(name), unix.RENAME_NOREPLACE); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ftruncate sets fd's size, retrying on EINTR.
func ftruncate(fd int, size int64) error {
	for {
		switch err := unix.Ftruncate(fd, size); err {
		case unix.EINTR:
		case nil:
			return nil
		default:
			return os.NewSyscallError("ftruncate", err)
		}
	}
}

// Create reserves name and creates its file in this process: Reserve then
// CreateFile, or OpenWritable for a recycled file, whose old contents the
// caller must overwrite. Write through the Writable, Close it, then Seal
// the name. If the file cannot be created the reservation is released.
func (s *Store) Create(name string, size int64) (*Writable, error) {
	recycled, err := s.Reserve(name, size)
	if err != nil {
		return nil, err
	}
	open := CreateFile
	if recycled {
		open = OpenWritable
	}
	w, err := open(s.path(name), size)
	if err != nil {
		return nil, errors.Join(err, s.Release(name))
	}
	return w, nil
}

// Seal marks a reserved object complete. Its file must exist with exactly
// the reserved size; otherwise Seal releases the reservation, removes the
// file and returns an error saying what was wrong. Sealing a sealed object
// does nothing.
func (s *Store) Seal(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	o, err := s.lookupLocked("seal", name)
	if err != nil || o.sealed {
		s.mu.Unlock()
		return err
	}
	path := s.path(name)
	fi, bad := os.Lstat(path)
	switch {
	case bad != nil:
	case !fi.Mode().IsRegular():
		bad = fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	case fi.Size() != o.size:
		bad = fmt.Errorf("file %s has %d bytes, %d were reserved", path, fi.Size(), o.size)
	}
	if bad == nil {
		o.sealed = true
		s.objects[name] = o
		s.mu.Unlock()
		return nil
	}
	tomb, err := s.dropLocked(name)
	s.mu.Unlock()
	return errors.Join(fmt.Errorf("objstore: seal %s: %w (reservation released)", name, bad), err, unlink(tomb))
}

// Release drops a reservation whose creation failed, removing any partial
// file. It fails with ErrSealed for a sealed object: use Delete.
func (s *Store) Release(name string) error {
	return s.drop("release", name, false)
}

// Delete removes an object, sealed or not, and gives its bytes back.
// Mappings of it stay valid until they are closed, and keep its bytes. The
// file of a sealed object of at least MinPoolSize bytes that no process has
// open or mapped goes to the pool for reuse (see Store); its bytes then
// count in Pooled instead of Used. It fails with ErrNotFound for an
// unknown name.
func (s *Store) Delete(name string) error {
	return s.drop("delete", name, true)
}

func (s *Store) drop(op, name string, sealedOK bool) error {
	if err := CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	o, err := s.lookupLocked(op, name)
	if err == nil && o.sealed && !sealedOK {
		err = fmt.Errorf("objstore: %s %s: %w (use Delete)", op, name, ErrSealed)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var tomb string
	if o.sealed && sealedOK && o.size >= MinPoolSize && len(s.pool) < MaxPoolFiles {
		tomb, err = s.poolLocked(name)
	} else {
		tomb, err = s.dropLocked(name)
	}
	s.mu.Unlock()
	return errors.Join(err, unlink(tomb))
}

func (s *Store) lookupLocked(op, name string) (object, error) {
	if s.closed {
		return object{}, fmt.Errorf("objstore: %s %s: %w", op, name, ErrClosed)
	}
	o, ok := s.objects[name]
	if !ok {
		return object{}, fmt.Errorf("objstore: %s %s: %w", op, name, ErrNotFound)
	}
	return o, nil
}

// dropLocked forgets name, gives back its bytes, and renames its file, if
// there is one, to a tombstone for the caller to unlink once mu is released
// (unlinking frees the pages: about 160 ms per GiB on tmpfs). Tombstone
// names contain '~', which object names cannot.
func (s *Store) dropLocked(name string) (tomb string, err error) {
	s.used -= s.objects[name].size
	delete(s.objects, name)
	s.tombs++
	tomb = filepath.Join(s.dir, "~deleted-"+strconv.FormatUint(s.tombs, 10))
	switch err := os.Rename(s.path(name), tomb); {
	case err == nil:
		return tomb, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", nil // reserved, never created
	default:
		return "", fmt.Errorf("objstore: remove %s: %w", name, err)
	}
}

// poolLocked is dropLocked for a sealed object whose file may go to the
// pool: it does, if nobody has it open or mapped and it still has the
// sealed size; otherwise it is returned as a tombstone to unlink.
func (s *Store) poolLocked(name string) (tomb string, err error) {
	size := s.objects[name].size
	s.used -= size
	delete(s.objects, name)
	s.tombs++
	path := filepath.Join(s.dir, "~pool-"+strconv.FormatUint(s.tombs, 10))
	switch err := os.Rename(s.path(name), path); {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil // removed behind the store's back
	case err != nil:
		return "", fmt.Errorf("objstore: remove %s: %w", name, err)
	}
	// Renamed first, so that nobody can open it by name while it is
	// checked. used+pooled does not grow: the bytes move from one to the
	// other.
	if have, ok := idleFile(path); !ok || have != size {
		return path, nil
	}
	s.pool = append(s.pool, pooled{path: path, size: size})
	s.pooled += size
	return "", nil
}

// idleFile reports whether no process other than the caller has the
// regular file at path open or mapped, and its size. It asks the kernel
// for a write lease and drops it at once: a lease is granted only to the
// file's sole open description, and a mapping holds one until munmap,
// even after its descriptor is closed. Where leases are unavailable (not
// the file's owner and no CAP_LEASE, fs.leases-enable=0) it reports false,
// and the file is unlinked rather than reused.
func idleFile(path string) (size int64, ok bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd) // also drops the lease
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, false
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		return 0, false
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return st.Size, true
}

// unlink removes a tombstone; "" and a file already gone (Close raced
// with us) are fine.
func unlink(tomb string) error {
	if tomb == "" {
		return nil
	}
	if err := os.Remove(tomb); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: %w", err)
	}
	return nil
}

// Contains reports whether name is reserved or sealed.
func (s *Store) Contains(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objects[name]
	return ok
}

// Used returns the bytes reserved or sealed.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Pooled returns the bytes in freed files kept for reuse. They count
// against the Limit, and Reserve gives them up when it needs the room:
// Used()+Pooled() <= Limit().
func (s *Store) Pooled() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pooled
}

// Limit returns Config.Limit.
func (s *Store) Limit() int64 { return s.limit }

// Count returns the number of objects reserved or sealed.
func (s *Store) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// Close removes every file and the directory, including pooled files and
// files another process created without the store knowing. Existing
// mappings stay valid. Later calls return ErrClosed, except Close, which
// returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock() // held throughout: calls racing Close wait, then see ErrClosed
	if s.closed {
		return nil
	}
	s.closed = true
	s.objects, s.used = nil, 0
	s.pool, s.pooled = nil, 0
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("objstore: close: %w", err)
	}
	return nil
}
