// Pipeline: a distributed principal component analysis of a matrix of at
// least 64 MiB, the demo that `make demo` runs.
//
//	stage 1  the driver plants a few latent factors in a rows x cols matrix
//	         and stores it once with raygo.Put (shared memory).
//	stage 2  one task per block of rows gets the whole matrix by reference,
//	         as a zero-copy view, and computes the block's column means and
//	         co-moment matrix with gonum, plus a histogram of its values.
//	stage 3  a binary tree of merge tasks combines the blocks (Chan et
//	         al.'s parallel update), and a last task takes the eigenvalues.
//	actor    an aggregator receives every block's histogram and provenance
//	         by Ref, as the blocks finish.
//
// The driver then computes everything again directly and exits 1 unless
// both answers agree. It runs on an embedded one-node cluster, or joins
// the cluster named by RAYGO_ADDRESS.
//
//	go run ./examples/pipeline -blocks 1000 -size 64
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/raygo/raygo"
)

// Histogram of every value of the matrix: bins of width binWidth over
// [histLo, histLo+numBins*binWidth), plus one bin below and one above.
const (
	numBins  = 48
	histLo   = -12.0
	binWidth = 0.5
)

func bin(x float64) int {
	switch {
	case x < histLo:
		return 0
	case x >= histLo+numBins*binWidth:
		return numBins + 1
	}
	return 1 + int((x-histLo)/binWidth)
}

// Block is the part of the matrix one stage-2 task reads.
type Block struct {
	Index      int
	Row0, Row1 int // rows [Row0, Row1)
	Cols       int
}

// Moments are the running statistics of a set of rows: the count, the
// column means and the co-moment matrix M2 = sum (x-mean)(x-mean)^T
// (cols x cols, row-major). Tasks counts the tasks that contributed, by
// "node/pid".
type Moments struct {
	N     int
	Mean  []float64
	M2    []float64
	Tasks map[string]int
}

// Tally is what a block task reports to the aggregator.
type Tally struct {
	Block   int
	Hist    []int64
	Node    uint32
	Pid     int
	Addr    uint64 // address of the matrix in the task's process
	Mapping string // the file mapped at Addr ("" if anonymous memory)
}

// where names the node and process running a task.
func where(ctx context.Context) string {
	c := raygo.CurrentContext(ctx)
	return fmt.Sprintf("%d/%d", c.Node, c.Pid)
}

// Stage 2. data is the whole matrix, a read-only view of shared memory
// valid during the call; the task reads rows [Row0, Row1) of it in place.
var blockStats = raygo.Func2x2("pipeline.blockStats", func(ctx context.Context, data []float64, b Block) (Moments, Tally, error) {
	if b.Row0 < 0 || b.Row1 <= b.Row0 || b.Row1*b.Cols > len(data) {
		return Moments{}, Tally{}, fmt.Errorf("block %d: rows [%d, %d) of %d columns outside a matrix of %d values",
			b.Index, b.Row0, b.Row1, b.Cols, len(data))
	}
	rows := b.Row1 - b.Row0
	x := mat.NewDense(rows, b.Cols, data[b.Row0*b.Cols:b.Row1*b.Cols]) // no copy

	mean := make([]float64, b.Cols)
	for j := range mean {
		mean[j] = stat.Mean(mat.Col(nil, j, x), nil)
	}
	// M2 = X^T X - n mean mean^T; X is only read (SymOuterK is a syrk).
	var g mat.SymDense
	g.SymOuterK(1, x.T())
	g.SymRankOne(&g, -float64(rows), mat.NewVecDense(b.Cols, mean))

	hist := make([]int64, numBins+2)
	for _, v := range data[b.Row0*b.Cols : b.Row1*b.Cols] {
		hist[bin(v)]++
	}
	addr := uint64(reflect.ValueOf(data).Pointer())
	c := raygo.CurrentContext(ctx)
	m := Moments{N: rows, Mean: mean, M2: symData(&g), Tasks: map[string]int{where(ctx): 1}}
	return m, Tally{Block: b.Index, Hist: hist, Node: uint32(c.Node), Pid: c.Pid, Addr: addr, Mapping: mappedFile(addr)}, nil
})

