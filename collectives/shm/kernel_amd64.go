package shm

import (
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/raygo/raygo/collectives/backend"
)

// Vector kernels in kernel_amd64.s; n is a positive multiple of 128.

//go:noescape
func addF32(out, x, y *byte, n int)

//go:noescape
func addF64(out, x, y *byte, n int)

//go:noescape
func addI32(out, x, y *byte, n int)

//go:noescape
func addI64(out, x, y *byte, n int)

//go:noescape
func addF32x2(out, out2, x, y *byte, n int)

//go:noescape
func addF64x2(out, out2, x, y *byte, n int)

//go:noescape
func addI32x2(out, out2, x, y *byte, n int)

//go:noescape
func addI64x2(out, out2, x, y *byte, n int)

//go:noescape
func addF32x2NT(out, out2, x, y *byte, n int)

//go:noescape
func addF64x2NT(out, out2, x, y *byte, n int)

//go:noescape
func addI32x2NT(out, out2, x, y *byte, n int)

//go:noescape
func addI64x2NT(out, out2, x, y *byte, n int)

var hasAVX2 = cpu.X86.HasAVX2

// vecSum2 sums the leading multiple of 128 bytes of x and y into out
// (and out2) with AVX2 and returns how many bytes it did. With nt, out2
// (32-byte aligned) is written with non-temporal stores.
func vecSum2(dt backend.DType, out, out2, x, y []byte, nt bool) int {
	n := len(out) &^ 127
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = x[n-1], y[n-1]
	po, px, py := unsafe.SliceData(out), unsafe.SliceData(x), unsafe.SliceData(y)
	if out2 != nil {
		_ = out2[n-1]
		po2 := unsafe.SliceData(out2)
		nt = nt && uintptr(unsafe.Pointer(po2))%32 == 0 // VMOVNTDQ faults otherwise
		switch {
		case dt == backend.F32 && nt:
			addF32x2NT(po, po2, px, py, n)
		case dt == backend.F64 && nt:
			addF64x2NT(po, po2, px, py, n)
		case dt == backend.I32 && nt:
			addI32x2NT(po, po2, px, py, n)
		case dt == backend.I64 && nt:
			addI64x2NT(po, po2, px, py, n)
		case dt == backend.F32:
			addF32x2(po, po2, px, py, n)
		case dt == backend.F64:
			addF64x2(po, po2, px, py, n)
		case dt == backend.I32:
			addI32x2(po, po2, px, py, n)
		case dt == backend.I64:
			addI64x2(po, po2, px, py, n)
		default:
			return 0
		}
		return n
	}
	switch dt {
	case backend.F32:
		addF32(po, px, py, n)
	case backend.F64:
		addF64(po, px, py, n)
	case backend.I32:
		addI32(po, px, py, n)
	case backend.I64:
		addI64(po, px, py, n)
	default:
		return 0
	}
	return n
}

//go:noescape
func copyNT(dst, src *byte, n int)

// stageCopy copies src into dst, a 64-byte aligned slice of a stage, with
// non-temporal stores when nt is set.
func stageCopy(dst, src []byte, nt bool) {
	n := min(len(dst), len(src)) &^ 127
	if nt && hasAVX2 && n > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(dst)))%32 == 0 {
		copyNT(unsafe.SliceData(dst), unsafe.SliceData(src), n)
		copy(dst[n:], src[n:])
		return
	}
	copy(dst, src)
}
