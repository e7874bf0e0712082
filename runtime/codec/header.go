package codec

import (
	"encoding/binary"
	"fmt"
)

// Header layout, little-endian, at the start of every encoded object:
//
//	offset size field
//	0      2    magic "RG"
//	2      1    version (1)
//	3      1    kind (kindScalar, kindString, kindSlice, kindCBOR)
//	4      1    length of the type name that follows, at most maxName
//	5      1    flags (flagNil)
//	6      2    reserved, zero
//	8      8    type fingerprint (see Fingerprint)
//	16     8    payload length in bytes
//	24     n    type name, for error messages (cut to maxName bytes)
//	24+n   ...  zero padding up to the next multiple of 16: the payload offset
//
// A payload therefore starts 16-byte aligned whenever the encoded bytes do.
// With a type name of up to 24 bytes the header is 48 bytes; "int" takes 32.
const (
	magic0, magic1 = 'R', 'G'
	version        = 1

	fixedLen   = 24
	maxName    = 64
	payloadAln = 16

	offKind  = 3
	offName  = 4
	offFlags = 5
	offFP    = 8
	offLen   = 16
)

// kind says how the payload is laid out.
type kind uint8

const (
	kindScalar kind = 1 + iota // one number or bool: its little-endian bytes
	kindString                 // string bytes
	kindSlice                  // numeric slice: the elements' little-endian bytes
	kindCBOR                   // anything else: CBOR (RFC 8949)
	kindEnd
)

func (k kind) String() string {
	switch k {
	case kindScalar:
		return "scalar"
	case kindString:
		return "string"
	case kindSlice:
		return "slice"
	case kindCBOR:
		return "cbor"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// flagNil marks a nil slice, so that nil and empty slices both round-trip.
const flagNil = 1

// header is a parsed header. name aliases the encoded bytes.
type header struct {
	kind  kind
	flags byte
	fp    uint64
	name  []byte
	off   int // payload offset
	n     int // payload length
}

func headerLen(nameLen int) int {
	return (fixedLen + nameLen + payloadAln - 1) &^ (payloadAln - 1)
}

// newHeader builds a header template with payload length 0 and no flags.
func newHeader(k kind, fp uint64, name string) []byte {
	if len(name) > maxName {
		name = name[:maxName-3] + "..."
	}
	h := make([]byte, headerLen(len(name)))
	h[0], h[1], h[2], h[offKind] = magic0, magic1, version, byte(k)
	h[offName] = byte(len(name))
	binary.LittleEndian.PutUint64(h[offFP:], fp)
	copy(h[fixedLen:], name)
	return h
}

// parseHeader checks the header of data and the length of its payload.
// Bytes after the payload are ignored, so data may be a page-rounded
// mapping.
func parseHeader(data []byte) (header, error) {
	var h header
	if len(data) < fixedLen {
		return h, corruptf("%d bytes, shorter than a header", len(data))
	}
	if data[0] != magic0 || data[1] != magic1 {
		return h, corruptf("bad magic %#x %#x", data[0], data[1])
	}
	if data[2] != version {
		return h, corruptf("unknown version %d", data[2])
	}
	h.kind = kind(data[offKind])
	if h.kind == 0 || h.kind >= kindEnd {
		return h, corruptf("unknown kind %d", data[offKind])
	}
	nameLen := int(data[offName])
	if nameLen > maxName {
		return h, corruptf("type name length %d over %d", nameLen, maxName)
	}
	h.flags = data[offFlags]
	if h.flags&^flagNil != 0 || data[6] != 0 || data[7] != 0 {
		return h, corruptf("unknown flags %#x %#x %#x", data[offFlags], data[6], data[7])
	}
	h.off = headerLen(nameLen)
	if h.off > len(data) {
		return h, corruptf("%d bytes, shorter than its %d-byte header", len(data), h.off)
	}
	n := binary.LittleEndian.Uint64(data[offLen:])
	if n > uint64(len(data)-h.off) {
		return h, corruptf("payload of %d bytes, but only %d follow the header", n, len(data)-h.off)
	}
	h.n = int(n)
	if h.flags&flagNil != 0 && (h.kind != kindSlice || h.n != 0) {
		return h, corruptf("nil flag on a %v with %d payload bytes", h.kind, h.n)
	}
	h.fp = binary.LittleEndian.Uint64(data[offFP:])
	h.name = data[fixedLen : fixedLen+nameLen]
	return h, nil
}

func (h *header) payload(data []byte) []byte { return data[h.off : h.off+h.n : h.off+h.n] }
