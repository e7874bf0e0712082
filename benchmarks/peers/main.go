// Command peers runs raygo's side of the side-by-side benchmark with Dask
// distributed (run.sh runs both in one go): the same workloads, measured
// the same way as peers_dask.py. Each workload runs one warm-up batch and
// then -rounds rounds, each repeating the batch until -duration has
// passed; the figure is the mean of the rounds' rates.
//
//	go run ./benchmarks/peers [-duration 1s] [-rounds 3] [-dask dask.jsonl]
//
// With -dask, it reads Dask's figures (JSON lines from peers_dask.py) and
// prints the table workload, raygo, Dask, raygo/Dask.
package main

import (
	"bufio"
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

var noop = raygo.Func1("peers.noop", func(ctx context.Context, x int) (int, error) { return x, nil })

// makeBlock and blockSum are the two stages of the pipeline: 1,000 blocks
// of 10,000 float64 (80 KB each), each summed by a second task that gets
// its block by reference.
var makeBlock = raygo.Func1("peers.makeBlock", func(ctx context.Context, i int) ([]float64, error) {
	xs := make([]float64, 10_000)
	for j := range xs {
		xs[j] = float64(i)
	}
	return xs, nil
})

var blockSum = raygo.Func1("peers.blockSum", func(ctx context.Context, xs []float64) (float64, error) {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s, nil
})

type counter struct{ n int }

var counterType = raygo.Actor0("peers.Counter", func(ctx context.Context) (*counter, error) { return &counter{}, nil })
var counterAdd = raygo.Method1(counterType, "Add", func(ctx context.Context, c *counter, x int) (int, error) {
	c.n += x
	return c.n, nil
})

type result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// labels are the table's rows, in order.
var labels = []struct{ name, label string }{
	{"tasks_sync", "tasks, submit + result one at a time"},
	{"tasks_async_1000", "tasks, 1,000 submitted then gathered"},
	{"actor_calls_sync", "actor calls, one at a time"},
	{"actor_calls_async_1000", "actor calls, 1,000 then gathered"},
	{"put_small", "put of a small value (scatter / Put)"},
	{"get_small", "get of an existing small object"},
	{"pipeline_1000x2", "pipeline, 1,000 blocks × 2 stages"},
	{"put_1GiB", "put 1 GiB float64 array"},
}

func main() {
	dur := flag.Duration("duration", time.Second, "minimum time per timed round")
	rounds := flag.Int("rounds", 3, "timed rounds per workload")
	bigRounds := flag.Int("big-rounds", 3, "timed 1 GiB puts")
	daskFile := flag.String("dask", "", "Dask's figures (JSON lines from peers_dask.py); prints the comparison table")
	flag.Parse()
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer raygo.Shutdown(ctx)

	var out []result
	add := func(name string, v float64, unit string) {
		out = append(out, result{name, v, unit})
		json.NewEncoder(os.Stderr).Encode(result{name, v, unit})
	}
	rate := func(batch func() int) float64 {
		batch() // warm up
		sum := 0.0
		for r := 0; r < *rounds; r++ {
			start := time.Now()
			n := 0
			for {
				n += batch()
				if time.Since(start) >= *dur {
					break
				}
			}
			sum += float64(n) / time.Since(start).Seconds()
		}
		return sum / float64(*rounds)
	}
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	add("tasks_sync", rate(func() int {
		for i := 0; i < 100; i++ {
			_, err := noop.Remote(raygo.Val(i)).Get(ctx)
			check(err)
		}
		return 100
	}), "tasks/s")
	add("tasks_async_1000", rate(func() int {
		refs := make([]raygo.Ref[int], 1000)
		for i := range refs {
			refs[i] = noop.Remote(raygo.Val(i))
		}
		_, err := raygo.GetAll(ctx, refs)
		check(err)
		return len(refs)
	}), "tasks/s")

	a := counterType.Remote()
	check(a.Ready(ctx))
	add("actor_calls_sync", rate(func() int {
		for i := 0; i < 100; i++ {
			_, err := counterAdd.Remote(a, raygo.Val(1)).Get(ctx)
			check(err)
		}
		return 100
	}), "calls/s")
	add("actor_calls_async_1000", rate(func() int {
		refs := make([]raygo.Ref[int], 1000)
		for i := range refs {
			refs[i] = counterAdd.Remote(a, raygo.Val(1))
		}
		_, err := raygo.GetAll(ctx, refs)
		check(err)
		return len(refs)
	}), "calls/s")

	add("put_small", rate(func() int {
		for i := 0; i < 100; i++ {
			_, err := raygo.Put(ctx, i)
			check(err)
		}
		return 100
	}), "puts/s")
	small, err := raygo.Put(ctx, 42)
	check(err)
	add("get_small", rate(func() int {
		for i := 0; i < 100; i++ {
			_, err := small.Get(ctx)
			check(err)
		}
		return 100
	}), "gets/s")

	add("pipeline_1000x2", rate(func() int {
		sums := make([]raygo.Ref[float64], 1000)
		for i := range sums {
			sums[i] = blockSum.Remote(makeBlock.Remote(raygo.Val(i)))
		}
		_, err := raygo.GetAll(ctx, sums)
		check(err)
		return 1
	}), "pipelines/s")

	// 1 GiB []float64 put into the store, the Ref dropped between rounds;
	// the first put is the warm-up, as for Dask.
	const gib = 1 << 30
	src := make([]float64, gib/8)
	for i := range src {
		src[i] = float64(i)
	}
	sum := 0.0
	for i := 0; i <= *bigRounds; i++ {
		t0 := time.Now()
		r, err := raygo.Put(ctx, src)
		check(err)
		dt := time.Since(t0).Seconds()
		if i > 0 {
			sum += gib / dt / 1e9
		}
		runtime.KeepAlive(r)
		r = raygo.Ref[[]float64]{}
		runtime.GC()
		time.Sleep(500 * time.Millisecond)
	}
	add("put_1GiB", sum/float64(*bigRounds), "GB/s")

	if *daskFile != "" {
		dask, err := readResults(*daskFile)
		check(err)
		printTable(out, dask)
	}
}

func readResults(path string) (map[string]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]result{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // Dask's own log lines
		}
		m[r.Name] = r
	}
	return m, sc.Err()
}

func printTable(ours []result, dask map[string]result) {
	mine := map[string]result{}
	for _, r := range ours {
		mine[r.Name] = r
	}
	fmt.Printf("| %-40s | %18s | %18s | %12s |\n", "workload", "raygo", "Dask", "raygo/Dask")
	fmt.Printf("|%s|%s:|%s:|%s:|\n", dashes(42), dashes(19), dashes(19), dashes(13))
	for _, l := range labels {
		r, d := mine[l.name], dask[l.name]
		ratio := "—"
		if d.Value > 0 {
			ratio = fmt.Sprintf("%.1f×", r.Value/d.Value)
		}
		fmt.Printf("| %-40s | %18s | %18s | %12s |\n", l.label, format(r), format(d), ratio)
	}
}

func format(r result) string {
	if r.Unit == "" {
		return "missing"
	}
	switch {
	case r.Value >= 100:
		return fmt.Sprintf("%s %s", commas(int64(r.Value+0.5)), r.Unit)
	default:
		return fmt.Sprintf("%.2f %s", r.Value, r.Unit)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	out := ""
	for len(s) > 3 {
		out = "," + s[len(s)-3:] + out
		s = s[:len(s)-3]
	}
	return s + out
}

func dashes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '-'
	}
	return string(b)
}
