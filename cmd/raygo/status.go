package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/raygo/raygo/runtime"
	"github.com/raygo/raygo/runtime/resources"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:         "status",
		Usage:        "list a cluster's nodes, what they have and what they run",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			addressFlag("the cluster's head,"),
			secretFileFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "give up after this long"},
		},
		Action: statusAction,
	}
}

// clusterStatus is what `raygo status --json` prints.
type clusterStatus struct {
	ClusterID       string       `json:"cluster_id"`
	Head            string       `json:"head"`
	Nodes           []nodeStatus `json:"nodes"`
	Jobs            int          `json:"jobs"`
	PlacementGroups int          `json:"placement_groups"`
}

type nodeStatus struct {
	ID       uint32             `json:"id"`
	Address  string             `json:"address"`
	Hostname string             `json:"hostname"`
	Alive    bool               `json:"alive"`
	Total    map[string]float64 `json:"total"`
	// Used is total minus available; empty for a dead node.
	Used           map[string]float64 `json:"used"`
	Tasks          uint64             `json:"tasks"`
	Actors         uint64             `json:"actors"`
	Objects        uint64             `json:"objects"`
	StoreUsedBytes uint64             `json:"store_used_bytes"`
	Labels         map[string]string  `json:"labels,omitempty"`
}

func statusAction(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("status takes no arguments (got %q)", c.Args().Slice())
	}
	h, err := newHeadClient(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	st, err := h.status(ctx)
	if err != nil {
		return err
	}
	out := newClusterStatus(h.addr, st)
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return out.print(c.App.Writer)
}

func newClusterStatus(head string, st *runtime.ClusterStatus) *clusterStatus {
	out := &clusterStatus{ClusterID: st.ClusterID, Head: head, Jobs: st.Jobs, PlacementGroups: st.Groups,
		Nodes: []nodeStatus{}}
	for _, n := range st.Nodes {
		ns := nodeStatus{ID: uint32(n.ID), Address: n.Addr, Hostname: n.Hostname, Alive: n.Alive,
			Total: map[string]float64{}, Used: map[string]float64{},
			Tasks: n.Tasks, Actors: n.Actors, Objects: n.Objects, StoreUsedBytes: n.StoreUsed, Labels: n.Labels}
		for k, v := range n.Total {
			ns.Total[k] = v
			if n.Alive {
				used := v - n.Available[k]
				if used < 1e-9 {
					used = 0 // float noise
				}
				ns.Used[k] = used
			}
		}
		out.Nodes = append(out.Nodes, ns)
	}
	return out
}

// print writes a summary line and a table of nodes.
func (s *clusterStatus) print(w io.Writer) error {
	alive := 0
	for _, n := range s.Nodes {
		if n.Alive {
			alive++
		}
	}
	fmt.Fprintf(w, "cluster %s, head %s: %s (%d alive), %s, %s\n", s.ClusterID, s.Head,
		count(len(s.Nodes), "node"), alive, count(s.Jobs, "job"), count(s.PlacementGroups, "placement group"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tHOSTNAME\tSTATE\tCPU\tGPU\tMEMORY\tOTHER\tTASKS\tACTORS\tOBJECTS\tSTORE")
	for _, n := range s.Nodes {
		state := "alive"
		if !n.Alive {
			state = "dead"
		}
		var other []string
		for _, k := range sortedNames(n.Total) {
			if k != "CPU" && k != "GPU" && k != "memory" {
				other = append(other, k+"="+n.usage(k, formatAmount))
			}
		}
		if len(other) == 0 {
			other = []string{"-"}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
			n.ID, n.Address, n.Hostname, state,
			n.usage("CPU", formatAmount), n.usage("GPU", formatAmount), n.usage("memory", formatMemory),
			strings.Join(other, ","), n.Tasks, n.Actors, n.Objects, resources.FormatBytes(n.StoreUsedBytes))
	}
	return tw.Flush()
}

// usage is "used/total" for one resource; "-" for used on a dead node.
func (n nodeStatus) usage(name string, format func(float64) string) string {
	used := "-"
	if n.Alive {
		used = format(n.Used[name])
	}
	return used + "/" + format(n.Total[name])
}

func formatAmount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func formatMemory(v float64) string {
	if v < 0 {
		v = 0
	}
	return resources.FormatBytes(uint64(v))
}

// count is "1 node", "3 nodes".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sortedNames(m map[string]float64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
