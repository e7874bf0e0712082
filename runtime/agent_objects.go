package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/raygo/raygo/objstore"
	"github.com/raygo/raygo/runtime/wire"
)

// Object states.
const (
	objPending uint8 = iota
	objReady
	objFailed
)

// obj is what a node knows of an object. The owner (the node in the
// object's ID) keeps the authoritative entry: state, value or location, the
// nodes holding copies, and the reference count. Other nodes keep an entry
// while they wait for the object or hold a copy of it.
//
// A node holds one per task result it owns, so what most small results
// never need lives apart, in objMore (the size class is 144 bytes, not 320).
type obj struct {
	id   wire.ObjectID
	val  wire.Value // inline data, or InStore with val.Node a holder
	err  *wire.TaskError
	more *objMore // nil until needed
	refs int32    // owner: references held anywhere
	// creator is the local process that made it (submitted its task, or
	// put it), while that process holds it: its hold is counted here
	// rather than in proc.held.
	creator wire.ProcID
	state   uint8
	owned   bool
	here    bool // this node's store holds a sealed copy (in the arena, or spilled)
	asked   bool // non-owner: subscribed at the owner
	// owner: the process that submitted the task asked for its result while
	// it was pending; the result is sent to it when ready (see finishLocked).
	submitterWaits bool
}

// detach returns small data on its own, so that it does not keep alive the
// whole frame it was received in (a result of a few bytes would hold on to
// its message, several times larger, for as long as the object lives).
func detach(b []byte) []byte {
	if len(b) == 0 || len(b) > 64 {
		return b
	}
	return append([]byte(nil), b...)
}

// objMore is the part of an object's record that only some objects need:
// stored copies and their spilling, the nodes told about it, and what waits
// for it.
type objMore struct {
	locs     []wire.NodeID // owner: nodes whose store holds a copy
	subs     []wire.NodeID // owner: nodes that asked for it (they may cache it)
	spilled  string        // the copy's spill file, when not in the arena
	used     uint64        // when it was last used here (a.useSeq)
	waiters  []func(*obj)
	pullers  []func(error)
	spilling bool // being written to a spill file
	pulling  bool
}

// x is o's objMore, made when first needed: changes go through it.
func (o *obj) x() *objMore {
	if o.more == nil {
		o.more = &objMore{}
	}
	return o.more
}

// Reads of objMore's fields, for objects that have none too.

func (o *obj) locs() []wire.NodeID {
	if o.more == nil {
		return nil
	}
	return o.more.locs
}

func (o *obj) subs() []wire.NodeID {
	if o.more == nil {
		return nil
	}
	return o.more.subs
}

func (o *obj) spilled() string {
	if o.more == nil {
		return ""
	}
	return o.more.spilled
}

func (o *obj) spilling() bool { return o.more != nil && o.more.spilling }

func (o *obj) used() uint64 {
	if o.more == nil {
		return 0
	}
	return o.more.used
}

func (o *obj) pulling() bool { return o.more != nil && o.more.pulling }

func (o *obj) numWaiters() int {
	if o.more == nil {
		return 0
	}
	return len(o.more.waiters)
}

// busy says whether something here waits for o or fetches it.
func (o *obj) busy() bool {
	return o.more != nil && (o.more.pulling || len(o.more.waiters) > 0 || len(o.more.pullers) > 0)
}

// takeWaiters moves old's waiters to o (a new record replacing old).
func (o *obj) takeWaiters(old *obj) {
	if old != nil && old.numWaiters() > 0 {
		o.x().waiters = old.more.waiters
	}
}

func (a *Agent) objectLost(id wire.ObjectID, why string) *wire.TaskError {
	return &wire.TaskError{Kind: wire.ErrKindObjectLost, Node: a.id,
		Message: fmt.Sprintf("object %s: %s", id, why)}
}

// refLocked applies a change in references held on this node. References
// to objects owned elsewhere are summed here and the owner is told only when
// this node starts or stops holding any.
func (a *Agent) refLocked(id wire.ObjectID, delta int32) {
	if delta == 0 {
		return
	}
	if id.Owner() == a.id {
		o := a.objs.Get(id)
		if o == nil || !o.owned {
			return
		}
		o.refs += delta
		if o.refs <= 0 && o.state != objPending {
			a.freeLocked(o)
		}
		return
	}
	prev := a.remote[id]
	n := prev + delta
	if n <= 0 {
		delete(a.remote, id)
	} else {
		a.remote[id] = n
	}
	switch {
	case prev <= 0 && n > 0:
		a.sendPeerLocked(id.Owner(), &wire.Refs{IDs: []wire.ObjectID{id}, Deltas: []int32{1}})
	case prev > 0 && n <= 0:
		a.sendPeerLocked(id.Owner(), &wire.Refs{IDs: []wire.ObjectID{id}, Deltas: []int32{-1}})
		// Nothing here needs what we learned about it any more.
		if o := a.objs.Get(id); o != nil && !o.owned && !o.here && !o.busy() {
			a.objs.Delete(id)
		}
	}
}

