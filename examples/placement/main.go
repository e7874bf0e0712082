// Placement: reserve a node's CPUs as a placement group (two bundles,
// packed), run tasks and an actor inside its bundles, see work outside it
// wait for the reservation, and Remove it.
//
//	go run ./examples/placement
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/raygo/raygo"
)

var (
	where = raygo.Func1("placement.where", func(ctx context.Context, label string) (string, error) {
		c := raygo.CurrentContext(ctx)
		return fmt.Sprintf("%s on node %d, pid %d", label, c.Node, c.Pid), nil
	})
	logger = raygo.Actor0("placement.Logger", func(ctx context.Context) (*[]string, error) {
		return new([]string), nil
	})
	logLine = raygo.Method1(logger, "Log", func(ctx context.Context, l *[]string, line string) (int, error) {
		*l = append(*l, line)
		return len(*l), nil
	})
)

func main() {
	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(1)
	}
	err := run(ctx)
	if serr := raygo.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "placement:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		return err
	}
	cpus := nodes[0].Total["CPU"]
	fmt.Printf("cluster: %d node(s); node %d has %g CPUs\n", len(nodes), nodes[0].ID, cpus)

	// NewPlacementGroup does not wait for the cluster: Wait says that a
	// group could never be placed, at once.
	huge, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": 1e6}}, raygo.Pack)
	if err != nil {
		return err
	}
	if _, err = huge.Wait(ctx); !errors.Is(err, raygo.ErrUnschedulable) {
		return fmt.Errorf("a placement group of a million CPUs: Wait returned %v", err)
	}
	fmt.Printf("infeasible group: %v\n", err)

	// Two bundles that together take all of node 0's CPUs, packed onto as
	// few nodes as possible.
	half := cpus / 2
	pg, err := raygo.NewPlacementGroup(ctx, []raygo.Bundle{{"CPU": half}, {"CPU": half}}, raygo.Pack)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	bundleNodes, err := pg.Wait(wctx)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("placement group %d: bundles %v (%s) reserved on nodes %v\n", pg.ID(), pg.Bundles(), raygo.Pack, bundleNodes)

	// Tasks in bundle 0, in bundle 1, and in any bundle; an actor in
	// bundle 1. Each uses resources reserved in its bundle.
	task := where.With(raygo.CPUs(half / 2))
	refs := []raygo.Ref[string]{
		task.With(raygo.InPlacementGroup(pg, 0)).Remote(raygo.Val("task in bundle 0")),
		task.With(raygo.InPlacementGroup(pg, 1)).Remote(raygo.Val("task in bundle 1")),
		task.With(raygo.InPlacementGroup(pg, -1)).Remote(raygo.Val("task in any bundle")),
	}
	lines, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return err
	}
	log := logger.With(raygo.CPUs(half/2), raygo.InPlacementGroup(pg, 1)).Remote()
	for _, l := range lines {
		fmt.Println(" ", l)
		if _, err := logLine.Remote(log, raygo.Val(l)).Get(ctx); err != nil {
			return err
		}
	}
	n, err := logLine.Remote(log, raygo.Val("done")).Get(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  actor in bundle 1 logged %d lines\n", n)

	// Outside the group, the node has no CPU left: a one-CPU task waits
	// until the group is removed.
	outside := where.Remote(raygo.Val("task outside the group"))
	ready, _, err := raygo.Wait(ctx, []raygo.Ref[string]{outside}, 1, 300*time.Millisecond)
	if err != nil {
		return err
	}
	if len(nodes) == 1 && len(ready) != 0 {
		return errors.New("a task outside the group ran while the group held every CPU")
	}
	fmt.Printf("outside the group: ready after 300ms: %v\n", len(ready) == 1)

	if err := log.Kill(ctx); err != nil {
		return err
	}
	if err := pg.Remove(ctx); err != nil {
		return err
	}
	start := time.Now()
	line, err := outside.Get(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("after Remove: %s, %v later\n", line, time.Since(start).Round(time.Millisecond))
	return nil
}
