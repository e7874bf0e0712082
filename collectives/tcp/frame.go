package tcp

import (
	"encoding/binary"
	"fmt"
)

// Every message on a connection is a frame: a 16-byte header and a
// payload of the length it gives.
//
//	byte 0     kind (collective data, point-to-point, bye, abort)
//	byte 1     operation (collective data only)
//	bytes 2-3  step of the algorithm (collective data only)
//	bytes 4-7  sequence: the collective call's number on both ranks, or
//	           the point-to-point message's number between the pair
//	bytes 8-15 payload length
//
// Integers are little-endian. The receiver knows what it expects next
// and compares every field, so ranks that call different operations, in
// a different order or with different lengths get an error naming the
// peer and both sides' values instead of a hang or corrupted data.
const headerLen = 16

type kind uint8

const (
	kindColl  kind = iota + 1 // data of a collective operation
	kindP2P                   // a Send
	kindBye                   // the peer closed the group
	kindAbort                 // the peer gave up; the payload says why
)

func (k kind) String() string {
	switch k {
	case kindColl:
		return "collective data"
	case kindP2P:
		return "a point-to-point message"
	case kindBye:
		return "a close"
	case kindAbort:
		return "an abort"
	}
	return fmt.Sprintf("frame kind %d", uint8(k))
}

type opcode uint8

const (
	opAllreduce opcode = iota + 1
	opBroadcast
	opAllgather
	opReduceScatter
	opBarrier
	opReduce
	opGather
	opScatter
	opAllToAll
)

var opNames = [...]string{
	opAllreduce:     "allreduce",
	opBroadcast:     "broadcast",
	opAllgather:     "allgather",
	opReduceScatter: "reducescatter",
	opBarrier:       "barrier",
	opReduce:        "reduce",
	opGather:        "gather",
	opScatter:       "scatter",
	opAllToAll:      "alltoall",
}

func (o opcode) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

type header struct {
	kind kind
	op   opcode
	step uint16
	seq  uint32
	n    uint64
}

func (h header) put(b *[headerLen]byte) {
	b[0] = byte(h.kind)
	b[1] = byte(h.op)
	binary.LittleEndian.PutUint16(b[2:], h.step)
	binary.LittleEndian.PutUint32(b[4:], h.seq)
	binary.LittleEndian.PutUint64(b[8:], h.n)
}

func parseHeader(b *[headerLen]byte) header {
	return header{
		kind: kind(b[0]),
		op:   opcode(b[1]),
		step: binary.LittleEndian.Uint16(b[2:]),
		seq:  binary.LittleEndian.Uint32(b[4:]),
		n:    binary.LittleEndian.Uint64(b[8:]),
	}
}

// maxAbortLen bounds the reason carried by an abort frame.
const maxAbortLen = 4096
