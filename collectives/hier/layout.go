package hier

import (
	"fmt"

	"github.com/raygo/raygo/collectives/backend"
)

// layout places a group's ranks on nodes. Nodes are numbered in the order
// their lowest rank appears; each node's ranks are in rank order, and the
// first is its leader.
type layout struct {
	nodes   [][]int // ranks of each node
	nodeOf  []int   // node of each rank
	localOf []int   // index of each rank within its node
	maxPer  int     // most ranks on one node
	uniform bool    // every node has maxPer ranks
}

func newLayout(members []backend.Member) layout {
	var l layout
	index := map[string]int{}
	for r, m := range members {
		k, ok := index[m.Node]
		if !ok {
			k = len(l.nodes)
			index[m.Node] = k
			l.nodes = append(l.nodes, nil)
		}
		l.nodeOf = append(l.nodeOf, k)
		l.localOf = append(l.localOf, len(l.nodes[k]))
		l.nodes[k] = append(l.nodes[k], r)
	}
	l.uniform = true
	for _, n := range l.nodes {
		l.maxPer = max(l.maxPer, len(n))
	}
	for _, n := range l.nodes {
		if len(n) != l.maxPer {
			l.uniform = false
		}
	}
	return l
}

// shard returns the ranks that hold local index j on every node, in node
// order: the inter-node group of shard j (j = 0: the leaders).
func (l layout) shard(j int) []int {
	var out []int
	for _, n := range l.nodes {
		if j < len(n) {
			out = append(out, n[j])
		}
	}
	return out
}

// sub is one sub-group this rank belongs to.
type sub struct {
	name  string // for errors: "intra-node group of node 1"
	group string // the sub-group's Group name
	ranks []int  // parent rank of each sub-rank
	me    int    // this rank's sub-rank
	b     backend.Backend
}

// config is the sub-group's backend configuration: members renumbered,
// and a rendezvous among just these ranks.
func (s *sub) config(parent backend.Config, rv backend.Rendezvous, opts map[string]string) backend.Config {
	ms := make([]backend.Member, len(s.ranks))
	for i, r := range s.ranks {
		ms[i] = parent.Members[r]
		ms[i].Rank = i
	}
	return backend.Config{Group: s.group, Rank: s.me, Size: len(s.ranks), Members: ms, Rendezvous: rv, Options: opts}
}

// describe names the sub-group and how its ranks map to the parent's,
// for errors raised inside it.
func (s *sub) describe() string {
	return fmt.Sprintf("%s (group %q, whose ranks 0..%d are ranks %v)", s.name, s.group, len(s.ranks)-1, s.ranks)
}
