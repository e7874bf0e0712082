// Command driver is the raygo program that the batch scripts in
// examples/slurm run under raygo-launch, and that scripts/test-slurm.sh
// checks. It runs one task on every node of the cluster (pinned with
// OnNode; with GPUs(1) on a node that has GPUs), prints what the tasks saw,
// then does what its flags say:
//
//	-exit N        exit with code N
//	-sleep D       sleep D before exiting (to keep two jobs running at once)
//	-wait-term     wait until raygo.JobContext ends (scancel, the time
//	               limit), print CHECKPOINT, run a task on every node again
//	               (as a checkpoint would), exit 0
//	-wait-notice   wait for an early warning from raygo.Notices, print
//	               NOTICE SIGNAL, run a task on every node again, exit 0
//	-pipeline N    before READY, make N intermediate objects of 256 KiB
//	               with raygo.Spread() (fill tasks, each printing a FILL
//	               line from its worker) and wait, without fetching them,
//	               until every one is in some node's store (STORED); after
//	               READY, wait for -go-file, then sum all of them with tasks
//	               and print PIPELINE; exit 1 unless the total is the one
//	               computed directly. A node killed meanwhile loses the
//	               objects it held: raygo makes them again from lineage.
//	-go-file F     with -pipeline: after READY, wait (at most 60 s) until
//	               file F exists
//
// Its output is one fact per line, a word in capitals first, for scripts to
// grep:
//
//	ADDRESS 127.0.0.1:40123          the head (RAYGO_ADDRESS)
//	CLUSTER 4f1c09aa                 the cluster ID (names /dev/shm/raygo-ID-*)
//	NODES node1,node2,node3          the hosts the tasks ran on
//	GPUS node1=2 node2=2 node3=2     each node's GPUs, from raygo.Nodes
//	TASK node1 id=1 pid=... gpus=1 cuda=0 agent=... labels=...
//	STARTUP_MS 412                   RAYGO_T0 (Unix ns, set before srun) to
//	                                 the first task having run on every node
//	STORED n=30 bytes=7864320 node1=2621952 node2=... node3=...
//	                                 -pipeline: every object is stored; the
//	                                 bytes in each node's store
//	READY                            everything above is printed
//	FILL 7 node3 pid=4242            a fill task ran (worker output; a
//	                                 rebuilt object prints its line again)
//	PIPELINE total=14254080 want=14254080 ms=95
//	                                 -pipeline: the sum over all objects
//	                                 from tasks, the one computed here,
//	                                 and how long the tasks took
//	ALIVE_AFTER node1,node2          -pipeline: the nodes alive after it
//
// Run it by hand under srun:
//
//	export RAYGO_T0=$(date +%s%N)
//	srun -N 3 --ntasks-per-node=1 raygo-launch -- ./driver -exit 7
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raygo/raygo"
)

// seen is what a task reports about the process and node that ran it.
type seen struct {
	Node     raygo.NodeID
	Hostname string
	Pid      int
	// CUDA is the task's CUDA_VISIBLE_DEVICES; HasCUDA is false when unset.
	CUDA    string
	HasCUDA bool
	Agent   string // the node agent's socket (RAYGO_AGENT, set in workers)
}

var whereAmI = raygo.Func0("slurmdriver.where", func(ctx context.Context) (seen, error) {
	h, _ := os.Hostname()
	cuda, has := os.LookupEnv("CUDA_VISIBLE_DEVICES")
	return seen{Node: raygo.CurrentContext(ctx).Node, Hostname: h, Pid: os.Getpid(),
		CUDA: cuda, HasCUDA: has, Agent: os.Getenv("RAYGO_AGENT")}, nil
})

func main() {
	started := time.Now()
	exit := flag.Int("exit", 0, "exit with this code")
	sleep := flag.Duration("sleep", 0, "sleep this long before exiting")
	waitTerm := flag.Bool("wait-term", false, "wait for the job context to end, print CHECKPOINT, exit 0")
	waitNotice := flag.Bool("wait-notice", false, "wait for an early warning, print NOTICE, exit 0")
	pipeline := flag.Int("pipeline", 0, "make this many stored intermediate objects before READY, sum them after")
	goFile := flag.String("go-file", "", "with -pipeline: after READY, wait until this file exists")
	flag.Parse()

	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // never returns in workers
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
	code := run(ctx, started, *sleep, *waitTerm, *waitNotice, *pipeline, *goFile)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := raygo.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "driver: shutdown:", err)
	}
	if code == 0 {
		code = *exit
	}
	fmt.Printf("EXIT %d\n", code)
	os.Exit(code)
}