// freeLocked drops an owned object everywhere.
func (a *Agent) freeLocked(o *obj) {
	a.objs.Delete(o.id)
	if o.id.Index > 0 {
		a.resultFreedLocked(o.id)
	}
	a.dropCopyLocked(o)
	told := map[wire.NodeID]bool{a.id: true}
	for _, n := range append(o.locs(), o.subs()...) {
		if !told[n] {
			told[n] = true
			a.sendPeerLocked(n, &wire.Free{IDs: []wire.ObjectID{o.id}})
		}
	}
	for _, c := range o.val.Contained {
		a.refLocked(c, -1)
	}
	a.loadGen++
}

// putLocked records an object a local process stored.
func (a *Agent) putLocked(p *proc, m *wire.Put) {
	if m.ID.Owner() != a.id || m.ID.Task.Proc != p.id {
		a.logf("process %d put object %s, an ID it did not make; ignored", p.id, m.ID)
		return
	}
	o := &obj{id: m.ID, owned: true, state: objReady, val: m.Value, refs: 1}
	o.val.Data = detach(o.val.Data)
	if m.Value.InStore {
		if err := a.store.Seal(m.ID.FileName()); err != nil {
			o.state, o.err = objFailed, &wire.TaskError{Kind: wire.ErrKindSystem, Node: a.id, Message: fmt.Sprintf("put %s: %v", m.ID, err)}
		} else {
			o.val.Node, o.here = a.id, true
			o.x().locs = []wire.NodeID{a.id}
			a.touchLocked(o)
		}
	}
	o.takeWaiters(a.objs.Get(m.ID))
	a.objs.Set(m.ID, o)
	o.creator, p.created = p.id, true
	for _, c := range m.Value.Contained {
		a.refLocked(c, 1)
	}
	a.loadGen++
	a.readyLocked(o)
}

// readyLocked runs the callbacks waiting for o.
func (a *Agent) readyLocked(o *obj) {
	if o.more == nil {
		return
	}
	ws := o.more.waiters
	o.more.waiters = nil
	for _, w := range ws {
		w(o)
	}
}

// whenReadyLocked calls f once the object is ready or failed (perhaps now).
func (a *Agent) whenReadyLocked(id wire.ObjectID, f func(*obj)) {
	o := a.objs.Get(id)
	if id.Owner() == a.id {
		if o == nil {
			f(&obj{id: id, state: objFailed, err: a.objectLost(id, "freed, or never created")})
			return
		}
	} else if o == nil {
		if v, ok := a.view[id.Owner()]; ok && !v.Alive {
			f(&obj{id: id, state: objFailed, err: a.objectLost(id, fmt.Sprintf("its owner, node %d, died", id.Owner()))})
			return
		}
		o = &obj{id: id}
		a.objs.Set(id, o)
	}
	if o.state != objPending {
		f(o)
		return
	}
	x := o.x()
	x.waiters = append(x.waiters, f)
	if !o.owned && !o.asked {
		o.asked = true
		a.sendPeerLocked(id.Owner(), &wire.Subscribe{IDs: []wire.ObjectID{id}})
	}
}

// localizeLocked makes a ready object readable on this node (pulling a
// store copy from another node if need be) and then calls f.
func (a *Agent) localizeLocked(o *obj, f func(error)) {
	if o.state != objReady || !o.val.InStore || o.here {
		f(nil)
		return
	}
	x := o.x()
	x.pullers = append(x.pullers, f)
	if x.pulling {
		return
	}
	x.pulling = true
	from := o.val.Node
	id, size := o.id, o.val.Size
	go func() {
		err := a.pull(id, int64(size), from)
		a.mu.Lock()
		defer a.mu.Unlock()
		x.pulling = false
		if err == nil {
			o.here = true
			a.touchLocked(o)
			if cur := a.objs.Get(id); cur != o {
				// Freed while we pulled: drop the copy.
				a.store.Delete(id.FileName())
				err = fmt.Errorf("object %s was freed while being fetched", id)
			} else if id.Owner() == a.id {
				x.locs = append(x.locs, a.id)
			} else {
				a.sendPeerLocked(id.Owner(), &wire.Put{ID: id, Value: wire.Value{InStore: true, Size: size, Node: a.id}})
			}
		}
		ps := x.pullers
		x.pullers = nil
		for _, p := range ps {
			p(err)
		}
	}()
}

