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
type Store struct {
	dir   string // cleaned Config.Dir
	limit int64

	// mu guards the fields below, and also the names of the files in dir:
	// a file is only renamed or removed under mu, so that a name freed by
	// Delete can be reserved again at once without the old file's removal
	// hitting the new one. Nothing slow runs under mu except Close; large
	// files are renamed to a tombstone under mu and unlinked after it.
	mu      sync.Mutex
	objects map[string]object
	used    int64  // sum of objects[*].size
	tombs   uint64 // tombstones made so far, for unique names
	closed  bool
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

// Reserve admits an object of size bytes under name, for another process to
// create with CreateFile(s.Path(name), size). It fails with a *FullError if
// Used()+size would exceed Limit(), and with ErrExists if name is taken.
// Follow it with Seal or Release.
func (s *Store) Reserve(name string, size int64) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("objstore: reserve %s: negative size %d", name, size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("objstore: reserve %s: %w", name, ErrClosed)
	}
	if _, ok := s.objects[name]; ok {
		return fmt.Errorf("objstore: reserve %s: %w", name, ErrExists)
	}
	if size > s.limit-s.used {
		return &FullError{Name: name, Size: size, Used: s.used, Limit: s.limit}
	}
	s.objects[name] = object{size: size}
	s.used += size
	return nil
}

// Create reserves name and creates its file in this process: Reserve then
// CreateFile. Write through the Writable, Close it, then Seal the name. If
// the file cannot be created the reservation is released.
func (s *Store) Create(name string, size int64) (*Writable, error) {
	if err := s.Reserve(name, size); err != nil {
		return nil, err
	}
	w, err := CreateFile(s.path(name), size)
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
// Mappings of it stay valid until they are closed. It fails with
// ErrNotFound for an unknown name.
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
	tomb, err := s.dropLocked(name)
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

// Limit returns Config.Limit.
func (s *Store) Limit() int64 { return s.limit }

// Count returns the number of objects reserved or sealed.
func (s *Store) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// Close removes every file and the directory, including files another
// process created without the store knowing. Existing mappings stay valid.
// Later calls return ErrClosed, except Close, which returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock() // held throughout: calls racing Close wait, then see ErrClosed
	if s.closed {
		return nil
	}
	s.closed = true
	s.objects, s.used = nil, 0
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("objstore: close: %w", err)
	}
	return nil
}
