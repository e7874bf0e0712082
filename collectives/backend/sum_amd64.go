package backend

import (
	"golang.org/x/sys/cpu"
)

// Vector kernels in sum_amd64.s: dst += src element by element, n a
// positive multiple of 128 bytes.

//go:noescape
func addF32(dst, src *byte, n int)

//go:noescape
func addF64(dst, src *byte, n int)

//go:noescape
func addI32(dst, src *byte, n int)

//go:noescape
func addI64(dst, src *byte, n int)

var hasAVX2 = cpu.X86.HasAVX2

// vectorSum adds the leading multiple of 128 bytes of src into dst with
// AVX2 when dt's sum has a kernel, and returns how many bytes it did.
func vectorSum(dt DType, dst, src []byte) int {
	n := len(dst) &^ 127
	if !hasAVX2 || n == 0 {
		return 0
	}
	switch dt {
	case F32:
		addF32(&dst[0], &src[0], n)
	case F64:
		addF64(&dst[0], &src[0], n)
	case I32:
		addI32(&dst[0], &src[0], n)
	case I64:
		addI64(&dst[0], &src[0], n)
	default:
		return 0
	}
	return n
}
