package mpi_test

import (
	"context"
	"fmt"
	"log"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/mpi"
)

// A program started by mpirun -np 4 (or srun --mpi=pmix -n 4) sums a
// gradient over the whole MPI world.
func Example() {
	ctx := context.Background()
	info, err := mpi.Init(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer mpi.Finalize(ctx)
	f, _ := backend.Lookup(mpi.Name)
	b, err := f(ctx, backend.Config{Group: "grads"}) // Size 0: the whole world
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	grad := make([]byte, 4*1024) // 1024 float32
	err = b.Allreduce(ctx, grad, grad, backend.F32, backend.Sum)
	fmt.Println(info.Rank, "of", info.Size, err)
}
