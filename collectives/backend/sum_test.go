package backend

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestReduceMatches: the vectorized sums give exactly the scalar loop's
// bits, special values included.
func TestReduceMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specials := []uint64{0, 1, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000001, 0x8000000000000000, 0x000fffffffffffff}
	for _, dt := range []DType{F32, F64, I32, I64, F16, U8} {
		for _, n := range []int{0, 8, 120, 128, 136, 1000, 4096 + 24} {
			n -= n % dt.Size()
			a, b := make([]byte, n), make([]byte, n)
			for i := range a {
				a[i], b[i] = byte(rng.Uint32()), byte(rng.Uint32())
			}
			for i := 0; i+8 <= n && i < 8*len(specials); i += 8 {
				v := specials[i/8]
				if dt == F32 {
					v = uint64(math.Float32bits(float32(math.Float64frombits(v)))) | uint64(math.Float32bits(1.5))<<32
				}
				for k := 0; k < 8; k++ {
					a[i+k] = byte(v >> (8 * k))
				}
			}
			want := bytes.Clone(a)
			reduceScalar(dt, Sum, want, b)
			got := bytes.Clone(a)
			Reduce(dt, Sum, got, b)
			if !bytes.Equal(got, want) {
				t.Errorf("%v, %d bytes: sums differ from backend.Reduce", dt, n)
			}
		}
	}
}

func BenchmarkReduce(b *testing.B) {
	for _, n := range []int{512 << 10, 2 << 20} {
		dst, src := make([]byte, n), make([]byte, n)
		for _, f := range []struct {
			name string
			fn   func(DType, Op, []byte, []byte)
		}{{"scalar", reduceScalar}, {"vector", Reduce}} {
			b.Run(fmt.Sprintf("%s/float32/bytes=%d", f.name, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				for b.Loop() {
					f.fn(F32, Sum, dst, src)
				}
			})
		}
	}
}
