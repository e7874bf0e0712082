package runtime

import (
	"strings"
	"testing"

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
