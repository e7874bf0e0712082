// Package micro runs the workloads of Ray's `ray microbenchmark`
// (python/ray/_private/ray_perf.py in ray-project/ray) on raygo, under
// Ray's names, timed the way Ray's timeit times them: a warm-up of about
// 1 s, then 4 rounds of about 2 s, each reported as operations per second,
// mean ± standard deviation over the rounds.
//
// Its remote functions and actor types are registered at package init under
// names starting with "micro.", so a program that imports this package can
// serve them from its worker processes. Such a program calls raygo.Init
// with InitOptions first, then Run:
//
//	func main() {
//		ctx := context.Background()
//		if err := raygo.Init(ctx, micro.InitOptions()...); err != nil { // workers serve here
//			log.Fatal(err)
//		}
//		defer raygo.Shutdown(ctx)
//		_, err := micro.Run(ctx, micro.Options{Report: func(r micro.Result) { fmt.Println(r) }})
//		...
//	}
//
// `raygo microbenchmark` is that program. docs/benchmarks.md says where a
// workload differs from Ray's and why.
package micro
