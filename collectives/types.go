package collectives

import (
	"unsafe"

	"github.com/raygo/raygo/collectives/backend"
)

// DType is the element type of a buffer; Op is a reduction.
type (
	DType = backend.DType
	Op    = backend.Op
)

// Element types.
const (
	F32  = backend.F32
	F64  = backend.F64
	I32  = backend.I32
	I64  = backend.I64
	U8   = backend.U8
	F16  = backend.F16
	BF16 = backend.BF16
)

// Reductions. Avg sums and divides by the group size (integers truncate).
const (
	Sum  = backend.Sum
	Prod = backend.Prod
	Min  = backend.Min
	Max  = backend.Max
	Avg  = backend.Avg
)

// Float16 and BFloat16 are 16-bit floating-point numbers kept as their bit
// patterns; reductions widen them to float32. Convert with
// Float16From/BFloat16From and their Float32 methods.
type (
	Float16  = backend.Float16
	BFloat16 = backend.BFloat16
)

// Float16From and BFloat16From round a float32 to the nearest 16-bit value.
var (
	Float16From  = backend.Float16From
	BFloat16From = backend.BFloat16From
)

// WaitError says that a call gave up waiting, and for which ranks.
type WaitError = backend.WaitError

// Elem is the set of element types the operations take.
type Elem interface {
	float32 | float64 | int32 | int64 | uint8 | Float16 | BFloat16
}

// DTypeOf is the DType of T.
func DTypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return F32
	case float64:
		return F64
	case int32:
		return I32
	case int64:
		return I64
	case uint8:
		return U8
	case Float16:
		return F16
	case BFloat16:
		return BF16
	}
	panic("unreachable")
}

// bytesOf is s's memory as bytes, without a copy.
func bytesOf[T Elem](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// overlap says how a and b share memory: same (identical start and
// length), partial, or none.
func overlap(a, b []byte) (same, partial bool) {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0 && unsafe.SliceData(a) == unsafe.SliceData(b), false
	}
	pa, pb := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	if pa == pb && len(a) == len(b) {
		return true, false
	}
	return false, pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
