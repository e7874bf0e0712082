package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime/wire"
	"golang.org/x/sys/unix"
)

// Spilling: when a reservation does not fit in the arena, the agent writes
// sealed objects that no local process is reading in place (no pins) to
// files in its spill directory, least recently used first, and frees their
// extents. A spilled object stays spilled until it is freed: local
// processes read the file into their own memory, other nodes pull chunks
// of it.
//
// Pins: a process that was sent a view of an object (an Object message or
// an Exec argument in the arena) may read the extent at any time, so the
// object is pinned (a.pins) until the process stops holding it, its task
// ends, or it disconnects.
//
// Lock order: a.spillMu, then a.mu, then the store's. Files are written
// with a.mu released: victims are marked spilling under it and checked again
// after.

// spillInit sets the spill directory and budget once the node's ID is known.
func (a *Agent) spillInit() {
	a.pins = map[wire.ObjectID]int32{}
	a.spillDir = a.cfg.SpillDir
	if a.spillDir == "" {
		a.spillDir = filepath.Join(os.TempDir(), fmt.Sprintf("raygo-spill-%s-%d", a.clusterID, a.id))
		// Spill directories of agents that were killed.
		sweepOwned(filepath.Join(os.TempDir(), "raygo-spill-*"))
	}
	a.spillLimit = a.cfg.SpillLimit
	if a.spillLimit == 0 {
		a.spillLimit = int64(float64(diskFree(filepath.Dir(a.spillDir))) * 0.9)
	}
}

// spillRemove deletes the spill directory (at Stop and Kill).
func (a *Agent) spillRemove() {
	a.spillMu.Lock()
	defer a.spillMu.Unlock()
	if a.spillMade {
		os.RemoveAll(a.spillDir)
	}
}

// SpillDir is where this node writes objects the store has no room for.
func (a *Agent) SpillDir() string { return a.spillDir }

// diskFree is the bytes an unprivileged user may still write under dir
// (that of its nearest existing ancestor).
func diskFree(dir string) int64 {
	for {
		if n, err := statFree(dir); err == nil {
			return n
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0
		}
		dir = parent
	}
}

// pinLocked and unpinLocked count the local readers of an object's extent.
func (a *Agent) pinLocked(id wire.ObjectID) { a.pins[id]++ }

func (a *Agent) unpinLocked(id wire.ObjectID) {
	if a.pins[id]--; a.pins[id] <= 0 {
		delete(a.pins, id)
	}
}

// touchLocked marks o recently used (spilling takes the least recent first).
func (a *Agent) touchLocked(o *obj) {
	a.useSeq++
	o.x().used = a.useSeq
}

// localValueLocked is the value a local process reads a stored object
// through: its extent (and then the process gets a pin, when pin) or its
// spill file. ok is false when this node has no copy.
func (a *Agent) localValueLocked(o *obj, pin bool) (v wire.Value, ok bool) {
	v = o.val
	v.Node, v.Off, v.Spilled = a.id, 0, ""
	if !o.here {
		return v, false
	}
	a.touchLocked(o)
	if s := o.spilled(); s != "" {
		v.Spilled = s
		return v, true
	}
	off, _, ok := a.store.Lookup(o.id.FileName())
	if !ok {
		return v, false
	}
	v.Off = uint64(off)
	if pin {
		a.pinLocked(o.id)
	}
	return v, true
}

// dropCopyLocked frees this node's copy of o: its extent or spill file.
func (a *Agent) dropCopyLocked(o *obj) {
	if !o.here {
		return
	}
	o.here = false
	if s := o.spilled(); s != "" {
		os.Remove(s)
		a.spillUsed -= int64(o.val.Size)
		o.more.spilled = ""
		return
	}
	a.store.Delete(o.id.FileName())
}

// reserve reserves an extent for an object, spilling others to disk when
// the arena is full. It must be called without a.mu.
func (a *Agent) reserve(id wire.ObjectID, size int64) (int64, error) {
	return a.reserveName(id.FileName(), size)
}

