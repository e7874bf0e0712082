package hier

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/raygo/raygo/collectives/backend"
	"github.com/raygo/raygo/collectives/backend/backendtest"
)

// mod3 puts rank r on node r%3: uneven counts per node for most sizes
// (4 ranks: 2, 1, 1), even ones for 3 and 6.
func mod3(size int) []string {
	out := make([]string, size)
	for r := range out {
		out[r] = fmt.Sprintf("node%d", r%3)
	}
	return out
}

// pairs puts ranks 2k and 2k+1 on node k: every node has two ranks when
// size is even (one node has one when it is odd).
func pairs(size int) []string {
	out := make([]string, size)
	for r := range out {
		out[r] = fmt.Sprintf("node%d", r/2)
	}
	return out
}

func TestConformanceUneven(t *testing.T) {
	o := backendtest.Options{Nodes: mod3}
	if testing.Short() {
		o.Sizes = []int{1, 2, 4, 7}
		o.Lengths = []int{0, 7, 1000, 65539}
	}
	backendtest.Run(t, New, o)
}

// TestConformanceSharded: two ranks per node, sharded allreduce at every
// length (the remainder path too, for lengths not divisible by 2).
func TestConformanceSharded(t *testing.T) {
	o := backendtest.Options{Nodes: pairs, Sizes: []int{2, 4, 6, 8}, Backend: map[string]string{"hier.sharded_above": "0"}}
	if testing.Short() {
		o.Sizes = []int{4, 6}
		o.Lengths = []int{0, 7, 1000, 65539}
	}
	backendtest.Run(t, New, o)
}

// TestConformanceTCP builds both levels with tcp, so that the hierarchy
// does not depend on the shared-memory backend.
func TestConformanceTCP(t *testing.T) {
	o := backendtest.Options{Nodes: mod3, Sizes: []int{3, 5, 6}, Lengths: []int{0, 7, 65539},
		Backend: map[string]string{"hier.intra": "tcp", "tcp.ring_above": "4K", "tcp.chunk": "4K", "hier.sharded_above": "0"}}
	if testing.Short() {
		o.Sizes = []int{5, 6}
	}
	backendtest.Run(t, New, o)
}

func TestOptions(t *testing.T) {
	for opts, want := range map[string]string{
		"hier.bogus=1":         `unknown option "hier.bogus" (valid: hier.inter, hier.intra, hier.sharded_above)`,
		"hier.intra=nosuch":    `no backend "nosuch" is registered`,
		"hier.inter=hier":      "cannot use the hier backend itself",
		"hier.sharded_above=x": "hier.sharded_above",
		"tcp.bogus=1":          `unknown option "tcp.bogus"`,
	} {
		k, v, _ := strings.Cut(opts, "=")
		_, err := backendtest.Group(context.Background(), New, 2, []string{"a", "b"}, map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", opts, err, want)
		}
	}
}

func TestLayout(t *testing.T) {
	ms := make([]backend.Member, 7)
	for r := range ms {
		ms[r] = backend.Member{Rank: r, Node: fmt.Sprint("n", r%3)}
	}
	l := newLayout(ms)
	if fmt.Sprint(l.nodes) != "[[0 3 6] [1 4] [2 5]]" || l.maxPer != 3 || l.uniform {
		t.Fatalf("layout: %+v", l)
	}
	if fmt.Sprint(l.shard(0), l.shard(2)) != "[0 1 2] [6]" {
		t.Fatalf("shards: %v %v", l.shard(0), l.shard(2))
	}
}