// Stage 3: combine two sets of moments (Chan, Golub and LeVeque).
var merge = raygo.Func2("pipeline.merge", func(ctx context.Context, a, b Moments) (Moments, error) {
	d := len(a.Mean)
	if len(b.Mean) != d {
		return Moments{}, fmt.Errorf("merge: %d columns and %d columns", d, len(b.Mean))
	}
	n := a.N + b.N
	delta := make([]float64, d)
	floats.SubTo(delta, b.Mean, a.Mean)
	mean := make([]float64, d)
	floats.AddScaledTo(mean, a.Mean, float64(b.N)/float64(n), delta)

	m2 := mat.NewSymDense(d, nil)
	m2.AddSym(fullSym(d, a.M2), fullSym(d, b.M2))
	m2.SymRankOne(m2, float64(a.N)*float64(b.N)/float64(n), mat.NewVecDense(d, delta))

	tasks := map[string]int{where(ctx): 1}
	for _, t := range []map[string]int{a.Tasks, b.Tasks} {
		for k, v := range t {
			tasks[k] += v
		}
	}
	return Moments{N: n, Mean: mean, M2: symData(m2), Tasks: tasks}, nil
})

// PCA is the result of the last stage.
type PCA struct {
	Eigenvalues []float64 // of the covariance matrix, largest first
	Cov         []float64 // the covariance matrix, row-major
	Mean        []float64
	Where       string
}

var pca = raygo.Func1("pipeline.pca", func(ctx context.Context, m Moments) (PCA, error) {
	d := len(m.Mean)
	cov := mat.NewSymDense(d, nil)
	cov.ScaleSym(1/float64(m.N-1), fullSym(d, m.M2))
	ev, err := eigenvalues(cov)
	if err != nil {
		return PCA{}, err
	}
	return PCA{Eigenvalues: ev, Cov: symData(cov), Mean: m.Mean, Where: where(ctx)}, nil
})

// The aggregator actor sums the block histograms as they arrive and
// records which process ran each block and where it saw the matrix.
type Aggregator struct {
	hist    []int64
	blocks  map[int]bool
	tasks   map[string]int             // "node/pid" -> blocks
	addrs   map[string]map[uint64]bool // "node/pid" -> addresses the matrix was seen at
	mapping map[string]int             // mapped file -> blocks
}

// Summary is what the aggregator reports.
type Summary struct {
	Blocks   int
	Hist     []int64
	Tasks    map[string]int // "node/pid" -> blocks
	Addrs    map[string]int // "node/pid" -> distinct addresses of the matrix
	Mappings map[string]int // mapped file -> blocks ("": not mapped, a copy)
	Where    string
}

var aggregator = raygo.Actor0("pipeline.Aggregator", func(ctx context.Context) (*Aggregator, error) {
	return &Aggregator{hist: make([]int64, numBins+2), blocks: map[int]bool{}, tasks: map[string]int{},
		addrs: map[string]map[uint64]bool{}, mapping: map[string]int{}}, nil
})

var record = raygo.Method1(aggregator, "Record", func(ctx context.Context, a *Aggregator, t Tally) (int, error) {
	if a.blocks[t.Block] {
		return 0, fmt.Errorf("block %d recorded twice", t.Block)
	}
	if len(t.Hist) != len(a.hist) {
		return 0, fmt.Errorf("block %d: histogram of %d bins, want %d", t.Block, len(t.Hist), len(a.hist))
	}
	a.blocks[t.Block] = true
	for i, c := range t.Hist {
		a.hist[i] += c
	}
	key := fmt.Sprintf("%d/%d", t.Node, t.Pid)
	a.tasks[key]++
	if a.addrs[key] == nil {
		a.addrs[key] = map[uint64]bool{}
	}
	a.addrs[key][t.Addr] = true
	a.mapping[t.Mapping]++
	return len(a.blocks), nil
})

