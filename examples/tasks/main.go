// Tasks: remote functions chained through refs, two return values, task
// options, and how failures come back (an error, a panic, a failed
// argument).
//
//	go run ./examples/tasks
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/raygo/raygo"
)

// ErrNegative is returned by sqrt; across processes it arrives as a
// *raygo.TaskError matching raygo.ErrApplication, with its text.
var ErrNegative = errors.New("negative input")

var (
	add = raygo.Func2("tasks.add", func(ctx context.Context, a, b int) (int, error) {
		return a + b, nil
	})
	double = raygo.Func1("tasks.double", func(ctx context.Context, x int) (int, error) {
		return 2 * x, nil
	})
	// divmod has two results: Remote returns a Ref for each.
	divmod = raygo.Func2x2("tasks.divmod", func(ctx context.Context, a, b int) (int, int, error) {
		if b == 0 {
			return 0, 0, fmt.Errorf("divmod(%d, 0): division by zero", a)
		}
		return a / b, a % b, nil
	})
	describe = raygo.Func2("tasks.describe", func(ctx context.Context, q, r int) (string, error) {
		c := raygo.CurrentContext(ctx)
		return fmt.Sprintf("quotient %d, remainder %d (task %s, node %d, pid %d)", q, r, c.Task, c.Node, c.Pid), nil
	})
	isqrt = raygo.Func1("tasks.isqrt", func(ctx context.Context, x int) (int, error) {
		if x < 0 {
			return 0, fmt.Errorf("isqrt(%d): %w", x, ErrNegative)
		}
		r := 0
		for (r+1)*(r+1) <= x {
			r++
		}
		return r, nil
	})
	parse = raygo.Func1("tasks.parse", func(ctx context.Context, s string) (int, error) {
		var digits []int // a bug: indexes past the end for input "" (panics)
		for i := 0; i <= len(s); i++ {
			digits = append(digits, int(s[i]-'0'))
		}
		return len(digits), nil
	})
	pid = raygo.Func0("tasks.pid", func(ctx context.Context) (int, error) {
		time.Sleep(20 * time.Millisecond)
		return os.Getpid(), nil
	})
)

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		fmt.Fprintln(os.Stderr, "tasks:", err)
		os.Exit(1)
	}
	err := run(ctx)
	if serr := raygo.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tasks:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	// A chain: each Remote returns at once; refs passed as arguments make
	// the next task wait for the value, which never visits the driver.
	s := add.Remote(raygo.Val(20), raygo.Val(1)) // 21
	d := double.Remote(s)                        // 42
	q, r := divmod.Remote(d, raygo.Val(5))       // 8, 2
	text, err := describe.Remote(q, r).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Println("chain:", text)
	if got, _ := d.Get(ctx); got != 42 {
		return fmt.Errorf("double(add(20, 1)) = %d, want 42", got)
	}

	// An error returned by the function.
	_, err = isqrt.Remote(raygo.Val(-4)).Get(ctx)
	var te *raygo.TaskError
	switch {
	case !errors.Is(err, raygo.ErrApplication):
		return fmt.Errorf("isqrt(-4): got %v, want an ErrApplication", err)
	case !errors.As(err, &te):
		return fmt.Errorf("isqrt(-4): %v is not a *raygo.TaskError", err)
	}
	fmt.Printf("application error: errors.Is(err, raygo.ErrApplication) = true; TaskError{Name: %q, Node: %d, RemoteType: %q, Message: %q}\n",
		te.Name, te.Node, te.RemoteType, te.Message)
	// Only the error's text and type name cross the process boundary, not
	// the value: match on Message (or return codes in results) instead.
	fmt.Printf("  errors.Is(err, ErrNegative) = %v: the worker's error value stays in the worker\n", errors.Is(err, ErrNegative))

	// A task whose argument failed fails too, naming the cause.
	_, err = double.Remote(isqrt.Remote(raygo.Val(-9))).Get(ctx)
	if !errors.Is(err, raygo.ErrUpstream) || !errors.Is(err, raygo.ErrApplication) {
		return fmt.Errorf("double(isqrt(-9)): got %v, want ErrUpstream caused by ErrApplication", err)
	}
	fmt.Println("upstream error: errors.Is(err, raygo.ErrUpstream) and errors.Is(err, raygo.ErrApplication) = true")

	// A panic in a task is caught in the worker and comes back with its stack.
	_, err = parse.Remote(raygo.Val("")).Get(ctx)
	if !errors.Is(err, raygo.ErrPanic) || !errors.As(err, &te) {
		return fmt.Errorf("parse(\"\"): got %v, want ErrPanic", err)
	}
	fmt.Printf("panic: errors.Is(err, raygo.ErrPanic) = true; %q (stack: %d bytes)\n", te.Message, len(te.Stack))

	// Two results where the first fails: both refs carry the error.
	q0, r0 := divmod.Remote(raygo.Val(1), raygo.Val(0))
	_, err1 := q0.Get(ctx)
	_, err2 := r0.Get(ctx)
	if !errors.Is(err1, raygo.ErrApplication) || !errors.Is(err2, raygo.ErrApplication) {
		return fmt.Errorf("divmod(1, 0): got %v and %v, want two ErrApplication", err1, err2)
	}
	fmt.Println("two results, one error: both refs fail with ErrApplication")

	// Options: half a CPU each lets twice as many run at once; a display
	// name shows in errors and status.
	light := pid.With(raygo.CPUs(0.5), raygo.DisplayName("light-pid"))
	refs := make([]raygo.Ref[int], 8)
	for i := range refs {
		refs[i] = light.Remote()
	}
	pids, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return err
	}
	procs := map[int]bool{}
	for _, p := range pids {
		procs[p] = true
	}
	fmt.Printf("options: 8 tasks with CPUs(0.5) ran in %d worker processes\n", len(procs))

	named := isqrt.With(raygo.DisplayName("isqrt-of-" + strconv.Itoa(-1)))
	_, err = named.Remote(raygo.Val(-1)).Get(ctx)
	if !errors.As(err, &te) || te.Name != "isqrt-of--1" {
		return fmt.Errorf("DisplayName: got %v, want a TaskError named isqrt-of--1", err)
	}
	fmt.Printf("display name in errors: %v\n", err)
	return nil
}