// pull copies an object from another node's store into this one, several
// chunks in flight.
func (a *Agent) pull(id wire.ObjectID, size int64, from wire.NodeID) error {
	// The copy arrives under a name of its own and takes the object's
	// name only when complete, so a producer of the same object here (a
	// rebuild) never collides with a transfer in flight.
	name := id.FileName() + ".pull"
	off, err := a.reserveName(name, size)
	if err != nil {
		return fmt.Errorf("node %d: fetch %s from node %d: %w", a.id, id, from, err)
	}
	buf, err := a.store.Bytes(off, size)
	if err != nil {
		a.store.Release(name)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const inflight = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		next int64
	)
	for i := 0; i < inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if ferr != nil || next >= size {
					mu.Unlock()
					return
				}
				off := next
				n := min(int64(wire.ChunkSize), size-off)
				next += n
				mu.Unlock()
				body := encode(func(e *wire.Enc) { e.ObjectID(id); e.Uvarint(uint64(off)); e.Uvarint(uint64(n)) })
				chunk, err := a.peerCall(ctx, from, wire.OpPull, body)
				if err == nil && int64(len(chunk)) != n {
					err = fmt.Errorf("chunk at %d: got %d bytes, want %d", off, len(chunk), n)
				}
				if err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
					return
				}
				copy(buf[off:], chunk)
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		a.store.Release(name)
		return fmt.Errorf("node %d: fetch %s from node %d: %w", a.id, id, from, ferr)
	}
	if err := a.store.Seal(name); err != nil {
		return err
	}
	if err := a.store.Rename(name, id.FileName()); err != nil {
		// The object was made here meanwhile: this copy is not needed.
		a.store.Delete(name)
		if errors.Is(err, objstore.ErrExists) {
			return nil
		}
		return err
	}
	return nil
}

// servePull reads a chunk of a stored object for another node.
func (a *Agent) servePull(body []byte) ([]byte, error) {
	var id wire.ObjectID
	var off, n uint64
	if err := decodeBody(body, func(d *wire.Dec) { id = d.ObjectID(); off = d.Uvarint(); n = d.Uvarint() }); err != nil {
		return nil, err
	}
	if n > wire.ChunkSize {
		return nil, fmt.Errorf("%w: chunk of %d bytes asked, limit %d", ErrInvalid, n, wire.ChunkSize)
	}
	a.mu.Lock()
	o := a.objs.Get(id)
	if o != nil && o.here && o.spilled() != "" {
		// Read outside the lock: the file goes only with the object, and a
		// freed object's file is simply missing.
		path, size := o.spilled(), o.val.Size
		a.mu.Unlock()
		if off+n > size {
			return nil, fmt.Errorf("%w: chunk [%d, %d) of %s, which has %d bytes", ErrInvalid, off, off+n, id, size)
		}
		return readSpilled(path, int64(off), int64(n))
	}
	defer a.mu.Unlock()
	buf := make([]byte, n)
	// Copy under the lock: once the object is freed its extent is reused.
	start, size, ok := a.store.Lookup(id.FileName())
	if o == nil || !o.here || !ok {
		return nil, fmt.Errorf("node %d has no copy of %s: %w", a.id, id, ErrNotFound)
	}
	if off+n > uint64(size) {
		return nil, fmt.Errorf("%w: chunk [%d, %d) of %s, which has %d bytes", ErrInvalid, off, off+n, id, size)
	}
	src, err := a.store.Bytes(start+int64(off), int64(n))
	if err != nil {
		return nil, err
	}
	copy(buf, src)
	return buf, nil
}

// subscribeProcLocked sends p the object once it is ready and readable here.
func (a *Agent) subscribeProcLocked(p *proc, id wire.ObjectID) {
	// A result of a task p submitted goes to p when the task finishes
	// (finishLocked): note that p asked, rather than keep a callback per
	// object (a driver may wait for a million at once).
	if o := a.objs.Get(id); o != nil && o.owned && o.state == objPending {
		if ot := a.owned.Get(id.Task); ot != nil && ot.proc == p && !ot.rebuild {
			o.submitterWaits = true
			return
		}
	}
	a.whenReadyLocked(id, func(o *obj) {
		a.localizeLocked(o, func(err error) {
			if p.gone {
				return
			}
			m := &wire.Object{ID: id, Value: o.val, Err: o.err}
			if err != nil {
				m.Value = wire.Value{}
				m.Err = a.objectLost(id, err.Error())
			}
			if m.Value.InStore {
				// A process that holds the object keeps a view of it: pin it.
				pin := p.holdsLocked(o) && !p.viewing.Get(id)
				v, ok := a.localValueLocked(o, pin)
				if !ok {
					v = wire.Value{}
					m.Err = a.objectLost(id, fmt.Sprintf("not in node %d's store", a.id))
				} else if pin && v.Spilled == "" {
					p.viewing.Set(id, true)
				}
				m.Value = v
			}
			p.conn.Send(m)
		})
	})
}

// objectFromPeerLocked records an owner's answer to our subscription.
func (a *Agent) objectFromPeerLocked(m *wire.Object) {
	o := a.objs.Get(m.ID)
	if o == nil || o.owned || o.state != objPending {
		return
	}
	o.val, o.err = m.Value, m.Err
	if m.Err != nil {
		o.state = objFailed
	} else {
		o.state = objReady
	}
	a.readyLocked(o)
}

// freeCopiesLocked drops this node's copies of objects owned elsewhere.
func (a *Agent) freeCopiesLocked(ids []wire.ObjectID) {
	for _, id := range ids {
		o := a.objs.Get(id)
		if o == nil || o.owned {
			continue
		}
		a.dropCopyLocked(o)
		if !o.busy() {
			a.objs.Delete(id)
		}
	}
	a.loadGen++
}
