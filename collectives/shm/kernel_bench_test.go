package shm

import (
	"testing"

	"github.com/raygo/raygo/collectives/backend"
)

func BenchmarkKernel(b *testing.B) {
	for _, n := range []int{4 << 10, 64 << 10, 1 << 20} {
		x, y, o, o2 := make([]byte, n), make([]byte, n), make([]byte, n), make([]byte, n)
		be := &Backend{acc: make([]byte, blockBytes)}
		b.Run("sum2x2-"+sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				be.combine(backend.F32, backend.Sum, o, o2, [][]byte{x, y})
			}
		})
		b.Run("sum2-"+sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				be.combine(backend.F32, backend.Sum, o, nil, [][]byte{x, y})
			}
		})
		b.Run("reduce3-"+sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				backend.Reduce3(backend.F32, backend.Sum, o, x, y)
			}
		})
		b.Run("copy-"+sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for range b.N {
				copy(o, x)
			}
		})
	}
}
