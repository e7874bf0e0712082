// Package raygo runs Go functions as remote tasks, keeps state in actors
// and shares immutable objects through per-node shared memory, on a laptop
// or across the nodes of an HPC allocation: Ray's model, for Go.
//
// One binary is both the driver and its workers. Register remote functions
// and actor types in package-level variables, call Init first thing in
// main (in worker processes it serves tasks and never returns), then
// submit work:
//
//	var square = raygo.Func1("square", func(ctx context.Context, x float64) (float64, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		ctx := context.Background()
//		if err := raygo.Init(ctx); err != nil {
//			log.Fatal(err)
//		}
//		defer raygo.Shutdown(ctx)
//		ref := square.Remote(raygo.Val(3.0)) // returns at once
//		v, err := ref.Get(ctx)               // 9
//		...
//	}
//
// Remote functions are typed: Func0..Func4 (and Func1x2.. for two
// results) check arguments at compile time. An argument is a value
// (Val) or a Ref of the same type; a Ref argument makes the task wait for
// that object and receive its value. Options (CPUs, GPUs, MaxRetries,
// Spread, OnNode, InPlacementGroup, Dedicated, ...) are set with With.
//
// Actors are registered with Actor0..Actor3 and their methods with
// Method0..Method3; a caller's calls run in the order it made them.
//
// Objects: Put stores a value; Ref.Get, GetAll and Wait fetch them. []byte
// and numeric slices in shared memory come back as read-only views, with
// no copy. Objects are freed when no Ref to them remains anywhere.
//
// With no address, Init starts an embedded cluster (a head and a node
// agent in this process). With Address or RAYGO_ADDRESS it joins a cluster
// started with `raygo start`. See docs/architecture.md for how the pieces
// fit together.
package raygo
