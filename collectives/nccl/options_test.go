package nccl

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/collectives/backend"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(map[string]string{"tcp.ring_above": "1", OptDevice: "3", OptStagingBytes: "4096", OptP2P: "false"})
	if err != nil {
		t.Fatal(err)
	}
	if o != (options{device: 3, staging: 4096, p2p: false}) {
		t.Fatalf("got %+v", o)
	}
	if o, err = parseOptions(nil); err != nil || o != (options{device: -1, staging: DefaultStagingBytes, p2p: true}) {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	for _, bad := range []map[string]string{
		{"nccl.unknown": "1"},
		{OptDevice: "-1"},
		{OptDevice: "x"},
		{OptStagingBytes: "63"},
		{OptP2P: "maybe"},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v: no error", bad)
		} else if !strings.Contains(err.Error(), "nccl") {
			t.Errorf("%v: %v does not say nccl", bad, err)
		}
	}
}

func TestChunkOf(t *testing.T) {
	for _, c := range []struct{ total, unit, limit, parts, want int }{
		{1000, 4, 64, 1, 64},
		{1000, 8, 100, 1, 96},
		{10, 4, 64, 1, 10},
		{1000, 8, 64, 16, 8}, // never below one element
		{1000, 1, 64, 3, 21},
		{0, 4, 64, 1, 0},
	} {
		if got := chunkOf(c.total, c.unit, c.limit, c.parts); got != c.want {
			t.Errorf("chunkOf(%d, %d, %d, %d) = %d, want %d", c.total, c.unit, c.limit, c.parts, got, c.want)
		}
	}
}

func TestDecodeVersion(t *testing.T) {
	for code, want := range map[int]Version{22105: {2, 21, 5}, 21003: {2, 10, 3}, 2804: {2, 8, 4}, 2708: {2, 7, 8}} {
		if got := decodeVersion(code); got != want {
			t.Errorf("decodeVersion(%d) = %v, want %v", code, got, want)
		}
	}
	if !(Version{2, 10, 0}).AtLeast(2, 10) || (Version{2, 9, 9}).AtLeast(2, 10) || !(Version{3, 0, 0}).AtLeast(2, 10) {
		t.Error("AtLeast")
	}
}

func TestKinds(t *testing.T) {
	old, cur := Version{2, 8, 4}, Version{2, 21, 5}
	for _, dt := range backend.DTypes {
		if _, _, err := kinds(cur, "lib", dt, backend.Sum); err != nil {
			t.Errorf("%v: %v", dt, err)
		}
	}
	if _, _, err := kinds(old, "/x/libnccl.so.2", backend.BF16, backend.Sum); err == nil || !strings.Contains(err.Error(), "2.10") || !strings.Contains(err.Error(), "/x/libnccl.so.2") {
		t.Errorf("bfloat16 on 2.8.4: %v", err)
	}
	if _, _, err := kinds(old, "lib", backend.F32, backend.Avg); err == nil {
		t.Error("avg on 2.8.4: no error")
	}
	if ndt, nop, err := kinds(old, "lib", backend.F16, backend.Max); err != nil || ndt != ncclFloat16 || nop != ncclMax {
		t.Errorf("float16 max: %d %d %v", ndt, nop, err)
	}
	for _, op := range []backend.Op{0, 9} {
		if _, _, err := kinds(cur, "lib", backend.F32, op); err == nil {
			t.Errorf("reduction %v: no error", op)
		}
	}
	if _, err := ncclType(cur, "lib", 0); err == nil {
		t.Error("element type 0: no error")
	}
}

func TestLocalIndex(t *testing.T) {
	m := []backend.Member{{Rank: 0, Node: "a"}, {Rank: 1, Node: "b"}, {Rank: 2, Node: "a"}, {Rank: 3, Node: "a"}, {Rank: 4, Node: "b"}}
	for rank, want := range []int{0, 0, 1, 2, 1} {
		if got := localIndex(m, rank); got != want {
			t.Errorf("rank %d: %d, want %d", rank, got, want)
		}
	}
	if got := localIndex(nil, 5); got != 5 {
		t.Errorf("no members: %d", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []backend.Config{
		{Group: "g", Size: 0},
		{Group: "g", Size: 2, Rank: 2},
		{Group: "g", Size: 2, Rank: 0, Members: []backend.Member{{}}},
		{Group: "g", Size: 2, Rank: 0}, // no rendezvous
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestRegistered(t *testing.T) {
	if _, ok := backend.Lookup(Name); !ok {
		t.Fatalf("%q is not registered", Name)
	}
	if !errors.Is(ErrNoCgo, ErrNoCgo) || !strings.Contains(ErrNoCgo.Error(), "nccl needs a cgo build") {
		t.Fatal(ErrNoCgo)
	}
}
