//go:build !amd64

package shm

import "github.com/raygo/raygo/collectives/backend"

// hasAVX2 is false: there are no vector kernels on this architecture.
var hasAVX2 = false

// vecSum2 does nothing; see kernel_amd64.go.
func vecSum2(dt backend.DType, out, out2, x, y []byte, nt bool) int { return 0 }

// stageCopy copies src into dst.
func stageCopy(dst, src []byte, nt bool) { copy(dst, src) }
