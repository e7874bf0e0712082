package backendtest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/raygo/raygo/collectives/backend"
)

// Data is rank's input of n elements for a test of op: values the dtype
// holds exactly, drawn from seed so that every process computes the same.
// Products use values near one so they stay finite.
func Data(dt backend.DType, op backend.Op, rank, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(rank)*0x9e3779b97f4a7c15+uint64(dt)<<8+uint64(op)))
	out := make([]byte, n*dt.Size())
	for i := 0; i < n; i++ {
		var v float64
		switch dt {
		case backend.F32, backend.F64, backend.F16, backend.BF16:
			if op == backend.Prod {
				v = 0.75 + rng.Float64()*0.5
			} else {
				v = rng.Float64()*2 - 1
			}
		case backend.I32, backend.I64:
			if op == backend.Prod {
				v = float64(rng.IntN(5) - 2)
			} else {
				v = float64(rng.IntN(2001) - 1000)
			}
		case backend.U8:
			if op == backend.Prod {
				v = float64(rng.IntN(4))
			} else {
				v = float64(rng.IntN(256))
			}
		}
		Put(dt, out, i, v)
	}
	return out
}

// Put stores v as element i of buf.
func Put(dt backend.DType, buf []byte, i int, v float64) {
	switch dt {
	case backend.F32:
		binary.NativeEndian.PutUint32(buf[4*i:], math.Float32bits(float32(v)))
	case backend.F64:
		binary.NativeEndian.PutUint64(buf[8*i:], math.Float64bits(v))
	case backend.I32:
		binary.NativeEndian.PutUint32(buf[4*i:], uint32(int32(int64(v))))
	case backend.I64:
		binary.NativeEndian.PutUint64(buf[8*i:], uint64(int64(v)))
	case backend.U8:
		buf[i] = uint8(int64(v))
	case backend.F16:
		binary.NativeEndian.PutUint16(buf[2*i:], uint16(backend.Float16From(float32(v))))
	case backend.BF16:
		binary.NativeEndian.PutUint16(buf[2*i:], uint16(backend.BFloat16From(float32(v))))
	}
}

// At reads element i of buf.
func At(dt backend.DType, buf []byte, i int) float64 {
	switch dt {
	case backend.F32:
		return float64(math.Float32frombits(binary.NativeEndian.Uint32(buf[4*i:])))
	case backend.F64:
		return math.Float64frombits(binary.NativeEndian.Uint64(buf[8*i:]))
	case backend.I32:
		return float64(int32(binary.NativeEndian.Uint32(buf[4*i:])))
	case backend.I64:
		return float64(int64(binary.NativeEndian.Uint64(buf[8*i:])))
	case backend.U8:
		return float64(buf[i])
	case backend.F16:
		return float64(backend.Float16(binary.NativeEndian.Uint16(buf[2*i:])).Float32())
	case backend.BF16:
		return float64(backend.BFloat16(binary.NativeEndian.Uint16(buf[2*i:])).Float32())
	}
	return math.NaN()
}

// Expect is the reduction of the inputs of ranks 0..size-1, computed in
// float64 for floating types and with the type's own wrap-around for
// integers.
func Expect(dt backend.DType, op backend.Op, size, n int, seed uint64) []float64 {
	in := make([][]byte, size)
	for r := range in {
		in[r] = Data(dt, op, r, n, seed)
	}
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		switch dt {
		case backend.I32, backend.I64, backend.U8:
			acc := int64(At(dt, in[0], i))
			for r := 1; r < size; r++ {
				v := int64(At(dt, in[r], i))
				switch op {
				case backend.Sum, backend.Avg:
					acc += v
				case backend.Prod:
					acc *= v
				case backend.Min:
					acc = min(acc, v)
				case backend.Max:
					acc = max(acc, v)
				}
			}
			switch dt { // wrap as the type does
			case backend.I32:
				acc = int64(int32(acc))
			case backend.U8:
				acc = int64(uint8(acc))
			}
			if op == backend.Avg {
				acc /= int64(size)
			}
			out[i] = float64(acc)
		default:
			acc := At(dt, in[0], i)
			for r := 1; r < size; r++ {
				v := At(dt, in[r], i)
				switch op {
				case backend.Sum, backend.Avg:
					acc += v
				case backend.Prod:
					acc *= v
				case backend.Min:
					acc = min(acc, v)
				case backend.Max:
					acc = max(acc, v)
				}
			}
			if op == backend.Avg {
				acc /= float64(size)
			}
			out[i] = acc
		}
	}
	return out
}

// Check compares got (elements of dt) with want. Floating types allow the
// rounding of size-1 steps at the type's precision; integers, Min and Max
// must match exactly.
func Check(dt backend.DType, op backend.Op, size int, got []byte, want []float64) error {
	if len(got) != len(want)*dt.Size() {
		return fmt.Errorf("result holds %d bytes, want %d elements of %v", len(got), len(want), dt)
	}
	var eps float64
	switch dt {
	case backend.F32:
		eps = 1e-6
	case backend.F16:
		eps = 1e-3
	case backend.BF16:
		eps = 8e-3
	}
	if op == backend.Min || op == backend.Max {
		eps = 0
	}
	if dt == backend.F16 || dt == backend.BF16 {
		eps *= float64(size) // partial results are rounded at every step
	}
	tol := eps * float64(size+1) * 2
	for i, w := range want {
		g := At(dt, got, i)
		if eps == 0 && dt != backend.F64 {
			if g != w {
				return fmt.Errorf("element %d of %d: got %v, want %v", i, len(want), g, w)
			}
			continue
		}
		if dt == backend.F64 {
			tol = 1e-12 * float64(size+1)
		}
		if math.Abs(g-w) > tol*max(1, math.Abs(w)) {
			return fmt.Errorf("element %d of %d: got %v, want %v (tolerance %g)", i, len(want), g, w, tol)
		}
	}
	return nil
}
