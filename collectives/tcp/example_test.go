package tcp_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
	"github.com/raygo/raygo/collectives/tcp"
)

// Two ranks, here goroutines of one process, sum a float32 vector.
func Example() {
	ctx := context.Background()
	rv := backendtest.NewMemRendezvous(2)
	members := []backend.Member{{Rank: 0, Host: "127.0.0.1"}, {Rank: 1, Host: "127.0.0.1"}}
	out := make([][]byte, 2)
	var wg sync.WaitGroup
	for rank := range 2 {
		wg.Go(func() {
			b, err := tcp.New(ctx, backend.Config{Group: "example", Rank: rank, Size: 2, Members: members,
				Rendezvous: rv.ForRank(rank), Options: map[string]string{"tcp.ring_above": "1MiB"}})
			if err != nil {
				panic(err)
			}
			defer b.Close()
			buf := make([]byte, 3*4)
			for i := range 3 {
				binary.NativeEndian.PutUint32(buf[4*i:], math.Float32bits(float32(rank+i)))
			}
			if err := b.Allreduce(ctx, buf, buf, backend.F32, backend.Sum); err != nil {
				panic(err)
			}
			out[rank] = buf
		})
	}
	wg.Wait()
	for i := range 3 {
		fmt.Print(math.Float32frombits(binary.NativeEndian.Uint32(out[1][4*i:])), " ")
	}
	fmt.Println()
	// Output: 1 3 5
}
