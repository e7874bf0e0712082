//go:build !mpi

package mpi

import (
	"testing"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	_ "github.com/raygo/raygo/collectives/tcp"
)

// The stand-in over the real tcp backend, as a raygo group uses it (the
// conformance suite gives members and a rendezvous). Under mpirun the
// same runs from the launcher's environment (mpirun-test.sh).
func TestStandInOverTCP(t *testing.T) {
	f, ok := backend.Lookup(Name)
	if !ok {
		t.Fatal("mpi is not registered")
	}
	o := backendtest.Options{Sizes: []int{1, 2, 3}, Lengths: []int{0, 1, 7, 1000}}
	if testing.Short() {
		o.Sizes = []int{3}
		o.DTypes = []backend.DType{backend.F32, backend.BF16}
	}
	backendtest.Run(t, f, o)
}
