// Command compare runs `raygo microbenchmark` of two builds in turn, several
// times each, and prints a table of their medians and ratios: throughput,
// and CPU time per operation of the benchmark's processes, which moves far
// less with the load of other users of a shared machine.
//
//	go build -o /tmp/raygo-old ./cmd/raygo     # at the old commit
//	go build -o /tmp/raygo-new ./cmd/raygo     # at the new one
//	go run ./benchmarks/compare -filter 'tasks_async' -runs 3 /tmp/raygo-old /tmp/raygo-new
//
// Runs alternate (old, new, old, new, ...) so that a change in the
// machine's load falls on both.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

type result struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	CPUPerOp float64 `json:"cpu_us_per_op"`
}

func main() {
	filter := flag.String("filter", "", "run only the workloads whose name matches this regular expression")
	runs := flag.Int("runs", 3, "runs of each build")
	scale := flag.String("duration-scale", "1", "passed to raygo microbenchmark --duration-scale")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: compare [-filter REGEX] [-runs N] OLD_RAYGO NEW_RAYGO\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || *runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	bins := flag.Args()
	// values[build][workload]: one result per run
	values := [2]map[string][]result{{}, {}}
	var order []string
	for r := 1; r <= *runs; r++ {
		for b, bin := range bins {
			fmt.Fprintf(os.Stderr, "run %d of %d: %s\n", r, *runs, bin)
			rs, err := run(bin, *filter, *scale)
			if err != nil {
				fmt.Fprintf(os.Stderr, "compare: %s: %v\n", bin, err)
				os.Exit(1)
			}
			for _, x := range rs {
				if _, ok := values[0][x.Name]; !ok && b == 0 && r == 1 {
					order = append(order, x.Name)
				}
				values[b][x.Name] = append(values[b][x.Name], x)
			}
		}
	}
	fmt.Printf("| workload | unit | %s (median; runs) | %s (median; runs) | new/old | CPU µs/op, old | CPU µs/op, new | new/old |\n",
		filepath.Base(bins[0]), filepath.Base(bins[1]))
	fmt.Println("|---|---|---|---|---:|---:|---:|---:|")
	for _, name := range order {
		old, cur := values[0][name], values[1][name]
		if len(cur) == 0 {
			continue
		}
		vo, vn := median(old, func(x result) float64 { return x.Value }), median(cur, func(x result) float64 { return x.Value })
		co, cn := median(old, func(x result) float64 { return x.CPUPerOp }), median(cur, func(x result) float64 { return x.CPUPerOp })
		cpuRatio := ""
		if co > 0 && cn > 0 {
			cpuRatio = fmt.Sprintf("%.2f", cn/co)
		}
		fmt.Printf("| `%s` | %s | %s; %s | %s; %s | %.2f | %s | %s | %s |\n", name, old[0].Unit,
			num(vo), list(old), num(vn), list(cur), vn/vo, cpu(co), cpu(cn), cpuRatio)
	}
}

func run(bin, filter, scale string) ([]result, error) {
	args := []string{"microbenchmark", "--json", "--duration-scale", scale}
	if filter != "" {
		args = append(args, "--filter", filter)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var rs []result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var x result
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			return nil, fmt.Errorf("output line %q: %v", sc.Text(), err)
		}
		rs = append(rs, x)
	}
	return rs, nil
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func list(rs []result) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = num(r.Value)
	}
	return strings.Join(s, ", ")
}

func num(v float64) string {
	switch {
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cpu(v float64) string {
	if v <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}
