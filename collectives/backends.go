package collectives

// The backends that come with raygo register themselves here.
import (
	_ "github.com/raygo/raygo/collectives/hier"
	_ "github.com/raygo/raygo/collectives/mpi"
	_ "github.com/raygo/raygo/collectives/nccl"
	_ "github.com/raygo/raygo/collectives/shm"
	_ "github.com/raygo/raygo/collectives/tcp"
)
