// Objects: Put and Get, a large []float64 read as a zero-copy view of
// shared memory, Wait for the first k of n results, a Ref carried inside a
// struct, and Cancel.
//
//	go run ./examples/objects
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/raygo/raygo"
)

// Job carries a Ref inside a value: the task that receives it gets the
// Ref, not the data, and reads the data only when it asks.
type Job struct {
	Name  string
	Lo    int
	Hi    int
	Input raygo.Ref[[]float64]
}

// Point is an ordinary struct: it travels as CBOR (exported fields).
type Point struct {
	X, Y  float64
	Label string
}

var (
	// sum gets the slice as a view of shared memory: read-only, valid
	// while the task runs.
	sum = raygo.Func1("objects.sum", func(ctx context.Context, xs []float64) (float64, error) {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
	runJob = raygo.Func1("objects.runJob", func(ctx context.Context, j Job) (string, error) {
		xs, err := j.Input.Get(ctx)
		if err != nil {
			return "", err
		}
		s := 0.0
		for _, x := range xs[j.Lo:j.Hi] {
			s += x
		}
		return fmt.Sprintf("%s: sum of [%d, %d) = %g", j.Name, j.Lo, j.Hi, s), nil
	})
	sleepFor = raygo.Func1("objects.sleep", func(ctx context.Context, d time.Duration) (time.Duration, error) {
		select {
		case <-time.After(d):
			return d, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	// spin runs until it is cancelled.
	spin = raygo.Func0("objects.spin", func(ctx context.Context) (int, error) {
		n := 0
		for {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(10 * time.Millisecond):
				n++
			}
		}
	})
)

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		fmt.Fprintln(os.Stderr, "objects:", err)
		os.Exit(1)
	}
	err := run(ctx)
	if serr := raygo.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "objects:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	// Put and Get: the object is a copy, made once.
	p := Point{X: 1.5, Y: -2, Label: "a"}
	pref, err := raygo.Put(ctx, p)
	if err != nil {
		return err
	}
	p.Label = "changed after Put"
	got, err := pref.Get(ctx)
	if err != nil {
		return err
	}
	if got != (Point{X: 1.5, Y: -2, Label: "a"}) {
		return fmt.Errorf("Get returned %+v", got)
	}
	fmt.Printf("Put/Get: %s -> %+v\n", pref, got)

	// A large slice goes to the node's shared-memory store. Get returns a
	// view of that memory, not a copy: two Gets see the same bytes.
	const n = 4 << 20 // 32 MiB of float64
	big := make([]float64, n)
	want := 0.0
	for i := range big {
		big[i] = float64(i % 1000)
		want += big[i]
	}
	bigRef, err := raygo.Put(ctx, big)
	if err != nil {
		return err
	}
	v1, err := bigRef.Get(ctx)
	if err != nil {
		return err
	}
	v2, err := bigRef.Get(ctx)
	if err != nil {
		return err
	}
	same := reflect.ValueOf(v1).Pointer() == reflect.ValueOf(v2).Pointer()
	copied := reflect.ValueOf(v1).Pointer() == reflect.ValueOf(big).Pointer()
	if !same || copied || len(v1) != n || v1[999] != 999 {
		return fmt.Errorf("view of %d values: same memory %v, the driver's own slice %v, len %d", n, same, copied, len(v1))
	}
	fmt.Printf("zero-copy: %d MiB []float64 Put once; two Gets share one read-only view (writing to it would fault; copy to change it)\n", n*8>>20)

	// Tasks given the Ref read the same shared memory.
	total, err := sum.Remote(bigRef).Get(ctx)
	if err != nil {
		return err
	}
	if total != want {
		return fmt.Errorf("sum = %g, want %g", total, want)
	}
	fmt.Printf("task over the view: sum = %g\n", total)

	// A Ref inside a struct: the object stays alive while the Job does.
	jobs := make([]raygo.Ref[string], 3)
	for i := range jobs {
		j := Job{Name: fmt.Sprintf("job%d", i), Lo: i * 1000, Hi: (i + 1) * 1000, Input: bigRef}
		jobs[i] = runJob.Remote(raygo.Val(j))
	}
	lines, err := raygo.GetAll(ctx, jobs)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Println("ref in a struct:", l)
	}

	// Wait for the first 3 of 6 tasks, then for all with a short timeout.
	// Sleeping takes no CPU: CPUs(0) lets all six run at once.
	var refs []raygo.Ref[time.Duration]
	for _, ms := range []int{600, 50, 500, 10, 400, 30} {
		refs = append(refs, sleepFor.With(raygo.CPUs(0)).Remote(raygo.Val(time.Duration(ms)*time.Millisecond)))
	}
	start := time.Now()
	ready, pending, err := raygo.Wait(ctx, refs, 3, 5*time.Second)
	if err != nil {
		return err
	}
	firstReady, err := raygo.GetAll(ctx, ready)
	if err != nil {
		return err
	}
	fmt.Printf("Wait(k=3): %d ready %v, %d pending, after %v\n", len(ready), firstReady, len(pending),
		time.Since(start).Round(10*time.Millisecond))
	if len(ready) != 3 || len(pending) != 3 {
		return fmt.Errorf("Wait(k=3): %d ready, %d pending", len(ready), len(pending))
	}
	ready, pending, err = raygo.Wait(ctx, refs, len(refs), 20*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Printf("Wait(k=6, timeout 20ms): %d ready, %d pending (a timeout is not an error)\n", len(ready), len(pending))
	if len(pending) == 0 {
		return errors.New("Wait with a 20ms timeout found the 600ms task done")
	}

	// Cancel: the running task sees its context end; Get reports ErrCancelled.
	slow := spin.Remote()
	time.Sleep(100 * time.Millisecond) // let it start
	if err := raygo.Cancel(slow, false); err != nil {
		return err
	}
	_, err = slow.Get(ctx)
	if !errors.Is(err, raygo.ErrCancelled) {
		return fmt.Errorf("Get after Cancel: got %v, want ErrCancelled", err)
	}
	fmt.Printf("Cancel: errors.Is(err, raygo.ErrCancelled) = true (%v)\n", err)
	return nil
}
