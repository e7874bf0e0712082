package runtime

import (
	"iter"
	"math/bits"

	"github.com/raygo/raygo/runtime/wire"
)

// idMap is a map from object IDs, laid out for the way IDs are made. Each
// process numbers its tasks in sequence, so the objects alive at a time
// are mostly runs of neighbours, made and let go in about the order they
// were made. Entries sit in chunks of chunkLen consecutive sequence
// numbers of one process: a lookup is two lookups in small maps that stay
// in the cache and an index, and a run of tasks is a run of memory. A
// general map hashes each ID to its own place, so on a node with many
// tasks in flight nearly every lookup missed the cache; those lookups were
// a third of the agent's time.
//
// A chunk holds one object per sequence number (most tasks have one return
// value, a Put has one object); the others of a task with several returns
// go to a per-process map. A chunk lives while any of its entries does, so
// a process that keeps one object in every chunkLen costs a chunk for each.
//
// The zero idMap is empty and ready to use. As with a map, entries may be
// deleted while ranging over it, and entries added then may or may not be
// visited.
type idMap[V any] struct {
	procs map[procKey]*procIDs[V]
	n     int
	// spare is a chunk emptied, kept for the next one needed: a map that
	// holds a few entries at a time, each task's, would otherwise make a
	// chunk and drop it for nearly every entry.
	spare     *idChunk[V]
	spareProc *procIDs[V] // likewise, a process's emptied entry
	ranging   int         // All or Of under way: nothing is reused meanwhile
}

// chunkLen is the number of consecutive sequence numbers in a chunk.
const chunkLen = 64

type procKey struct {
	node wire.NodeID
	proc wire.ProcID
}

// procIDs holds the entries of one process's IDs.
type procIDs[V any] struct {
	chunks map[uint64]*idChunk[V] // by sequence number / chunkLen
	extra  map[wire.ObjectID]V    // IDs whose place in a chunk is taken by another index
	n      int
}

type idChunk[V any] struct {
	used  uint64 // bit i: slot i holds an entry
	index [chunkLen]uint32
	vals  [chunkLen]V
}

func keyOf(id wire.TaskID) procKey { return procKey{id.Node, id.Proc} }

// Len is the number of entries.
func (m *idMap[V]) Len() int { return m.n }

// Get returns id's value, or the zero value when there is none.
func (m *idMap[V]) Get(id wire.ObjectID) V {
	v, _ := m.Lookup(id)
	return v
}

// Lookup returns id's value and whether it has one.
func (m *idMap[V]) Lookup(id wire.ObjectID) (V, bool) {
	var zero V
	p := m.procs[keyOf(id.Task)]
	if p == nil {
		return zero, false
	}
	if c := p.chunks[id.Task.Seq/chunkLen]; c != nil {
		i := id.Task.Seq % chunkLen
		if c.used&(1<<i) != 0 && c.index[i] == id.Index {
			return c.vals[i], true
		}
	}
	if len(p.extra) == 0 {
		return zero, false
	}
	v, ok := p.extra[id]
	return v, ok
}

// Set makes v id's value.
func (m *idMap[V]) Set(id wire.ObjectID, v V) {
	k := keyOf(id.Task)
	p := m.procs[k]
	if p == nil {
		if m.procs == nil {
			m.procs = map[procKey]*procIDs[V]{}
		}
		if p = m.spareProc; p != nil {
			m.spareProc = nil
		} else {
			p = &procIDs[V]{chunks: map[uint64]*idChunk[V]{}}
		}
		m.procs[k] = p
	}
	hi, i := id.Task.Seq/chunkLen, id.Task.Seq%chunkLen
	c := p.chunks[hi]
	if c != nil && c.used&(1<<i) != 0 && c.index[i] == id.Index {
		c.vals[i] = v
		return
	}
	if len(p.extra) > 0 {
		if _, ok := p.extra[id]; ok { // its slot was taken when it came: it stays
			p.extra[id] = v
			return
		}
	}
	if c == nil {
		if c = m.spare; c != nil {
			m.spare = nil // empty: used is 0 and every value zero
		} else {
			c = &idChunk[V]{}
		}
		p.chunks[hi] = c
	}
	if c.used&(1<<i) == 0 {
		c.used |= 1 << i
		c.index[i] = id.Index
		c.vals[i] = v
	} else {
		if p.extra == nil {
			p.extra = map[wire.ObjectID]V{}
		}
		p.extra[id] = v
	}
	p.n++
	m.n++
}