var summary = raygo.Method0(aggregator, "Summary", func(ctx context.Context, a *Aggregator) (Summary, error) {
	addrs := map[string]int{}
	for k, m := range a.addrs {
		addrs[k] = len(m)
	}
	return Summary{Blocks: len(a.blocks), Hist: a.hist, Tasks: a.tasks, Addrs: addrs, Mappings: a.mapping, Where: where(ctx)}, nil
})

func main() {
	blocks := flag.Int("blocks", 1000, "number of stage-2 blocks (tasks)")
	sizeMiB := flag.Int("size", 64, "size of the matrix in MiB")
	cols := flag.Int("cols", 64, "columns of the matrix")
	factors := flag.Int("factors", 4, "latent factors planted in the data")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()

	ctx := context.Background()
	if err := raygo.Init(ctx); err != nil { // in worker processes, Init never returns
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
	err := run(ctx, config{blocks: *blocks, sizeMiB: *sizeMiB, cols: *cols, factors: *factors, seed: *seed})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if serr := raygo.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		fmt.Println("FAILED")
		os.Exit(1)
	}
	fmt.Println("OK")
}

type config struct {
	blocks, sizeMiB, cols, factors int
	seed                           uint64
}

func run(ctx context.Context, cfg config) error {
	rows := cfg.sizeMiB << 20 / 8 / cfg.cols
	if cfg.cols < 2 || cfg.factors < 1 || cfg.factors > cfg.cols || rows < 2*cfg.blocks || cfg.blocks < 1 {
		return fmt.Errorf("bad sizes: %d MiB, %d columns (%d rows), %d factors, %d blocks",
			cfg.sizeMiB, cfg.cols, rows, cfg.factors, cfg.blocks)
	}
	start := time.Now()

	// Stage 1: make the data and store it once.
	data := generate(rows, cfg.cols, cfg.factors, cfg.seed)
	genTime := time.Since(start)
	t0 := time.Now()
	dataRef, err := raygo.Put(ctx, data)
	if err != nil {
		return err
	}
	putTime := time.Since(t0)
	nbytes := len(data) * 8
	fmt.Printf("stage 1: %d x %d matrix, %.1f MiB, %d planted factors: generated in %v, Put in %v as %s\n",
		rows, cfg.cols, float64(nbytes)/(1<<20), cfg.factors, round(genTime), round(putTime), dataRef)

	// Stage 2: one task per block, each given the whole matrix by Ref.
	t0 = time.Now()
	agg := aggregator.Remote()
	moments := make([]raygo.Ref[Moments], cfg.blocks)
	recorded := make([]raygo.Ref[int], cfg.blocks)
	for i := range moments {
		b := Block{Index: i, Row0: i * rows / cfg.blocks, Row1: (i + 1) * rows / cfg.blocks, Cols: cfg.cols}
		var tally raygo.Ref[Tally]
		moments[i], tally = blockStats.Remote(dataRef, raygo.Val(b))
		recorded[i] = record.Remote(agg, tally) // the actor gets the Tally once it exists
	}

	// Stage 3: a binary tree of merges over the refs, then the eigenvalues.
	level, merges, depth := moments, 0, 0
	for len(level) > 1 {
		next := make([]raygo.Ref[Moments], 0, (len(level)+1)/2)
		for i := 0; i+1 < len(level); i += 2 {
			next = append(next, merge.Remote(level[i], level[i+1]))
			merges++
		}
		if len(level)%2 == 1 {
			next = append(next, level[len(level)-1])
		}
		level, depth = next, depth+1
	}
	root := level[0]
	result, err := pca.Remote(root).Get(ctx)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	total, err := root.Get(ctx)
	if err != nil {
		return err
	}
	if _, err := raygo.GetAll(ctx, recorded); err != nil {
		return fmt.Errorf("aggregator: %w", err)
	}
	sum, err := summary.Remote(agg).Get(ctx)
	if err != nil {
		return fmt.Errorf("aggregator: %w", err)
	}
	distTime := time.Since(t0)
	nodes, err := raygo.Nodes(ctx)
	if err != nil {
		return err
	}
	var storeUsed int64
	storeObjects := 0
	for _, n := range nodes {
		storeUsed += n.StoreUsed
		storeObjects += n.Objects
	}
	goruntime.KeepAlive(dataRef) // the matrix stays stored until here
	fmt.Printf("stage 2: %d block tasks, each handed the %d-byte matrix by Ref\n", cfg.blocks, nbytes)
	fmt.Printf("stage 3: %d merge tasks in a tree of depth %d, 1 eigenvalue task (on node/pid %s)\n", merges, depth, result.Where)
	fmt.Printf("actor:   %d Record calls and 1 Summary (actor on node/pid %s)\n", sum.Blocks, sum.Where)

	// The matrix was read by reference: each block task found it in a
	// shared-memory mapping rather than in a copy on its heap.
	var seen []string
	for _, f := range sortedKeys(sum.Mappings) {
		if f == "" {
			seen = append(seen, fmt.Sprintf("%d from a private copy", sum.Mappings[f]))
		} else {
			seen = append(seen, fmt.Sprintf("%d in place from %s", sum.Mappings[f], f))
		}
	}
	addrs := 0
	for _, n := range sum.Addrs {
		addrs += n
	}
	fmt.Printf("by reference: %.1f MiB Put once (object store: %d objects, %.1f MiB); block tasks read it %s (%d processes, %d distinct mapping addresses)\n",
		float64(nbytes)/(1<<20), storeObjects, float64(storeUsed)/(1<<20), strings.Join(seen, ", "), len(sum.Addrs), addrs)

	// Check: everything again, directly in the driver.
	t0 = time.Now()
	var errs []error
	x := mat.NewDense(rows, cfg.cols, data)
	wantCov := mat.NewSymDense(cfg.cols, nil)
	stat.CovarianceMatrix(wantCov, x, nil)
	wantMean := make([]float64, cfg.cols)
	for j := range wantMean {
		wantMean[j] = stat.Mean(mat.Col(nil, j, x), nil)
	}
	wantEV, err := eigenvalues(wantCov)
	if err != nil {
		return err
	}
	wantHist := make([]int64, numBins+2)
	for _, v := range data {
		wantHist[bin(v)]++
	}
	checkTime := time.Since(t0)
	check := func(what string, ok bool, detail string) {
		verdict := "OK"
		if !ok {
			verdict = "MISMATCH"
			errs = append(errs, fmt.Errorf("%s: %s", what, detail))
		}
		fmt.Printf("check %-12s %-8s %s\n", what, verdict, detail)
	}
	const tol = 1e-9
	check("rows", total.N == rows, fmt.Sprintf("%d rows merged, want %d", total.N, rows))
	d := relDiff(result.Mean, wantMean)
	check("mean", d < tol, fmt.Sprintf("max relative difference %.1e", d))
	d = relDiff(result.Cov, symData(wantCov))
	check("covariance", d < tol && len(result.Cov) == cfg.cols*cfg.cols, fmt.Sprintf("max relative difference %.1e (%dx%d)", d, cfg.cols, cfg.cols))
	d = relDiff(result.Eigenvalues, wantEV)
	check("eigenvalues", d < tol, fmt.Sprintf("max relative difference %.1e", d))
	check("histogram", reflect.DeepEqual(sum.Hist, wantHist), fmt.Sprintf("%d values in %d bins, exact", sumInts(sum.Hist), len(sum.Hist)))
	check("blocks", sum.Blocks == cfg.blocks, fmt.Sprintf("%d blocks recorded by the actor, want %d", sum.Blocks, cfg.blocks))
	nTasks := 0
	for _, n := range total.Tasks {
		nTasks += n
	}
	check("tasks", nTasks == cfg.blocks+merges, fmt.Sprintf("%d tasks counted in the tree, want %d", nTasks, cfg.blocks+merges))
	copied := sum.Mappings[""]
	check("zero-copy", copied == 0, fmt.Sprintf("%d of %d blocks read the matrix from a shared-memory mapping", cfg.blocks-copied, cfg.blocks))

	explained := 0.0
	for _, v := range result.Eigenvalues[:cfg.factors] {
		explained += v
	}
	explained /= floats.Sum(result.Eigenvalues)
	fmt.Printf("PCA: top eigenvalues %s; %d components explain %.1f%% of the variance\n",
		fmtFloats(result.Eigenvalues[:min(cfg.factors+2, len(result.Eigenvalues))]), cfg.factors, 100*explained)

	// Where the tasks ran.
	tasks := nTasks + 1 // plus the eigenvalue task
	perNode := map[string]int{}
	perProc := total.Tasks
	perProc[result.Where]++
	for k, n := range perProc {
		perNode[strings.Split(k, "/")[0]] += n
	}
	elapsed := time.Since(start)
	fmt.Printf("tasks: %d (%d block, %d merge, 1 eigen) + %d actor calls in %v: %.0f tasks/s\n",
		tasks, cfg.blocks, merges, sum.Blocks+1, round(distTime), float64(tasks)/distTime.Seconds())
	for _, nd := range sortedKeys(perNode) {
		fmt.Printf("  node %s: %d tasks\n", nd, perNode[nd])
		for _, k := range sortedKeys(perProc) {
			if strings.HasPrefix(k, nd+"/") {
				fmt.Printf("    pid %s: %d tasks (%d blocks)\n", strings.TrimPrefix(k, nd+"/"), perProc[k], sum.Tasks[k])
			}
		}
	}
	fmt.Printf("elapsed: %v (generate %v, put %v, distributed %v, direct check %v)\n",
		round(elapsed), round(genTime), round(putTime), round(distTime), round(checkTime))
	return errors.Join(errs...)
}

