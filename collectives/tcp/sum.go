package tcp

import "github.com/raygo/raygo/collectives/backend"

// reduce is backend.Reduce (dst = dst op src), with sums of float32,
// float64, int32 and int64 vectorized where the CPU allows. Each element
// is added exactly as backend.Reduce adds it, so the bits are the same.
func reduce(dt backend.DType, op backend.Op, dst, src []byte) {
	if op == backend.Sum && len(dst) == len(src) {
		k := vectorSum(dt, dst, src)
		dst, src = dst[k:], src[k:]
	}
	backend.Reduce(dt, op, dst, src)
}