// Delete removes id's entry, if any.
func (m *idMap[V]) Delete(id wire.ObjectID) {
	k := keyOf(id.Task)
	p := m.procs[k]
	if p == nil {
		return
	}
	hi := id.Task.Seq / chunkLen
	c := p.chunks[hi]
	i := id.Task.Seq % chunkLen
	switch {
	case c != nil && c.used&(1<<i) != 0 && c.index[i] == id.Index:
		var zero V
		c.used &^= 1 << i
		c.vals[i] = zero
		if c.used == 0 {
			delete(p.chunks, hi)
			if m.ranging == 0 { // a range may still be reading c
				m.spare = c
			}
		}
	case len(p.extra) > 0:
		if _, ok := p.extra[id]; !ok {
			return
		}
		delete(p.extra, id)
		if len(p.extra) == 0 {
			p.extra = nil
		}
	default:
		return
	}
	p.n--
	m.n--
	if p.n == 0 {
		delete(m.procs, k)
		if m.ranging == 0 {
			m.spareProc = p // its maps are empty
		}
	}
}

// All ranges over every entry, in no particular order.
func (m *idMap[V]) All() iter.Seq2[wire.ObjectID, V] {
	return func(yield func(wire.ObjectID, V) bool) {
		m.ranging++
		defer func() { m.ranging-- }()
		for k, p := range m.procs {
			if !p.all(k, yield) {
				return
			}
		}
	}
}

// Of ranges over the entries of the IDs made by one process.
func (m *idMap[V]) Of(node wire.NodeID, proc wire.ProcID) iter.Seq2[wire.ObjectID, V] {
	return func(yield func(wire.ObjectID, V) bool) {
		m.ranging++
		defer func() { m.ranging-- }()
		k := procKey{node, proc}
		if p := m.procs[k]; p != nil {
			p.all(k, yield)
		}
	}
}

func (p *procIDs[V]) all(k procKey, yield func(wire.ObjectID, V) bool) bool {
	for hi, c := range p.chunks {
		for mask := c.used; mask != 0; {
			i := uint64(bits.TrailingZeros64(mask))
			mask &^= 1 << i
			if c.used&(1<<i) == 0 {
				continue // deleted by an earlier yield
			}
			id := wire.ObjectID{Task: wire.TaskID{Node: k.node, Proc: k.proc, Seq: hi*chunkLen + i}, Index: c.index[i]}
			if !yield(id, c.vals[i]) {
				return false
			}
		}
	}
	for id, v := range p.extra {
		if !yield(id, v) {
			return false
		}
	}
	return true
}

// taskMap is an idMap keyed by task ID.
type taskMap[V any] struct{ m idMap[V] }

func (t *taskMap[V]) Len() int                        { return t.m.n }
func (t *taskMap[V]) Get(id wire.TaskID) V            { return t.m.Get(wire.ObjectID{Task: id}) }
func (t *taskMap[V]) Lookup(id wire.TaskID) (V, bool) { return t.m.Lookup(wire.ObjectID{Task: id}) }
func (t *taskMap[V]) Set(id wire.TaskID, v V)         { t.m.Set(wire.ObjectID{Task: id}, v) }
func (t *taskMap[V]) Delete(id wire.TaskID)           { t.m.Delete(wire.ObjectID{Task: id}) }

// All ranges over every entry, in no particular order.
func (t *taskMap[V]) All() iter.Seq2[wire.TaskID, V] {
	return func(yield func(wire.TaskID, V) bool) {
		for id, v := range t.m.All() {
			if !yield(id.Task, v) {
				return
			}
		}
	}
}
