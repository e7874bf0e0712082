package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"unsafe"
)

// Encoded is an encoded object: a header and a payload. It is either one
// slice of its own (small values, serializer output) or a shared header
// template plus a payload that aliases the encoded value's memory (strings
// and numeric slices): the caller must not modify that value until it has
// copied the bytes out with WriteTo or Bytes. The zero Encoded is empty.
type Encoded struct {
	whole   []byte // header and payload, owned by the Encoded; or nil
	tmpl    []byte // when whole is nil: header template, payload length 0
	payload []byte // when whole is nil: may alias the encoded value
}

// Len returns the encoded length in bytes.
func (e Encoded) Len() int {
	if e.whole != nil {
		return len(e.whole)
	}
	return len(e.tmpl) + len(e.payload)
}

// WriteTo copies the encoded bytes into dst[:e.Len()]. It panics if dst is
// shorter. For the payload to be aligned, dst should start 16-byte
// aligned (a page-aligned mapping, for instance).
func (e Encoded) WriteTo(dst []byte) {
	if e.whole != nil {
		copy(dst[:len(e.whole)], e.whole)
		return
	}
	if e.tmpl == nil {
		return
	}
	dst = dst[:e.Len()]
	copy(dst, e.tmpl)
	binary.LittleEndian.PutUint64(dst[offLen:], uint64(len(e.payload)))
	copy(dst[len(e.tmpl):], e.payload)
}

// Bytes returns the encoded bytes in one slice: the Encoded's own slice
// when it has one (do not modify it), or else a new one.
func (e Encoded) Bytes() []byte {
	if e.whole != nil || e.tmpl == nil {
		return e.whole
	}
	b := make([]byte, e.Len())
	e.WriteTo(b)
	return b
}

// Encode encodes v. The header records the static type T, and Decode must
// ask for the same T (Encode[any] records "interface {}", not the dynamic
// type). Strings and numeric slices are not copied: the result aliases v.
// Values the serializer cannot encode (channels, functions) fail with its
// error; cyclic values are not supported.
//
// Encode, Decode and the Encoded methods are safe for concurrent use.
func Encode[T any](v T) (Encoded, error) {
	ti := infoFor[T]()
	switch ti.kind {
	case kindScalar:
		b := make([]byte, len(ti.hdr)+ti.wire)
		copy(b, ti.hdr)
		binary.LittleEndian.PutUint64(b[offLen:], uint64(ti.wire))
		if ti.direct {
			copy(b[len(ti.hdr):], unsafe.Slice((*byte)(unsafe.Pointer(&v)), ti.size))
		} else {
			putWire(b[len(ti.hdr):], unsafe.Pointer(&v), 1, ti.size, ti.elem)
		}
		return Encoded{whole: b}, nil

	case kindString:
		s := *(*string)(unsafe.Pointer(&v))
		return Encoded{tmpl: ti.hdr, payload: unsafe.Slice(unsafe.StringData(s), len(s))}, nil

	case kindSlice:
		// T is a slice of numbers; read its header as a []byte whose
		// length counts elements.
		s := *(*[]byte)(unsafe.Pointer(&v))
		if s == nil {
			b := bytes.Clone(ti.hdr)
			b[offFlags] = flagNil
			return Encoded{whole: b}, nil
		}
		p, n := unsafe.Pointer(unsafe.SliceData(s)), len(s)
		if ti.direct {
			return Encoded{tmpl: ti.hdr, payload: bytesOf(p, n*ti.size)}, nil
		}
		payload := make([]byte, n*ti.wire)
		putWire(payload, p, n, ti.size, ti.elem)
		return Encoded{tmpl: ti.hdr, payload: payload}, nil
	}
	w := v // only the serializer path lets the value escape
	return encodeCBOR(ti, &w)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuf = 1 << 20

func encodeCBOR(ti *typeInfo, v any) (Encoded, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Write(ti.hdr)
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return Encoded{}, fmt.Errorf("codec: encode %s: %w", ti.name, err)
	}
	b := bytes.Clone(buf.Bytes())
	binary.LittleEndian.PutUint64(b[offLen:], uint64(len(b)-len(ti.hdr)))
	return Encoded{whole: b}, nil
}

// Decode decodes an object that Encode[T] produced. data may extend past
// the object; the extra bytes are ignored. A different T fails with a
// *TypeError, malformed bytes with an error wrapping ErrCorrupt.
//
// With view true, a []byte or numeric slice result aliases data instead of
// being copied when the payload is aligned for the element type (always,
// if data starts 16-byte aligned); data must then outlive the result and
// not change unless the change is meant to show through. Otherwise, and
// for all other types, the result shares nothing with data.
func Decode[T any](data []byte, view bool) (T, error) {
	var out T
	ti := infoFor[T]()
	h, err := parseHeader(data)
	if err != nil {
		return out, err
	}
	if h.fp != ti.fp {
		return out, &TypeError{Have: string(h.name), Want: ti.name}
	}
	if h.kind != ti.kind {
		return out, corruptf("%s stored as %v, want %v", ti.name, h.kind, ti.kind)
	}
	payload := h.payload(data)
	switch ti.kind {
	case kindScalar:
		if len(payload) != ti.wire {
			return out, corruptf("%s payload of %d bytes, want %d", ti.name, len(payload), ti.wire)
		}
		if ti.elem == reflect.Bool && payload[0] > 1 {
			return out, corruptf("bool byte %#x", payload[0])
		}
		if ti.direct {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&out)), ti.size), payload)
			return out, nil
		}
		var w T // out stays on the stack: only w's address escapes
		err := readWire(unsafe.Pointer(&w), payload, 1, ti.size, ti.elem)
		return w, err

	case kindString:
		*(*string)(unsafe.Pointer(&out)) = string(payload)
		return out, nil

	case kindSlice:
		if h.flags&flagNil != 0 {
			return out, nil
		}
		if len(payload)%ti.wire != 0 {
			return out, corruptf("%s payload of %d bytes, not a multiple of %d", ti.name, len(payload), ti.wire)
		}
		n := len(payload) / ti.wire
		var p unsafe.Pointer
		switch {
		case n == 0:
			p = makeElems(ti.size, 0)
		case view && ti.direct && uintptr(unsafe.Pointer(&payload[0]))%uintptr(ti.align) == 0:
			p = unsafe.Pointer(&payload[0])
		case ti.direct:
			p = makeElems(ti.size, n)
			copy(unsafe.Slice((*byte)(p), len(payload)), payload)
		default:
			p = makeElems(ti.size, n)
			if err := readWire(p, payload, n, ti.size, ti.elem); err != nil {
				return out, err
			}
		}
		// Write T's slice header as a []byte whose length counts elements.
		*(*[]byte)(unsafe.Pointer(&out)) = unsafe.Slice((*byte)(p), n)
		return out, nil
	}
	var w T
	if err := decMode.Unmarshal(payload, &w); err != nil {
		return out, fmt.Errorf("%w: decode %s: %w", ErrCorrupt, ti.name, err)
	}
	return w, nil
}

// TypeName returns the type recorded in the header of data: the Go type's
// String(), cut to 61 bytes plus "..." when longer than 64.
func TypeName(data []byte) (string, error) {
	h, err := parseHeader(data)
	if err != nil {
		return "", err
	}
	return string(h.name), nil
}
