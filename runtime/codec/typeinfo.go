package codec

import (
	"encoding"
	"encoding/binary"
	"hash/fnv"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// typeInfo is what Encode and Decode need to know about a Go type. It is
// computed once per type and cached.
type typeInfo struct {
	name  string // reflect.Type.String()
	fp    uint64 // see fingerprint
	kind  kind
	elem  reflect.Kind // the scalar's kind, or the slice element's kind
	size  int          // in-memory size of the scalar or element
	align int          // in-memory alignment of the scalar or element
	wire  int          // encoded size of the scalar or element
	// direct is true when the in-memory bytes are the encoded bytes, so
	// that encoding can alias memory and decoding can copy or view it:
	// little-endian host, and int and uint are 64-bit.
	direct bool
	hdr    []byte // header template: payload length 0, no flags; never written
}

var (
	infos sync.Map // reflect.Type -> *typeInfo

	hostLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
)

func infoFor[T any]() *typeInfo {
	// The commonest types skip the map: small task results are mostly
	// these, and a lookup is a third of encoding an int.
	switch any((*T)(nil)).(type) {
	case *int:
		return infoInt
	case *int64:
		return infoInt64
	case *float64:
		return infoFloat64
	case *bool:
		return infoBool
	case *string:
		return infoString
	case *[]byte:
		return infoBytes
	case *[]float64:
		return infoFloat64s
	case *[]float32:
		return infoFloat32s
	}
	t := reflect.TypeFor[T]()
	if ti, ok := infos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti, _ := infos.LoadOrStore(t, newTypeInfo(t))
	return ti.(*typeInfo)
}

var (
	infoInt      = newTypeInfo(reflect.TypeFor[int]())
	infoInt64    = newTypeInfo(reflect.TypeFor[int64]())
	infoFloat64  = newTypeInfo(reflect.TypeFor[float64]())
	infoBool     = newTypeInfo(reflect.TypeFor[bool]())
	infoString   = newTypeInfo(reflect.TypeFor[string]())
	infoBytes    = newTypeInfo(reflect.TypeFor[[]byte]())
	infoFloat64s = newTypeInfo(reflect.TypeFor[[]float64]())
	infoFloat32s = newTypeInfo(reflect.TypeFor[[]float32]())
)

func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{name: t.String(), fp: fingerprint(t), kind: kindCBOR}
	switch {
	case t.Kind() == reflect.String && !customCoded(t):
		ti.kind = kindString
	case wireSize(t.Kind(), true) > 0 && !customCoded(t):
		ti.kind = kindScalar
		ti.elem, ti.size, ti.align = t.Kind(), int(t.Size()), t.Align()
	case t.Kind() == reflect.Slice && wireSize(t.Elem().Kind(), false) > 0 &&
		!customCoded(t) && !customCoded(t.Elem()):
		ti.kind = kindSlice
		ti.elem, ti.size, ti.align = t.Elem().Kind(), int(t.Elem().Size()), t.Elem().Align()
	}
	if ti.kind == kindScalar || ti.kind == kindSlice {
		ti.wire = wireSize(ti.elem, true)
		ti.direct = hostLE && ti.size == ti.wire
	}
	ti.hdr = newHeader(ti.kind, ti.fp, ti.name)
	return ti
}

// wireSize is the encoded size of one value of kind k on the raw path, or
// 0 when k has none. int, uint and uintptr are 64-bit on the wire. bool is raw only as a scalar: a slice view would let
// bytes other than 0 and 1 into a []bool.
func wireSize(k reflect.Kind, scalar bool) int {
	switch k {
	case reflect.Bool:
		if scalar {
			return 1
		}
	case reflect.Int8, reflect.Uint8:
		return 1
	case reflect.Int16, reflect.Uint16:
		return 2
	case reflect.Int32, reflect.Uint32, reflect.Float32:
		return 4
	case reflect.Int, reflect.Uint, reflect.Uintptr, reflect.Int64, reflect.Uint64, reflect.Float64, reflect.Complex64:
		return 8
	case reflect.Complex128:
		return 16
	}
	return 0
}

var (
	binaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	cborMarshaler     = reflect.TypeFor[cbor.Marshaler]()
	cborUnmarshaler   = reflect.TypeFor[cbor.Unmarshaler]()
)

// customCoded reports whether t has its own encoding, which the raw path
// would bypass; such types go through the serializer.
func customCoded(t reflect.Type) bool {
	for _, i := range [...]reflect.Type{binaryMarshaler, binaryUnmarshaler, cborMarshaler, cborUnmarshaler} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// fingerprint hashes (FNV-1a) the type's kind, its package path when it
// is named, and its String(). Two processes running the same binary agree
// on it; it tells apart types whose names differ, and named types of the
// same name from different packages.
func fingerprint(t reflect.Type) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(t.Kind())})
	h.Write([]byte(t.PkgPath()))
	h.Write([]byte{0})
	h.Write([]byte(t.String()))
	return h.Sum64()
}

// Fingerprint returns the 64-bit type fingerprint that Encode[T] records
// in the header and Decode[T] checks.
func Fingerprint[T any]() uint64 { return infoFor[T]().fp }
