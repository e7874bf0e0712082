// Quickstart: tasks, objects and an actor on an embedded cluster.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/raygo/raygo"
)

// Remote functions and actor types are registered at package init, so the
// driver and its workers (the same binary) agree on them.
var square = raygo.Func1("quickstart.square", func(ctx context.Context, x float64) (float64, error) {
	return x * x, nil
})

var sum = raygo.Func1("quickstart.sum", func(ctx context.Context, xs []float64) (float64, error) {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s, nil
})

type Counter struct{ n int }

var counterType = raygo.Actor1("quickstart.Counter", func(ctx context.Context, start int) (*Counter, error) {
	return &Counter{n: start}, nil
})

var incr = raygo.Method1(counterType, "Incr", func(ctx context.Context, c *Counter, by int) (int, error) {
	c.n += by
	return c.n, nil
})

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		log.Fatal(err)
	}
	defer raygo.Shutdown(ctx)

	// Tasks: submit returns a Ref at once; Get waits for the value.
	refs := make([]raygo.Ref[float64], 10)
	for i := range refs {
		refs[i] = square.Remote(raygo.Val(float64(i)))
	}
	squares, err := raygo.GetAll(ctx, refs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("squares:", squares)

	// Objects: Put stores a value once; tasks take the Ref and get the value.
	data, err := raygo.Put(ctx, squares)
	if err != nil {
		log.Fatal(err)
	}
	total, err := sum.Remote(data).Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sum of squares:", total)

	// Actors keep state between calls; one caller's calls run in order.
	c := counterType.Remote(raygo.Val(100))
	var last raygo.Ref[int]
	for i := 0; i < 5; i++ {
		last = incr.Remote(c, raygo.Val(i))
	}
	n, err := last.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("counter:", n)
}
