// Command driver is the raygo program the raygo-launch end-to-end test runs
// as its driver. It runs one task on every node of the cluster, prints
// which nodes ran them, then does what its flags say:
//
//	-exit N        exit with code N
//	-wait-term     wait for raygo.JobContext to end (SIGTERM to
//	               raygo-launch), print "checkpoint", exit 0
//	-wait-notice   print the first raygo.Notices value, exit 0
//	-checkpoint-tasks
//	               with -wait-term: run a task on every node again after
//	               the job context ended, as a checkpoint would
//
// Every line it prints starts with "driver: " so the test can find it in
// the launcher's output.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/raygo/raygo"
)

// where is what a task reports about the node that ran it.
type where struct {
	Node     raygo.NodeID
	Hostname string
}

var whereAmI = raygo.Func0("launchtest.where", func(ctx context.Context) (where, error) {
	h, _ := os.Hostname()
	return where{Node: raygo.CurrentContext(ctx).Node, Hostname: h}, nil
})

func main() {
	exit := flag.Int("exit", 0, "exit with this code")
	waitTerm := flag.Bool("wait-term", false, "wait for the job context to end, print checkpoint, exit 0")
	waitNotice := flag.Bool("wait-notice", false, "print the first notice, exit 0")
	checkpointTasks := flag.Bool("checkpoint-tasks", false, "with -wait-term: run a task on every node after the job context ended")
	flag.Parse()

	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // never returns in workers
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
	code := run(ctx, *waitTerm, *waitNotice, *checkpointTasks)
	if err := raygo.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "driver: shutdown:", err)
	}
	if code == 0 {
		code = *exit
	}
	os.Exit(code)
}

func run(ctx context.Context, waitTerm, waitNotice, checkpointTasks bool) int {
	fmt.Printf("driver: cluster %s\n", raygo.ClusterID())
	ran, err := onEveryNode(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	fmt.Printf("driver: %s\n", ran)
	switch {
	case waitTerm:
		<-raygo.JobContext().Done()
		fmt.Println("driver: checkpoint")
		if checkpointTasks {
			// The job context has ended; the cluster still serves
			// until the driver exits.
			ran, err := onEveryNode(ctx)
			if err != nil {
				fmt.Fprintln(os.Stderr, "driver: checkpoint:", err)
				return 1
			}
			fmt.Printf("driver: checkpoint %s\n", ran)
		}
	case waitNotice:
		n := <-raygo.Notices()
		fmt.Printf("driver: notice %v: %s\n", n.Signal, n.Message)
	}
	return 0
}

// onEveryNode runs whereAmI on every live node, pinned with OnNode, and
// says where the tasks ran and which agent listens where:
// "3 tasks ran on nodes 1(rank 0)@127.0.0.1 2(rank 1)@127.0.0.2 ...".
func onEveryNode(ctx context.Context) (string, error) {
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	var refs []raygo.Ref[where]
	byID := map[raygo.NodeID]raygo.NodeInfo{}
	for _, n := range nodes {
		if n.Alive {
			refs = append(refs, whereAmI.With(raygo.OnNode(n.ID, false)).Remote())
			byID[n.ID] = n
		}
	}
	ws, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return "", fmt.Errorf("tasks: %w", err)
	}
	var ran []string
	for _, w := range ws {
		n := byID[w.Node]
		if w.Hostname != n.Hostname {
			return "", fmt.Errorf("a task on node %d ran on host %s, but the node is on %s", w.Node, w.Hostname, n.Hostname)
		}
		host, _, _ := strings.Cut(n.Addr, ":")
		ran = append(ran, fmt.Sprintf("%d(rank %s)@%s", w.Node, n.Labels["rank"], host))
	}
	slices.Sort(ran)
	ran = slices.Compact(ran)
	return fmt.Sprintf("%d tasks ran on nodes %s", len(ws), strings.Join(ran, " ")), nil
}
