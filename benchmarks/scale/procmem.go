package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memWatch follows the memory of this process and of every process
// descended from it (the worker processes its node agents start). Each
// process's VmHWM (the kernel's RSS high-water mark) is read on every
// sample and kept after the process exits; the sum of VmRSS over all
// processes at each sample gives the peak the processes reached together.
// RSS counts shared-memory pages a process has touched (RssShmem), so an
// object mapped by several processes is counted once for each.
type memWatch struct {
	self  int
	every time.Duration
	stop  chan struct{}
	done  chan struct{}

	mu       sync.Mutex
	hwm      map[int]int64 // pid -> VmHWM, bytes
	peakRSS  int64         // max over samples of the sum of VmRSS
	peakShm  int64         // RssShmem summed in the sample that set peakRSS
	samples  int
	children map[int]bool // pids seen other than self
}

func watchMemory(every time.Duration) *memWatch {
	w := &memWatch{self: os.Getpid(), every: every, stop: make(chan struct{}), done: make(chan struct{}),
		hwm: map[int]int64{}, children: map[int]bool{}}
	go w.loop()
	return w
}

func (w *memWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.sample()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// Stop takes a last sample and stops the watcher. Call it before the
// cluster shuts down, while the workers still exist.
func (w *memWatch) Stop() {
	close(w.stop)
	<-w.done
	w.sample()
}

func (w *memWatch) sample() {
	pids := append([]int{w.self}, descendants(w.self)...)
	var rss, shm int64
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pid := range pids {
		st, ok := readStatus(pid)
		if !ok {
			continue
		}
		if pid != w.self {
			w.children[pid] = true
		}
		w.hwm[pid] = max(w.hwm[pid], st["VmHWM"])
		rss += st["VmRSS"]
		shm += st["RssShmem"]
	}
	if rss > w.peakRSS {
		w.peakRSS, w.peakShm = rss, shm
	}
	w.samples++
}

// Report returns the driver's VmHWM, the sum of the other processes'
// VmHWM and their count, and the peak of the summed VmRSS with its
// shared-memory part.
func (w *memWatch) Report() (driver, others int64, n int, peakRSS, peakShm int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for pid, v := range w.hwm {
		if pid == w.self {
			driver = v
		} else {
			others += v
		}
	}
	return driver, others, len(w.children), w.peakRSS, w.peakShm
}

// descendants lists the processes whose parent chain reaches root.
func descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPid(pid); ok {
			kids[pp] = append(kids[pp], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// parentPid reads field 4 of /proc/PID/stat; the command name (field 2)
// may hold spaces, so the fields are counted after its closing paren.
func parentPid(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// readStatus returns the kB fields of /proc/PID/status that we use, in bytes.
func readStatus(pid int) (map[string]int64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, false
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS" && k != "RssShmem") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			out[k] = kb << 10
		}
	}
	_, ok := out["VmHWM"]
	return out, ok
}
