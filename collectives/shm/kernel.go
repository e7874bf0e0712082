package shm

import (
	"unsafe"

	"github.com/raygo/raygo/collectives/backend"
)

// blockBytes is the piece reductions of several sources work on, small
// enough that the accumulator stays in the L1 cache between sources.
const blockBytes = 4096

// combine sets out, and out2 when it is not nil, to srcs[0] op srcs[1]
// op ... in that order, so that every rank reducing the same sources gets
// the same bits. out may be one of srcs (in place); out2 is none of them,
// and is a 64-byte aligned piece of a stage, written with non-temporal
// stores when b.nt is set. Every slice has the same length, a multiple
// of dt.Size().
func (b *Backend) combine(dt backend.DType, op backend.Op, out, out2 []byte, srcs [][]byte) {
	if len(out) == 0 {
		return
	}
	if len(srcs) == 1 {
		copy(out, srcs[0])
		stageCopy(out2, srcs[0], b.nt)
		return
	}
	fast := (op == backend.Sum || op == backend.Avg) && (dt == backend.F32 || dt == backend.F64 || dt == backend.I32 || dt == backend.I64)
	if fast && len(srcs) == 2 {
		sumTo(dt, out, out2, srcs[0], srcs[1], b.nt)
		return
	}
	for lo := 0; lo < len(out); lo += blockBytes {
		hi := min(lo+blockBytes, len(out))
		if len(srcs) == 2 {
			backend.Reduce3(dt, op, out[lo:hi], srcs[0][lo:hi], srcs[1][lo:hi])
			if out2 != nil {
				stageCopy(out2[lo:hi], out[lo:hi], b.nt)
			}
			continue
		}
		acc := b.acc[:hi-lo]
		if fast {
			sumTo(dt, acc, nil, srcs[0][lo:hi], srcs[1][lo:hi], false)
			for _, s := range srcs[2:] {
				sumTo(dt, acc, nil, acc, s[lo:hi], false)
			}
		} else {
			backend.Reduce3(dt, op, acc, srcs[0][lo:hi], srcs[1][lo:hi])
			for _, s := range srcs[2:] {
				backend.Reduce(dt, op, acc, s[lo:hi])
			}
		}
		copy(out[lo:hi], acc)
		if out2 != nil {
			stageCopy(out2[lo:hi], acc, b.nt)
		}
	}
}

// sumTo sets out, and out2 when it is not nil, to x + y, for dt float32,
// float64, int32 or int64: with vector instructions where it can, the
// rest element by element. nt is as for vecSum2.
func sumTo(dt backend.DType, out, out2, x, y []byte, nt bool) {
	k := vecSum2(dt, out, out2, x, y, nt)
	if k == len(out) {
		return
	}
	out, x, y = out[k:], x[k:], y[k:]
	if out2 != nil {
		out2 = out2[k:]
	}
	switch dt {
	case backend.F32:
		sum2(view[float32](out), view[float32](out2), view[float32](x), view[float32](y))
	case backend.F64:
		sum2(view[float64](out), view[float64](out2), view[float64](x), view[float64](y))
	case backend.I32:
		sum2(view[int32](out), view[int32](out2), view[int32](x), view[int32](y))
	case backend.I64:
		sum2(view[int64](out), view[int64](out2), view[int64](x), view[int64](y))
	}
}

// sum2 sets out[i] (and out2[i] when out2 is not nil) to x[i] + y[i].
func sum2[T float32 | float64 | int32 | int64](out, out2, x, y []T) {
	n := len(out)
	x, y = x[:n], y[:n]
	i := 0
	if out2 != nil {
		out2 = out2[:n]
		for ; i+4 <= n; i += 4 {
			o, o2, a, c := out[i:i+4:i+4], out2[i:i+4:i+4], x[i:i+4:i+4], y[i:i+4:i+4]
			s0, s1, s2, s3 := a[0]+c[0], a[1]+c[1], a[2]+c[2], a[3]+c[3]
			o[0], o[1], o[2], o[3] = s0, s1, s2, s3
			o2[0], o2[1], o2[2], o2[3] = s0, s1, s2, s3
		}
		for ; i < n; i++ {
			s := x[i] + y[i]
			out[i], out2[i] = s, s
		}
		return
	}
	for ; i+4 <= n; i += 4 {
		o, a, c := out[i:i+4:i+4], x[i:i+4:i+4], y[i:i+4:i+4]
		o[0], o[1], o[2], o[3] = a[0]+c[0], a[1]+c[1], a[2]+c[2], a[3]+c[3]
	}
	for ; i < n; i++ {
		out[i] = x[i] + y[i]
	}
}

// view reinterprets b as a slice of T.
func view[T any](b []byte) []T {
	if len(b) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/int(unsafe.Sizeof(z)))
}
