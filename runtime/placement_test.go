package runtime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/runtime/wire"
)

func nodes(avail ...float64) []nodeRes {
	var out []nodeRes
	for i, c := range avail {
		out = append(out, nodeRes{id: wire.NodeID(i + 1), total: wire.Resources{"CPU": 4}, avail: wire.Resources{"CPU": c}})
	}
	return out
}

func bundles(cpus ...float64) []wire.Resources {
	var out []wire.Resources
	for _, c := range cpus {
		out = append(out, wire.Resources{"CPU": c})
	}
	return out
}

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nodes    []nodeRes
		bundles  []wire.Resources
		strategy uint8
		want     []wire.NodeID // nil: cannot place now
	}{
		{"pack on one node", nodes(4, 4), bundles(1, 2), PGPack, []wire.NodeID{1, 1}},
		{"pack spills over", nodes(2, 4), bundles(2, 2, 2), PGPack, []wire.NodeID{2, 2, 1}},
		{"strict pack fits", nodes(1, 4), bundles(2, 2), PGStrictPack, []wire.NodeID{2, 2}},
		{"strict pack waits", nodes(2, 2), bundles(2, 2), PGStrictPack, nil},
		{"spread", nodes(4, 4, 4), bundles(1, 1, 1), PGSpread, []wire.NodeID{1, 2, 3}},
		{"spread reuses", nodes(4, 4), bundles(1, 1, 1), PGSpread, []wire.NodeID{1, 2, 1}},
		{"strict spread", nodes(4, 4, 4), bundles(1, 1, 1), PGStrictSpread, []wire.NodeID{1, 2, 3}},
		{"strict spread waits", nodes(4, 0, 4), bundles(1, 1, 1), PGStrictSpread, nil},
		{"nothing free", nodes(0, 0), bundles(1), PGPack, nil},
	} {
		got, ok := place(tc.nodes, tc.bundles, tc.strategy, false)
		if tc.want == nil {
			if ok {
				t.Errorf("%s: placed %v, want no placement", tc.name, got)
			}
			continue
		}
		if !ok || len(got) != len(tc.want) {
			t.Errorf("%s: got %v %v, want %v", tc.name, got, ok, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestFeasible(t *testing.T) {
	ns := nodes(4, 4)
	if err := feasible(ns, bundles(4, 4), PGStrictSpread); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		b        []wire.Resources
		strategy uint8
		want     string
	}{
		{bundles(5), PGPack, "fits on no node"},
		{bundles(3, 3), PGStrictPack, "no single node"},
		{bundles(1, 1, 1), PGStrictSpread, "3 bundles but only 2 nodes"},
		{[]wire.Resources{{"GPU": 1}}, PGPack, "fits on no node"},
	} {
		err := feasible(ns, tc.b, tc.strategy)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %s: got %v, want %q", tc.b, PGStrategyName(tc.strategy), err, tc.want)
		}
	}
}

func TestSameProgram(t *testing.T) {
	job := &wire.Job{BinaryPath: "/bin/prog", BinaryHash: "aaaa", RegistryHash: "r1", Registry: []string{"f func()", "g func()"}}
	ok := &wire.Hello{BinaryPath: "/bin/prog", BinaryHash: "aaaa", RegistryHash: "r1", Registry: job.Registry}
	if err := sameProgram(job, ok); err != nil {
		t.Fatal(err)
	}
	bin := *ok
	bin.BinaryHash = "bbbb"
	if err := sameProgram(job, &bin); err == nil || !strings.Contains(err.Error(), "differs from the driver's") || !strings.Contains(err.Error(), "bbbb") {
		t.Fatalf("binary mismatch: %v", err)
	}
	reg := *ok
	reg.RegistryHash, reg.Registry = "r2", []string{"f func()", "h func(int)"}
	err := sameProgram(job, &reg)
	if err == nil || !strings.Contains(err.Error(), "lacks [g func()]") || !strings.Contains(err.Error(), "extra [h func(int)]") {
		t.Fatalf("registry mismatch: %v", err)
	}
}

func TestShapeKey(t *testing.T) {
	a := newExecTask(&wire.TaskSpec{Resources: wire.Resources{"CPU": 1, "GPU": 1}}, 0)
	b := newExecTask(&wire.TaskSpec{Resources: wire.Resources{"GPU": 1, "CPU": 1}}, 0)
	c := newExecTask(&wire.TaskSpec{Resources: wire.Resources{"CPU": 1}, Strategy: wire.Strategy{Kind: wire.StrategyPlacementGroup, Group: 3, Bundle: 1}}, 0)
	if shapeKey(a) != shapeKey(b) {
		t.Fatalf("same resources, different keys: %q %q", shapeKey(a), shapeKey(b))
	}
	if !strings.HasPrefix(shapeKey(c), "pg3.1|") {
		t.Fatalf("bundle key %q", shapeKey(c))
	}
}

// TestGroupWaitBeforeCreation: a task given a group's ID may ask the head
// for the group before the creation's request reaches it (the creator
// does not wait). The wait must hold until the creation comes; a removed
// group is an error at once; a group never created is one after the wait.
func TestGroupWaitBeforeCreation(t *testing.T) {
	h, err := NewHead("127.0.0.1:0", make([]byte, 32), "test", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop("test over")
	wait := func(id uint64, timeout time.Duration) ([]byte, error) {
		return h.groupWait(encode(func(e *wire.Enc) { e.Uvarint(id); e.Uvarint(uint64(timeout / time.Millisecond)) }))
	}

	type result struct {
		body []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		body, err := wait(7, 10*time.Second)
		got <- result{body, err}
	}()
	time.Sleep(50 * time.Millisecond) // the wait is under way
	select {
	case r := <-got:
		t.Fatalf("wait for a group not created yet returned at once: %v", r.err)
	default:
	}
	g := &headGroup{id: 7, bundles: bundles(1)}
	h.mu.Lock()
	h.addGroupLocked(g)
	h.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	h.mu.Lock()
	g.nodes, g.ready = []wire.NodeID{3}, true
	for _, w := range g.waiters {
		close(w)
	}
	g.waiters = nil
	h.mu.Unlock()
	r := <-got
	if r.err != nil || string(r.body) != string(encodeNodes([]wire.NodeID{3})) {
		t.Fatalf("wait for group 7: %v (body %x)", r.err, r.body)
	}

	if err := h.groupRemove(7); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := wait(7, 10*time.Second); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("wait for a removed group: %v, want ErrNotFound saying removed", err)
	}
	if d := time.Since(start); d > pgCreateGrace/2 {
		t.Fatalf("wait for a removed group took %v", d)
	}
	if _, err := wait(8, 100*time.Millisecond); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "not created") {
		t.Fatalf("wait for a group never created: %v, want ErrTimeout saying not created", err)
	}
}