// reserveName is reserve under a given store name.
func (a *Agent) reserveName(name string, size int64) (int64, error) {
	off, err := a.store.Reserve(name, size)
	if !errors.Is(err, objstore.ErrFull) || size > a.store.Limit() || a.spillLimit < 0 {
		return off, err
	}
	a.spillMu.Lock()
	defer a.spillMu.Unlock()
	for {
		off, err = a.store.Reserve(name, size)
		if !errors.Is(err, objstore.ErrFull) {
			return off, err
		}
		freed, why := a.spillSome(size)
		if freed == 0 {
			return 0, fmt.Errorf("%w; %s", err, why)
		}
	}
}

// spillSome moves at least need bytes of unpinned objects (or as many as
// can go) from the arena to disk and returns the bytes of arena freed, or 0
// and why nothing could be. Called with a.spillMu held, a.mu not.
func (a *Agent) spillSome(need int64) (int64, string) {
	type victim struct {
		o         *obj
		path      string
		off, size int64
		err       error
	}
	var vs []victim
	a.mu.Lock()
	var cands []*obj
	var pinned int64
	for _, o := range a.objs.All() {
		if !o.here || o.spilled() != "" || o.spilling() || o.state != objReady || !o.val.InStore {
			continue
		}
		if a.pins[o.id] > 0 {
			pinned += int64(o.val.Size)
			continue
		}
		cands = append(cands, o)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used() < cands[j].used() })
	want := need - (a.store.Limit() - a.store.Used())
	var chosen, budget int64
	budget = a.spillLimit - a.spillUsed
	for _, o := range cands {
		if chosen >= want && len(vs) > 0 {
			break
		}
		sz := int64(o.val.Size)
		if sz > budget-chosen {
			continue
		}
		off, _, ok := a.store.Lookup(o.id.FileName())
		if !ok {
			continue
		}
		o.x().spilling = true
		chosen += sz
		vs = append(vs, victim{o: o, off: off, size: sz, path: filepath.Join(a.spillDir, o.id.FileName())})
	}
	spillUsed := a.spillUsed
	a.mu.Unlock()
	if len(vs) == 0 {
		what := "nothing else to spill"
		if len(cands) > 0 {
			what = "spill disk full"
		}
		return 0, fmt.Sprintf("%s pinned by readers, %s (%s of %s used in %s)",
			human(pinned), what, human(spillUsed), human(a.spillLimit), a.spillDir)
	}

	if !a.spillMade {
		if err := os.MkdirAll(a.spillDir, 0o700); err == nil {
			os.WriteFile(filepath.Join(a.spillDir, ownerFile), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600)
			a.spillMade = true
		}
	}
	for i := range vs {
		v := &vs[i]
		src, err := a.store.Bytes(v.off, v.size)
		if err == nil {
			err = writeSpill(v.path, src)
		}
		v.err = err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	var freed int64
	var werr error
	for _, v := range vs {
		o := v.o
		o.x().spilling = false
		switch {
		case v.err != nil:
			werr = v.err
			os.Remove(v.path)
		case a.objs.Get(o.id) != o || !o.here || o.spilled() != "" || a.pins[o.id] > 0:
			// Freed meanwhile, or a reader got a view: keep it in memory.
			os.Remove(v.path)
		default:
			o.x().spilled = v.path
			a.spillUsed += v.size
			a.store.Delete(o.id.FileName())
			freed += v.size
		}
	}
	a.loadGen++
	if freed == 0 {
		why := fmt.Sprintf("%s pinned by readers", human(pinned))
		if werr != nil {
			why += fmt.Sprintf(", spilling to %s failed: %v", a.spillDir, werr)
		}
		return 0, why
	}
	return freed, ""
}

func statFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(min(st.Bavail*uint64(st.Bsize), 1<<62)), nil
}

// writeSpill writes an object's bytes to a new file.
func writeSpill(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// readSpilled reads [off, off+n) of a spill file.
func readSpilled(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read spilled object %s: %w", path, err)
	}
	return buf, nil
}

// human formats n bytes with a binary unit and one decimal.
func human(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1024, 0
	for (f >= 1024 || f <= -1024) && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}
