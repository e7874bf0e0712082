package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// NodeID names a node agent within a cluster; the head hands them out from 1.
type NodeID uint32

// ProcID names a process (driver or worker) within its node; the node agent
// hands them out from 1.
type ProcID uint32

// TaskID names a task, and an actor by the task that created it. The
// submitting process makes it without a round trip: node and process make it
// unique in the cluster, Seq within the process.
type TaskID struct {
	Node NodeID
	Proc ProcID
	Seq  uint64
}

// ObjectID names an object: return value Index (from 1) of a task, or, with
// Index 0, a value stored by Put (then Task.Seq is the put's own sequence).
// The node agent of Task.Node owns the object's metadata.
type ObjectID struct {
	Task  TaskID
	Index uint32
}

// ActorID names an actor: the ID of the task that created it.
type ActorID = TaskID

func (id TaskID) IsZero() bool { return id == TaskID{} }

func (id TaskID) String() string {
	return "t" + strconv.FormatUint(uint64(id.Node), 10) + "." +
		strconv.FormatUint(uint64(id.Proc), 10) + "." + strconv.FormatUint(id.Seq, 10)
}

func (id ObjectID) String() string {
	return "o" + id.Task.String()[1:] + "." + strconv.FormatUint(uint64(id.Index), 10)
}

// Owner is the node whose agent keeps the object's metadata.
func (id ObjectID) Owner() NodeID { return id.Task.Node }

// FileName is the object's name in a node's shared-memory store.
func (id ObjectID) FileName() string { return id.String() }

// ParseObjectID reads the form written by ObjectID.String.
func ParseObjectID(s string) (ObjectID, error) {
	if !strings.HasPrefix(s, "o") {
		return ObjectID{}, fmt.Errorf("object ID %q: want o<node>.<proc>.<seq>.<index>", s)
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) != 4 {
		return ObjectID{}, fmt.Errorf("object ID %q: want o<node>.<proc>.<seq>.<index>", s)
	}
	var n [4]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (i != 2 && v > 1<<32-1) {
			return ObjectID{}, fmt.Errorf("object ID %q: bad field %q", s, p)
		}
		n[i] = v
	}
	return ObjectID{Task: TaskID{NodeID(n[0]), ProcID(n[1]), n[2]}, Index: uint32(n[3])}, nil
}

func (e *Enc) TaskID(id TaskID) {
	e.Uvarint(uint64(id.Node))
	e.Uvarint(uint64(id.Proc))
	e.Uvarint(id.Seq)
}

func (e *Enc) ObjectID(id ObjectID) {
	e.TaskID(id.Task)
	e.Uvarint(uint64(id.Index))
}

func (d *Dec) u32v(what string) uint32 {
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.fail(what + " out of range")
		return 0
	}
	return uint32(v)
}

func (d *Dec) TaskID() TaskID {
	return TaskID{Node: NodeID(d.u32v("node")), Proc: ProcID(d.u32v("proc")), Seq: d.Uvarint()}
}

func (d *Dec) ObjectID() ObjectID {
	return ObjectID{Task: d.TaskID(), Index: d.u32v("index")}
}

func (e *Enc) ObjectIDs(ids []ObjectID) {
	e.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		e.ObjectID(id)
	}
}

func (d *Dec) ObjectIDs() []ObjectID {
	n := d.Len(4)
	if n == 0 {
		return nil
	}
	ids := make([]ObjectID, n)
	for i := range ids {
		ids[i] = d.ObjectID()
	}
	return ids
}

// Resources maps a resource name ("CPU", "GPU", "memory" or a custom name)
// to an amount. CPU and GPU may be fractional; memory is in bytes.
type Resources map[string]float64

func (e *Enc) Resources(r Resources) {
	e.Uvarint(uint64(len(r)))
	for k, v := range r {
		e.Str(k)
		e.F64(v)
	}
}

// oneCPU is the resources of most tasks, decoded once and shared: decoded
// Resources are read, never changed.
var oneCPU = Resources{"CPU": 1}

func (d *Dec) Resources() Resources {
	n := d.Len(9)
	if n == 0 {
		return nil
	}
	if n == 1 && d.Remaining() >= 4+8 && string(d.b[d.off:d.off+4]) == "\x03CPU" && d.b[d.off+4+7] == 0x3f && d.b[d.off+4+6] == 0xf0 && isZero(d.b[d.off+4:d.off+4+6]) {
		d.off += 4 + 8
		return oneCPU
	}
	r := make(Resources, n)
	for i := 0; i < n; i++ {
		k := d.Str()
		r[k] = d.F64()
	}
	return r
}

func (e *Enc) Strs(ss []string) {
	e.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.Str(s)
	}
}

func (d *Dec) Strs() []string {
	n := d.Len(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.Str()
	}
	return ss
}

func (e *Enc) StrMap(m map[string]string) {
	e.Uvarint(uint64(len(m)))
	for k, v := range m {
		e.Str(k)
		e.Str(v)
	}
}

func (d *Dec) StrMap() map[string]string {
	n := d.Len(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		k := d.Str()
		m[k] = d.Str()
	}
	return m
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
