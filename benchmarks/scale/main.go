// Command scale measures raygo's scale envelope: Ray's single-node and
// distributed scalability tests (1,000,000 queued tasks, 10,000 object
// arguments, 3,000 returns, GetAll of 10,000 objects, 10,000 actors, a
// 1 GiB object read on other nodes), each with its wall time and the peak
// memory of the driver and of every worker process.
//
//	go run ./benchmarks/scale [-scale 1] [-only tasks1m,args10k] [-json]
//	make bench-scale                  # -scale 1, about 45 s on 2 cores
//	make bench-scale SCALE=0.01       # a quick check, a few seconds
//
// Each workload runs in a fresh child process (this binary again, told
// which workload by the environment), so every process's VmHWM, the
// kernel's RSS high-water mark from /proc/PID/status, belongs to that
// workload alone. The child reads VmHWM and VmRSS of itself and of every
// process descended from it (its node agents' workers) every 100 ms and
// once more before its cluster stops. The table shows the driver's peak,
// the sum of the other processes' peaks, and the peak of all their RSS
// summed at one instant (RSS includes touched shared-memory pages, so an
// object mapped by several processes counts once for each).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo"
)

// The child process reads its workload from these.
const (
	envWorkload = "RAYGO_SCALE_WORKLOAD"
	envFactor   = "RAYGO_SCALE_FACTOR"
	envTimeout  = "RAYGO_SCALE_TIMEOUT"
	envProfile  = "RAYGO_SCALE_CPUPROFILE"
)

type config struct {
	scale      float64
	names      []string
	timeout    time.Duration
	cpuprofile string // directory, or ""
}

func main() {
	var cfg config
	flag.Float64Var(&cfg.scale, "scale", 1, "multiply every workload's size by this (0.01 for a quick check)")
	only := flag.String("only", "", "comma-separated workloads to run (default all): "+strings.Join(names(), ","))
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "limit per workload")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "directory for the driver's CPU profile of each workload (NAME.cpu)")
	asJSON := flag.Bool("json", false, "print one JSON object per workload instead of the table")
	flag.Parse()
	ctx := context.Background()
	if raygo.IsWorker() {
		if err := raygo.Init(ctx); err != nil { // serves tasks; never returns
			log.Fatal(err)
		}
	}
	if name := os.Getenv(envWorkload); name != "" {
		os.Exit(child(name))
	}
	if *only != "" {
		cfg.names = strings.Split(*only, ",")
	}
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	results, err := runAll(ctx, exe, cfg, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range results {
			enc.Encode(r)
		}
	} else {
		printTable(os.Stdout, results, cfg.scale)
	}
	for _, r := range results {
		if r.Err != "" {
			os.Exit(1)
		}
	}
}

func names() []string {
	var out []string
	for _, w := range workloads {
		out = append(out, w.name)
	}
	return out
}

func lookup(name string) (workload, bool) {
	for _, w := range workloads {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

// runAll runs each workload in a child process of exe and collects the
// results; a workload that fails has Err set. Progress goes to logw.
func runAll(ctx context.Context, exe string, cfg config, logw io.Writer) ([]result, error) {
	sel := cfg.names
	if len(sel) == 0 {
		sel = names()
	}
	var out []result
	for _, name := range sel {
		w, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("no workload %q (have %s)", name, strings.Join(names(), ", "))
		}
		fmt.Fprintf(logw, "== %s: %s (n = %d)\n", w.name, w.title, w.scaled(cfg.scale))
		out = append(out, runChild(ctx, exe, w, cfg, logw))
	}
	return out, nil
}

func runChild(ctx context.Context, exe string, w workload, cfg config, logw io.Writer) result {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(),
		envWorkload+"="+w.name,
		envFactor+"="+strconv.FormatFloat(cfg.scale, 'g', -1, 64),
		envTimeout+"="+cfg.timeout.String(),
		envProfile+"="+cfg.cpuprofile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, logw)
	t0 := time.Now()
	err := cmd.Run()
	var r result
	line := lastLine(stdout.Bytes())
	if jerr := json.Unmarshal(line, &r); jerr != nil {
		r = result{Name: w.name, N: w.scaled(cfg.scale)}
		msg := fmt.Sprintf("child exited after %.1fs: %v", time.Since(t0).Seconds(), err)
		if err == nil {
			msg = fmt.Sprintf("child printed no result: %v", jerr)
		}
		r.Err = msg + "; stderr ends: " + string(lastLine(stderr.Bytes()))
	}
	return r
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// child runs one workload in this process and prints its result as JSON.
func child(name string) int {
	w, ok := lookup(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "no workload %q\n", name)
		return 2
	}
	factor, err := strconv.ParseFloat(os.Getenv(envFactor), 64)
	if err != nil {
		factor = 1
	}
	timeout, err := time.ParseDuration(os.Getenv(envTimeout))
	if err != nil {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := result{Name: w.name, N: w.scaled(factor), mem: watchMemory(100 * time.Millisecond)}
	if dir := os.Getenv(envProfile); dir != "" {
		f, err := os.Create(filepath.Join(dir, w.name+".cpu"))
		if err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if err := runOne(ctx, w, &r); err != nil {
		r.Err = err.Error()
	}
	r.measure()
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

func runOne(ctx context.Context, w workload, r *result) error {
	if w.ownCluster {
		return w.run(ctx, r.N, r)
	}
	if err := raygo.Init(ctx); err != nil {
		return err
	}
	defer raygo.Shutdown(context.Background())
	err := w.run(ctx, r.N, r)
	r.measure() // while the workers still run
	return err
}

func printTable(out io.Writer, results []result, scale float64) {
	bw := bufio.NewWriter(out)
	defer bw.Flush()
	fmt.Fprintf(bw, "scale %g\n\n", scale)
	fmt.Fprintln(bw, "| workload | n | raygo | driver peak | other processes' peaks | all processes (sum of peaks) | peak RSS at one instant (shm part) | Ray, another machine (full scale) |")
	fmt.Fprintln(bw, "|---|---:|---|---:|---:|---:|---:|---|")
	for _, r := range results {
		w, _ := lookup(r.Name)
		if r.Err != "" {
			fmt.Fprintf(bw, "| %s | %s | FAILED: %s | | | | | %s |\n", w.title, w.count(r.N), r.Err, w.ray)
			continue
		}
		fig := fmt.Sprintf("%.2f s", r.Seconds)
		if r.Rate > 0 {
			fig += fmt.Sprintf(" (%s %s)", human(r.Rate), r.RateUnit)
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s (%d) | %s | %s (%s) | %s |\n", w.title, w.count(r.N), fig,
			mib(r.DriverHWM), mib(r.OthersHWM), r.Others, mib(r.DriverHWM+r.OthersHWM), mib(r.PeakRSS), mib(r.PeakShmRSS), w.ray)
	}
	fmt.Fprintln(bw)
	for _, r := range results {
		var ps []string
		for _, p := range r.Phases {
			ps = append(ps, fmt.Sprintf("%s %.2f s", p.Name, p.Seconds))
		}
		fmt.Fprintf(bw, "- %s: %s. %s\n", r.Name, strings.Join(ps, ", "), r.Note)
	}
}

// count formats a workload's size: bytes for broadcast1g, else a count.
func (w workload) count(n int) string {
	if w.bytes {
		if n >= 1<<30 {
			return fmt.Sprintf("%.3g GiB", float64(n)/(1<<30))
		}
		return fmt.Sprintf("%.3g MiB", float64(n)/(1<<20))
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", (b+1<<19)>>20) }

func human(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatInt(int64(v+0.5), 10)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
