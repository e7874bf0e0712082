//go:build mpi

package mpi

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/raygo/raygo/collectives/backend"
)

// The reductions done in C (float16, bfloat16, uint8) give the bits the
// backend package's Go reductions give: every half value against random
// partners, every pair of bytes.
func TestOwnReductionsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ops := []backend.Op{backend.Sum, backend.Prod, backend.Min, backend.Max}
	for _, dt := range []backend.DType{backend.F16, backend.BF16} {
		const rounds = 8
		a := make([]byte, 2*65536*rounds)
		b := make([]byte, len(a))
		for i := 0; i < 65536*rounds; i++ {
			binary.NativeEndian.PutUint16(a[2*i:], uint16(i))
			binary.NativeEndian.PutUint16(b[2*i:], uint16(rng.Uint32()))
		}
		for _, op := range ops {
			want := append([]byte(nil), b...)
			backend.Reduce(dt, op, want, a)
			got := append([]byte(nil), b...)
			reduceOwn(uint8(dt), uint8(op), a, got)
			for i := 0; i < len(got)/2; i++ {
				g, w := binary.NativeEndian.Uint16(got[2*i:]), binary.NativeEndian.Uint16(want[2*i:])
				if g != w && !(isNaN(dt, g) && isNaN(dt, w)) {
					t.Fatalf("%v %v of %#04x and %#04x: C gives %#04x, Go %#04x", dt, op,
						binary.NativeEndian.Uint16(a[2*i:]), binary.NativeEndian.Uint16(b[2*i:]), g, w)
				}
			}
		}
	}
	a := make([]byte, 65536)
	b := make([]byte, 65536)
	for i := range a {
		a[i], b[i] = byte(i), byte(i>>8)
	}
	for _, op := range ops {
		want := append([]byte(nil), b...)
		backend.Reduce(backend.U8, op, want, a)
		got := append([]byte(nil), b...)
		reduceOwn(uint8(backend.U8), uint8(op), a, got)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("uint8 %v of %d and %d: C gives %d, Go %d", op, a[i], b[i], got[i], want[i])
			}
		}
	}
}

func isNaN(dt backend.DType, h uint16) bool {
	if dt == backend.F16 {
		return math.IsNaN(float64(backend.Float16(h).Float32()))
	}
	return math.IsNaN(float64(backend.BFloat16(h).Float32()))
}
