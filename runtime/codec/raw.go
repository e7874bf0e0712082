package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"unsafe"
)

// The raw path: scalars, strings and numeric slices are encoded as their
// little-endian bytes, with int, uint and uintptr widened to 64 bits. On a
// little-endian 64-bit host (typeInfo.direct) that is the value's memory,
// which Encode aliases and Decode copies or views. The functions below are
// the element-by-element fallback for other hosts.

// bytesOf returns the n*size bytes at p.
func bytesOf(p unsafe.Pointer, nbytes int) []byte {
	if nbytes == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), nbytes)
}

// makeElems allocates pointer-free memory for n elements of the given
// size, aligned for any numeric element of that size. n == 0 gives a
// non-nil pointer.
func makeElems(size, n int) unsafe.Pointer {
	switch size {
	case 1:
		return unsafe.Pointer(unsafe.SliceData(make([]uint8, n)))
	case 2:
		return unsafe.Pointer(unsafe.SliceData(make([]uint16, n)))
	case 4:
		return unsafe.Pointer(unsafe.SliceData(make([]uint32, n)))
	case 8:
		return unsafe.Pointer(unsafe.SliceData(make([]uint64, n)))
	case 16:
		return unsafe.Pointer(unsafe.SliceData(make([][2]uint64, n)))
	}
	panic("codec: bad element size") // unreachable: sizes come from wireSize kinds
}

// putWire writes n elements of kind k (in-memory size size) from src into
// dst, which holds n*wire bytes, as little-endian.
func putWire(dst []byte, src unsafe.Pointer, n, size int, k reflect.Kind) {
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		p := unsafe.Add(src, i*size)
		switch k {
		case reflect.Bool, reflect.Int8, reflect.Uint8:
			dst[i] = *(*uint8)(p)
		case reflect.Int16, reflect.Uint16:
			le.PutUint16(dst[2*i:], *(*uint16)(p))
		case reflect.Int32, reflect.Uint32, reflect.Float32:
			le.PutUint32(dst[4*i:], *(*uint32)(p))
		case reflect.Int64, reflect.Uint64, reflect.Float64:
			le.PutUint64(dst[8*i:], *(*uint64)(p))
		case reflect.Int:
			le.PutUint64(dst[8*i:], uint64(int64(*(*int)(p))))
		case reflect.Uint:
			le.PutUint64(dst[8*i:], uint64(*(*uint)(p)))
		case reflect.Uintptr:
			le.PutUint64(dst[8*i:], uint64(*(*uintptr)(p)))
		case reflect.Complex64:
			c := (*[2]uint32)(p)
			le.PutUint32(dst[8*i:], c[0])
			le.PutUint32(dst[8*i+4:], c[1])
		case reflect.Complex128:
			c := (*[2]uint64)(p)
			le.PutUint64(dst[16*i:], c[0])
			le.PutUint64(dst[16*i+8:], c[1])
		}
	}
}

// readWire is the inverse of putWire. It fails only when an int or uint
// does not fit the host's int.
func readWire(dst unsafe.Pointer, src []byte, n, size int, k reflect.Kind) error {
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		p := unsafe.Add(dst, i*size)
		switch k {
		case reflect.Bool, reflect.Int8, reflect.Uint8:
			*(*uint8)(p) = src[i]
		case reflect.Int16, reflect.Uint16:
			*(*uint16)(p) = le.Uint16(src[2*i:])
		case reflect.Int32, reflect.Uint32, reflect.Float32:
			*(*uint32)(p) = le.Uint32(src[4*i:])
		case reflect.Int64, reflect.Uint64, reflect.Float64:
			*(*uint64)(p) = le.Uint64(src[8*i:])
		case reflect.Int:
			v := int64(le.Uint64(src[8*i:]))
			if v < math.MinInt || v > math.MaxInt {
				return corruptf("int %d does not fit in %d bits", v, 8*size)
			}
			*(*int)(p) = int(v)
		case reflect.Uint:
			v := le.Uint64(src[8*i:])
			if v > math.MaxUint {
				return corruptf("uint %d does not fit in %d bits", v, 8*size)
			}
			*(*uint)(p) = uint(v)
		case reflect.Uintptr:
			v := le.Uint64(src[8*i:])
			if uint64(uintptr(v)) != v {
				return corruptf("uintptr %d does not fit in %d bits", v, 8*size)
			}
			*(*uintptr)(p) = uintptr(v)
		case reflect.Complex64:
			c := (*[2]uint32)(p)
			c[0], c[1] = le.Uint32(src[8*i:]), le.Uint32(src[8*i+4:])
		case reflect.Complex128:
			c := (*[2]uint64)(p)
			c[0], c[1] = le.Uint64(src[16*i:]), le.Uint64(src[16*i+8:])
		}
	}
	return nil
}