func run(ctx context.Context, started time.Time, sleep time.Duration, waitTerm, waitNotice bool, pipeline int, goFile string) int {
	initDone := time.Now()
	fmt.Printf("ADDRESS %s\n", os.Getenv("RAYGO_ADDRESS"))
	fmt.Printf("SECRET_FILE %s\n", os.Getenv("RAYGO_SECRET_FILE"))
	fmt.Printf("CLUSTER %s\n", raygo.ClusterID())
	fmt.Printf("DRIVER_PID %d\n", os.Getpid())
	nodes, ran, err := onEveryNode(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	tasksDone := time.Now()
	var hosts, gpus []string
	for _, s := range ran {
		hosts = append(hosts, s.Hostname)
	}
	sort.Strings(hosts)
	fmt.Printf("NODES %s\n", strings.Join(hosts, ","))
	for _, n := range nodes {
		gpus = append(gpus, fmt.Sprintf("%s=%s", n.Hostname, strconv.FormatFloat(n.Total["GPU"], 'f', -1, 64)))
	}
	sort.Strings(gpus)
	fmt.Printf("GPUS %s\n", strings.Join(gpus, " "))
	byID := map[raygo.NodeID]raygo.NodeInfo{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	for _, s := range ran {
		cuda := "unset"
		if s.HasCUDA {
			cuda = s.CUDA
		}
		n := byID[s.Node]
		fmt.Printf("TASK %s id=%d pid=%d gpus=%s cuda=%s agent=%s labels=%s\n", s.Hostname, s.Node, s.Pid,
			strconv.FormatFloat(n.Total["GPU"], 'f', -1, 64), cuda, s.Agent, labels(n.Labels))
	}
	if t0, err := strconv.ParseInt(os.Getenv("RAYGO_T0"), 10, 64); err == nil && t0 > 0 {
		since := func(t time.Time) int64 { return (t.UnixNano() - t0) / 1e6 }
		fmt.Printf("STARTUP_MS %d\n", since(tasksDone))
		fmt.Printf("STARTUP_BREAKDOWN_MS driver_started=%d init_done=%d tasks_done=%d\n",
			since(started), since(initDone), since(tasksDone))
	}
	fmt.Printf("TASKS_AT_UNIX_MS %d\n", tasksDone.UnixMilli())
	var parts []raygo.Ref[[]float64]
	if pipeline > 0 {
		if parts, err = makeParts(ctx, pipeline); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			return 1
		}
	}
	fmt.Println("READY")

	switch {
	case pipeline > 0:
		if code := sumParts(ctx, parts, goFile); code != 0 {
			return code
		}
	case waitTerm:
		<-raygo.JobContext().Done()
		fmt.Println("CHECKPOINT")
		again(ctx, "CHECKPOINT_TASKS")
	case waitNotice:
		select {
		case n := <-raygo.Notices():
			fmt.Printf("NOTICE %s\n", signalName(n.Signal))
			again(ctx, "AFTER_NOTICE_TASKS")
		case <-raygo.JobContext().Done():
			fmt.Println("NO_NOTICE job context ended first")
			return 1
		}
	}
	if sleep > 0 {
		time.Sleep(sleep)
	}
	fmt.Printf("END_AT_UNIX_MS %d\n", time.Now().UnixMilli())
	return 0
}

// again runs a task on every node once more and says where they ran; the
// cluster must still serve after a signal (the first attempt of a task may
// meet a worker that the batch system's signal killed: raygo retries it).
func again(ctx context.Context, what string) {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, ran, err := onEveryNode(tctx)
	if err != nil {
		fmt.Printf("%s failed: %v\n", what, err)
		return
	}
	var hosts []string
	for _, s := range ran {
		hosts = append(hosts, s.Hostname)
	}
	sort.Strings(hosts)
	fmt.Printf("%s %s\n", what, strings.Join(hosts, ","))
}

// onEveryNode runs whereAmI once on every live node, pinned there, asking
// for a GPU where the node has one.
func onEveryNode(ctx context.Context) ([]raygo.NodeInfo, []seen, error) {
	all, err := raygo.Nodes(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("nodes: %w", err)
	}
	var nodes []raygo.NodeInfo
	var refs []raygo.Ref[seen]
	for _, n := range all {
		if !n.Alive {
			continue
		}
		opts := []raygo.Option{raygo.OnNode(n.ID, false)}
		if n.Total["GPU"] > 0 {
			opts = append(opts, raygo.GPUs(1))
		}
		nodes = append(nodes, n)
		refs = append(refs, whereAmI.With(opts...).Remote())
	}
	ran, err := raygo.GetAll(ctx, refs)
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: %w", err)
	}
	for i, s := range ran {
		if s.Node != nodes[i].ID || s.Hostname != nodes[i].Hostname {
			return nil, nil, fmt.Errorf("the task for node %d (%s) ran on node %d (%s)", nodes[i].ID, nodes[i].Hostname, s.Node, s.Hostname)
		}
	}
	return nodes, ran, nil
}

