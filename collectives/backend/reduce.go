package backend

import (
	"fmt"
	"unsafe"
)

// Reduce combines src into dst element by element: dst[i] = dst[i] op
// src[i]. Both hold elements of type dt and have the same length, a
// multiple of dt.Size(). Avg reduces like Sum (see Scale). Sums of
// float32, float64, int32 and int64 use AVX2 where the CPU has it, adding
// each element exactly as the scalar loop does.
func Reduce(dt DType, op Op, dst, src []byte) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("collectives: reduce of %d bytes into %d", len(src), len(dst)))
	}
	if op == Sum || op == Avg {
		k := vectorSum(dt, dst, src)
		dst, src = dst[k:], src[k:]
	}
	reduceScalar(dt, op, dst, src)
}

// reduceScalar is Reduce without the vector kernels.
func reduceScalar(dt DType, op Op, dst, src []byte) {
	if len(dst) == 0 {
		return
	}
	if op == Avg {
		op = Sum
	}
	switch dt {
	case F32:
		reduceNum(op, view[float32](dst), view[float32](src))
	case F64:
		reduceNum(op, view[float64](dst), view[float64](src))
	case I32:
		reduceNum(op, view[int32](dst), view[int32](src))
	case I64:
		reduceNum(op, view[int64](dst), view[int64](src))
	case U8:
		reduceNum(op, dst, src)
	case F16:
		reduceHalf(op, view[uint16](dst), view[uint16](src), func(h uint16) float32 { return Float16(h).Float32() }, func(f float32) uint16 { return uint16(Float16From(f)) })
	case BF16:
		reduceHalf(op, view[uint16](dst), view[uint16](src), func(h uint16) float32 { return BFloat16(h).Float32() }, func(f float32) uint16 { return uint16(BFloat16From(f)) })
	default:
		panic(fmt.Sprintf("collectives: reduce of %v", dt))
	}
}

// Reduce3 sets dst[i] = a[i] op b[i]; dst may be a or b.
func Reduce3(dt DType, op Op, dst, a, b []byte) {
	if len(dst) != len(a) || len(a) != len(b) {
		panic(fmt.Sprintf("collectives: reduce of %d and %d bytes into %d", len(a), len(b), len(dst)))
	}
	if len(dst) == 0 {
		return
	}
	switch {
	case &dst[0] == &a[0]:
		Reduce(dt, op, dst, b)
	case &dst[0] == &b[0]:
		Reduce(dt, op, dst, a) // every op is commutative
	default:
		copy(dst, a)
		Reduce(dt, op, dst, b)
	}
}

// Scale divides every element of buf by n (for Avg). Integers divide
// with truncation toward zero.
func Scale(dt DType, buf []byte, n int) {
	if n == 1 || len(buf) == 0 {
		return
	}
	switch dt {
	case F32:
		s := view[float32](buf)
		inv := 1 / float32(n)
		for i := range s {
			s[i] *= inv
		}
	case F64:
		s := view[float64](buf)
		for i := range s {
			s[i] /= float64(n)
		}
	case I32:
		s := view[int32](buf)
		for i := range s {
			s[i] /= int32(n)
		}
	case I64:
		s := view[int64](buf)
		for i := range s {
			s[i] /= int64(n)
		}
	case U8:
		for i := range buf {
			buf[i] /= uint8(n)
		}
	case F16:
		s := view[uint16](buf)
		for i := range s {
			s[i] = uint16(Float16From(Float16(s[i]).Float32() / float32(n)))
		}
	case BF16:
		s := view[uint16](buf)
		for i := range s {
			s[i] = uint16(BFloat16From(BFloat16(s[i]).Float32() / float32(n)))
		}
	}
}

type number interface {
	~float32 | ~float64 | ~int32 | ~int64 | ~uint8
}

// view reinterprets b as a slice of T. b's start must be aligned for T,
// which holds for Go allocations and for shared-memory offsets that are
// multiples of 8.
func view[T any](b []byte) []T {
	if len(b) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}

func reduceNum[T number](op Op, dst, src []T) {
	src = src[:len(dst)]
	switch op {
	case Sum:
		i := 0
		for ; i+4 <= len(dst); i += 4 {
			d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
			d[0] += s[0]
			d[1] += s[1]
			d[2] += s[2]
			d[3] += s[3]
		}
		for ; i < len(dst); i++ {
			dst[i] += src[i]
		}
	case Prod:
		for i := range dst {
			dst[i] *= src[i]
		}
	case Min:
		for i := range dst {
			dst[i] = min(dst[i], src[i])
		}
	case Max:
		for i := range dst {
			dst[i] = max(dst[i], src[i])
		}
	default:
		panic(fmt.Sprintf("collectives: reduce with %v", op))
	}
}

func reduceHalf(op Op, dst, src []uint16, wide func(uint16) float32, narrow func(float32) uint16) {
	src = src[:len(dst)]
	for i := range dst {
		a, b := wide(dst[i]), wide(src[i])
		var r float32
		switch op {
		case Sum:
			r = a + b
		case Prod:
			r = a * b
		case Min:
			r = min(a, b)
		case Max:
			r = max(a, b)
		default:
			panic(fmt.Sprintf("collectives: reduce with %v", op))
		}
		dst[i] = narrow(r)
	}
}
