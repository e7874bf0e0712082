package shm_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	_ "github.com/raygo/raygo/collectives/shm" // registers "shm"
)

// Two ranks, here goroutines, sum a float32 vector. In a real group each
// rank is a worker process and the rendezvous goes through the cluster.
func Example() {
	f, _ := backend.Lookup("shm")
	rv := backendtest.NewMemRendezvous(2)
	members := []backend.Member{{Rank: 0, Node: "n1"}, {Rank: 1, Node: "n1"}}
	var wg sync.WaitGroup
	for rank := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			b, err := f(ctx, backend.Config{Group: "example", Rank: rank, Size: 2, Members: members,
				Rendezvous: rv.ForRank(rank), Options: map[string]string{"shm.slot_bytes": "65536"}})
			if err != nil {
				fmt.Println(err)
				return
			}
			defer b.Close()
			buf := make([]byte, 3*4)
			for i := range 3 {
				binary.NativeEndian.PutUint32(buf[4*i:], math.Float32bits(float32(rank+i)))
			}
			if err := b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum); err != nil {
				fmt.Println(err)
				return
			}
			if rank == 0 {
				for i := range 3 {
					fmt.Println(math.Float32frombits(binary.NativeEndian.Uint32(buf[4*i:])))
				}
			}
		}()
	}
	wg.Wait()
	// Output:
	// 1
	// 3
	// 5
}
