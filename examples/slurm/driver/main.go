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
//	READY                            everything above is printed
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
	flag.Parse()

	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // never returns in workers
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
	code := run(ctx, started, *sleep, *waitTerm, *waitNotice)
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

func run(ctx context.Context, started time.Time, sleep time.Duration, waitTerm, waitNotice bool) int {
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
	fmt.Println("READY")

	switch {
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