// generate makes rows x cols values: x = mu + W f + noise, with f a
// standard normal vector of k latent factors. The covariance W W^T + I has
// k large eigenvalues; the rest are near 1.
func generate(rows, cols, k int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	mu := make([]float64, cols)
	w := make([]float64, cols*k)
	for j := range mu {
		mu[j] = rng.Float64()*4 - 2
	}
	for i := range w {
		w[i] = rng.NormFloat64() * 2 / math.Sqrt(float64(1+i%k))
	}
	data := make([]float64, rows*cols)
	f := make([]float64, k)
	for r := 0; r < rows; r++ {
		for i := range f {
			f[i] = rng.NormFloat64()
		}
		row := data[r*cols : (r+1)*cols]
		for j := range row {
			row[j] = mu[j] + floats.Dot(w[j*k:(j+1)*k], f) + rng.NormFloat64()
		}
	}
	return data
}

func eigenvalues(s mat.Symmetric) ([]float64, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, false) {
		return nil, errors.New("eigen decomposition failed")
	}
	ev := eig.Values(nil)
	sort.Sort(sort.Reverse(sort.Float64Slice(ev)))
	return ev, nil
}

// symData returns s as a full row-major matrix.
func symData(s *mat.SymDense) []float64 {
	n := s.SymmetricDim()
	out := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			out[i*n+j] = s.At(i, j)
		}
	}
	return out
}

func fullSym(n int, data []float64) *mat.SymDense {
	return mat.NewSymDense(n, append([]float64(nil), data...))
}

// relDiff is the largest |a_i - b_i| relative to the largest |b_i|.
func relDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	scale := 0.0
	for _, v := range b {
		scale = math.Max(scale, math.Abs(v))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	if scale == 0 {
		return d
	}
	return d / scale
}

// mappedFile names the file mapped at addr in this process, from
// /proc/self/maps ("" when the address is anonymous memory, such as the
// Go heap, or the table cannot be read).
func mappedFile(addr uint64) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && l <= addr && addr < h {
			name := strings.Join(fields[5:], " ")
			if i := strings.LastIndex(name, "/"); i >= 0 {
				// Keep the store directory and drop the object's name.
				name = name[:i] + "/..."
			}
			return name
		}
	}
	return ""
}

func sumInts(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

func fmtFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
