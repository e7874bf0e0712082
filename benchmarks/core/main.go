// Command core measures raygo's basic operations on an embedded cluster:
// task and actor call rates, put and get rates, and large-object bandwidth
// next to a plain memcpy measured in the same run.
//
//	go run ./benchmarks/core [-duration 2s] [-json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/raygo/raygo"
)

var noop = raygo.Func1("bench.noop", func(ctx context.Context, x int) (int, error) { return x, nil })

type acc struct{ n int }

var accType = raygo.Actor0("bench.Acc", func(ctx context.Context) (*acc, error) { return &acc{}, nil })
var accAdd = raygo.Method1(accType, "Add", func(ctx context.Context, a *acc, x int) (int, error) {
	a.n += x
	return a.n, nil
})

type result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

func main() {
	dur := flag.Duration("duration", 2*time.Second, "time per measurement")
	asJSON := flag.Bool("json", false, "one JSON object per line")
	flag.Parse()
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer raygo.Shutdown(ctx)

	var out []result
	add := func(name string, v float64, unit string) {
		out = append(out, result{name, v, unit})
		if !*asJSON {
			fmt.Printf("%-34s %14.1f %s\n", name, v, unit)
		}
	}
	rate := func(f func() int) float64 {
		f() // warm up
		start := time.Now()
		n := 0
		for time.Since(start) < *dur {
			n += f()
		}
		return float64(n) / time.Since(start).Seconds()
	}

	add("tasks_sync", rate(func() int {
		for i := 0; i < 100; i++ {
			if _, err := noop.Remote(raygo.Val(i)).Get(ctx); err != nil {
				log.Fatal(err)
			}
		}
		return 100
	}), "tasks/s")
	add("tasks_async_batch_1000", rate(func() int {
		refs := make([]raygo.Ref[int], 1000)
		for i := range refs {
			refs[i] = noop.Remote(raygo.Val(i))
		}
		if _, err := raygo.GetAll(ctx, refs); err != nil {
			log.Fatal(err)
		}
		return len(refs)
	}), "tasks/s")
	a := accType.Remote()
	if err := a.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	add("actor_calls_sync", rate(func() int {
		for i := 0; i < 100; i++ {
			if _, err := accAdd.Remote(a, raygo.Val(1)).Get(ctx); err != nil {
				log.Fatal(err)
			}
		}
		return 100
	}), "calls/s")
	add("actor_calls_async_batch_1000", rate(func() int {
		refs := make([]raygo.Ref[int], 1000)
		for i := range refs {
			refs[i] = accAdd.Remote(a, raygo.Val(1))
		}
		if _, err := raygo.GetAll(ctx, refs); err != nil {
			log.Fatal(err)
		}
		return len(refs)
	}), "calls/s")
	add("put_small", rate(func() int {
		for i := 0; i < 1000; i++ {
			if _, err := raygo.Put(ctx, i); err != nil {
				log.Fatal(err)
			}
		}
		return 1000
	}), "puts/s")
	small, _ := raygo.Put(ctx, 42)
	add("get_small", rate(func() int {
		for i := 0; i < 1000; i++ {
			if _, err := small.Get(ctx); err != nil {
				log.Fatal(err)
			}
		}
		return 1000
	}), "gets/s")

	// 1 GiB put against memcpy into fresh memory, side by side.
	const gib = 1 << 30
	src := make([]float64, gib/8)
	for i := range src {
		src[i] = float64(i)
	}
	var memcpy, put float64
	for round := 0; round < 3; round++ {
		dst := make([]float64, len(src))
		t0 := time.Now()
		copy(dst, src)
		memcpy = max(memcpy, gib/time.Since(t0).Seconds()/1e9)
		runtime.KeepAlive(dst)
		dst = nil
		runtime.GC()
		t0 = time.Now()
		r, err := raygo.Put(ctx, src)
		if err != nil {
			log.Fatal(err)
		}
		put = max(put, gib/time.Since(t0).Seconds()/1e9)
		runtime.KeepAlive(r) // then let it go, for the next round's room
		runtime.GC()
		time.Sleep(200 * time.Millisecond)
	}
	add("memcpy_1GiB_fresh", memcpy, "GB/s")
	add("put_1GiB", put, "GB/s")
	add("put_1GiB_over_memcpy", put/memcpy, "ratio")
	big, err := raygo.Put(ctx, src[:len(src)/4])
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	const gets = 1000
	for i := 0; i < gets; i++ {
		if _, err := big.Get(ctx); err != nil {
			log.Fatal(err)
		}
	}
	add("get_256MiB_same_node", float64(time.Since(t0).Microseconds())/gets, "us/get (zero-copy view)")
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range out {
			enc.Encode(r)
		}
	}
}