func labels(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// partLen is the length of each -pipeline object: 256 KiB of float64, too
// big to travel inline, so it lives in the store of the node that made it.
const partLen = 32 << 10

func fillSlice(n int, v float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = v
	}
	return xs
}

var fill = raygo.Func2("slurmdriver.fill", func(ctx context.Context, n int, v float64) ([]float64, error) {
	h, _ := os.Hostname()
	fmt.Printf("FILL %d %s pid=%d\n", int(v), h, os.Getpid())
	return fillSlice(n, v), nil
})

var sumFloats = raygo.Func1("slurmdriver.sum", func(ctx context.Context, xs []float64) (float64, error) {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s, nil
})

// makeParts starts n fill tasks spread over the nodes and waits, without
// fetching anything, until the nodes' stores hold all of their results.
func makeParts(ctx context.Context, n int) ([]raygo.Ref[[]float64], error) {
	parts := make([]raygo.Ref[[]float64], n)
	for i := range parts {
		parts[i] = fill.With(raygo.Spread()).Remote(raygo.Val(partLen), raygo.Val(float64(i)))
	}
	want := int64(n) * partLen * 8
	deadline := time.Now().Add(30 * time.Second)
	for {
		nodes, err := raygo.Nodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("nodes: %w", err)
		}
		var used int64
		var per []string
		for _, nd := range nodes {
			used += nd.StoreUsed
			per = append(per, fmt.Sprintf("%s=%d", nd.Hostname, nd.StoreUsed))
		}
		if used >= want {
			sort.Strings(per)
			fmt.Printf("STORED n=%d bytes=%d %s\n", n, used, strings.Join(per, " "))
			return parts, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("-pipeline %d: after 30 s the stores hold %d bytes, want %d (%s)", n, used, want, strings.Join(per, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sumParts waits for goFile, then sums every part with a task and compares
// the total with the one computed here.
func sumParts(ctx context.Context, parts []raygo.Ref[[]float64], goFile string) int {
	if goFile != "" {
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(goFile); err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Printf("NO_GO %s did not appear within 60 s\n", goFile)
				return 1
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t0 := time.Now()
	sums := make([]raygo.Ref[float64], len(parts))
	for i := range parts {
		sums[i] = sumFloats.Remote(parts[i])
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	vals, err := raygo.GetAll(tctx, sums)
	if err != nil {
		fmt.Printf("PIPELINE failed: %v\n", err)
		return 1
	}
	ms := time.Since(t0).Milliseconds()
	total, want := 0.0, 0.0
	for _, v := range vals {
		total += v
	}
	for i := range parts {
		for _, x := range fillSlice(partLen, float64(i)) {
			want += x
		}
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	fmt.Printf("PIPELINE total=%s want=%s ms=%d\n", f(total), f(want), ms)
	if nodes, err := raygo.Nodes(ctx); err == nil {
		var alive []string
		for _, n := range nodes {
			if n.Alive {
				alive = append(alive, n.Hostname)
			}
		}
		sort.Strings(alive)
		fmt.Printf("ALIVE_AFTER %s\n", strings.Join(alive, ","))
	}
	if total != want {
		return 1
	}
	return 0
}
