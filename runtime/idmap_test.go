package runtime

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/raygo/raygo/runtime/wire"
)

// TestIDMapMatchesMap applies random operations to an idMap and to a Go
// map, over IDs that share chunks, slots and indexes, and compares them.
func TestIDMapMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m idMap[int]
	ref := map[wire.ObjectID]int{}
	randID := func() wire.ObjectID {
		return wire.ObjectID{
			Task:  wire.TaskID{Node: wire.NodeID(r.IntN(2) + 1), Proc: wire.ProcID(r.IntN(3)), Seq: uint64(r.IntN(300))},
			Index: uint32(r.IntN(4)),
		}
	}
	check := func(step int) {
		t.Helper()
		if m.Len() != len(ref) {
			t.Fatalf("step %d: Len %d, want %d", step, m.Len(), len(ref))
		}
		seen := map[wire.ObjectID]bool{}
		for id, v := range m.All() {
			if seen[id] {
				t.Fatalf("step %d: %v visited twice", step, id)
			}
			seen[id] = true
			if w, ok := ref[id]; !ok || w != v {
				t.Fatalf("step %d: All gave %v=%d, map has %d (%v)", step, id, v, w, ok)
			}
		}
		if len(seen) != len(ref) {
			t.Fatalf("step %d: All visited %d, want %d", step, len(seen), len(ref))
		}
		for k, p := range m.procs {
			n := len(p.extra)
			for hi, c := range p.chunks {
				if c.used == 0 {
					t.Fatalf("step %d: process %v keeps empty chunk %d", step, k, hi)
				}
				n += bits.OnesCount64(c.used)
			}
			if n != p.n || n == 0 {
				t.Fatalf("step %d: process %v holds %d entries, counts %d", step, k, n, p.n)
			}
		}
		if sp := m.spareProc; sp != nil && (len(sp.chunks) != 0 || sp.extra != nil || sp.n != 0) {
			t.Fatalf("step %d: the spare process entry is not empty", step)
		}
		if sc := m.spare; sc != nil && sc.used != 0 {
			t.Fatalf("step %d: the spare chunk is not empty", step)
		}
	}
	for step := range 200000 {
		id := randID()
		switch op := r.IntN(10); {
		case op < 5:
			v := r.Int()
			m.Set(id, v)
			ref[id] = v
		case op < 9:
			m.Delete(id)
			delete(ref, id)
		default:
			v, ok := m.Lookup(id)
			w, wok := ref[id]
			if v != w || ok != wok || m.Get(id) != w {
				t.Fatalf("step %d: Lookup(%v) = %d, %v; want %d, %v", step, id, v, ok, w, wok)
			}
		}
		if step%500 == 0 {
			check(step)
		}
	}
	check(-1)
	for id := range ref {
		m.Delete(id)
	}
	if m.Len() != 0 || len(m.procs) != 0 {
		t.Fatalf("after deleting all: Len %d, %d processes left", m.Len(), len(m.procs))
	}
}

// TestIDMapDeleteWhileRanging deletes entries, the one visited and
// others, while ranging, as the agent does.
func TestIDMapDeleteWhileRanging(t *testing.T) {
	var m idMap[int]
	for seq := range uint64(500) {
		m.Set(wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: seq}, Index: 1}, int(seq))
		if seq%7 == 0 {
			m.Set(wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: seq}, Index: 2}, -int(seq)-1)
		}
	}
	seen := map[wire.ObjectID]bool{}
	for id, v := range m.All() {
		if seen[id] {
			t.Fatalf("%v visited twice", id)
		}
		seen[id] = true
		if (id.Index == 1) != (v >= 0) {
			t.Fatalf("%v has value %d", id, v)
		}
		m.Delete(id)
		// and its neighbour, which must then not be visited
		m.Delete(wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: id.Task.Seq + 1}, Index: 1})
	}
	for id := range seen {
		if id.Index == 1 && id.Task.Seq > 0 && seen[wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: id.Task.Seq - 1}, Index: 1}] {
			t.Fatalf("%v visited after its neighbour deleted it", id)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("Len %d after deleting everything", m.Len())
	}
}

func TestIDMapOf(t *testing.T) {
	var m taskMap[string]
	m.Set(wire.TaskID{Node: 1, Proc: 2, Seq: 5}, "a")
	m.Set(wire.TaskID{Node: 1, Proc: 2, Seq: 500}, "b")
	m.Set(wire.TaskID{Node: 1, Proc: 3, Seq: 5}, "c")
	n := 0
	for id, v := range m.m.Of(1, 2) {
		n++
		if id.Task.Proc != 2 || (v != "a" && v != "b") {
			t.Fatalf("Of(1, 2) gave %v=%q", id, v)
		}
	}
	if n != 2 {
		t.Fatalf("Of(1, 2) gave %d entries, want 2", n)
	}
	if v, ok := m.Lookup(wire.TaskID{Node: 1, Proc: 3, Seq: 5}); !ok || v != "c" {
		t.Fatalf("Lookup = %q, %v", v, ok)
	}
}

// TestIDMapOverflowKeepsNoEmptyChunk: an ID whose slot was taken when it
// came lives in the overflow map; updating it after the slot's owner left
// must not make a chunk that nothing fills.
func TestIDMapOverflowKeepsNoEmptyChunk(t *testing.T) {
	var m idMap[int]
	a := wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: 5}, Index: 1}
	b := wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: 1, Seq: 5}, Index: 2}
	m.Set(a, 1)
	m.Set(b, 2) // slot taken by a: b overflows
	m.Delete(a) // the chunk empties
	m.Set(b, 3) // an update, still in the overflow map
	if v, ok := m.Lookup(b); !ok || v != 3 {
		t.Fatalf("Lookup(b) = %d, %v", v, ok)
	}
	if n := len(m.procs[procKey{1, 1}].chunks); n != 0 {
		t.Fatalf("%d chunks kept for no entry", n)
	}
	m.Delete(b)
	if m.Len() != 0 || len(m.procs) != 0 {
		t.Fatalf("Len %d, %d processes after deleting everything", m.Len(), len(m.procs))
	}
}

// TestIDMapSetWhileRanging: entries made while ranging (the agent records
// results while it walks its tasks) must not land in a chunk the range is
// still reading, under that chunk's IDs.
func TestIDMapSetWhileRanging(t *testing.T) {
	var m idMap[int]
	id := func(proc wire.ProcID, seq uint64) wire.ObjectID {
		return wire.ObjectID{Task: wire.TaskID{Node: 1, Proc: proc, Seq: seq}, Index: 1}
	}
	for seq := range uint64(3) {
		m.Set(id(1, seq), int(seq))
	}
	for got, v := range m.All() {
		if got != id(1, uint64(v)) && got != id(2, uint64(v-100)) {
			t.Fatalf("visited %v with value %d, which was set for another ID", got, v)
		}
		if got.Task.Proc == 1 {
			// Empty process 1's only chunk, then fill others: a reused
			// chunk or process entry would show these under process 1.
			for seq := range uint64(3) {
				m.Delete(id(1, seq))
			}
			for seq := range uint64(3) {
				m.Set(id(2, seq), int(seq)+100)
			}
		}
	}
}
