package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed is wrapped by every decoding error: a frame that is
// truncated, oversized or otherwise not what its type says it is.
var ErrMalformed = errors.New("malformed message")

// Enc appends the binary form of message fields to a byte slice. It never
// fails; sizes are checked when the frame is sent.
type Enc struct{ b []byte }

// Bytes returns what has been encoded so far.
func (e *Enc) Bytes() []byte { return e.b }

// Reset empties the encoder, keeping its buffer.
func (e *Enc) Reset() { e.b = e.b[:0] }

func (e *Enc) U8(v uint8) { e.b = append(e.b, v) }
func (e *Enc) Bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *Enc) U32(v uint32)     { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *Enc) U64(v uint64)     { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *Enc) Uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *Enc) Varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *Enc) F64(v float64)    { e.U64(math.Float64bits(v)) }
func (e *Enc) Str(s string) {
	e.Uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *Enc) Blob(p []byte) {
	e.Uvarint(uint64(len(p)))
	e.b = append(e.b, p...)
}

// Dec reads fields written by Enc. The first error sticks: later reads
// return zero values, so decoders are straight-line code that checks Err
// once at the end.
type Dec struct {
	b   []byte
	off int
	err error
}

// NewDec returns a decoder over b.
func NewDec(b []byte) *Dec { return &Dec{b: b} }

// Err reports the first decoding error.
func (d *Dec) Err() error { return d.err }

// Remaining is the number of bytes not yet read.
func (d *Dec) Remaining() int { return len(d.b) - d.off }

func (d *Dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d of %d", ErrMalformed, what, d.off, len(d.b))
	}
}

func (d *Dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail("truncated " + what)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *Dec) U8() uint8 {
	p := d.take(1, "byte")
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *Dec) Bool() bool {
	switch d.U8() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad bool")
		return false
	}
}

func (d *Dec) U32() uint32 {
	p := d.take(4, "uint32")
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (d *Dec) U64() uint64 {
	p := d.take(8, "uint64")
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (d *Dec) F64() float64 { return math.Float64frombits(d.U64()) }

func (d *Dec) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *Dec) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// Len reads a count of elements that each take at least minSize bytes, and
// rejects counts the rest of the frame cannot hold: a hostile length never
// causes a large allocation.
func (d *Dec) Len(minSize int) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(d.Remaining()/minSize) {
		d.fail(fmt.Sprintf("count %d larger than frame", n))
		return 0
	}
	return int(n)
}

func (d *Dec) Str() string {
	n := d.Len(1)
	return string(d.take(n, "string"))
}

// Bytes returns a length-prefixed byte string; nil when empty. The result
// aliases the frame, which is never reused after decoding.
func (d *Dec) Bytes() []byte {
	n := d.Len(1)
	p := d.take(n, "bytes")
	if len(p) == 0 {
		return nil
	}
	return p[:len(p):len(p)]
}
