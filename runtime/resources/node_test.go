package resources

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	n, err := Detect(Options{NVMLPath: noNVML, Env: env()})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Logf("node: %s", n)
	if n.CPUs < 1 {
		t.Errorf("CPUs = %v, want >= 1", n.CPUs)
	}
	if n.MemoryBytes == 0 {
		t.Errorf("MemoryBytes = 0")
	}
	if len(n.GPUs) != 0 {
		t.Errorf("GPUs = %+v without NVML or CUDA_VISIBLE_DEVICES, want none", n.GPUs)
	}
	if n.Custom == nil {
		t.Errorf("Custom is nil")
	}
}

func TestDetectListedGPUs(t *testing.T) {
	n, err := Detect(Options{NVMLPath: noNVML, Env: env(visibleEnv, "0,1")})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if len(n.GPUs) != 2 || n.GPUs[0].Index != 0 || n.GPUs[1].Index != 1 {
		t.Errorf("GPUs = %+v, want indices 0 and 1", n.GPUs)
	}
}

// TestDetectDefaultLibrary loads NVML from its default place. It must not
// panic on a machine without it; on one with it, it logs what it found.
func TestDetectDefaultLibrary(t *testing.T) {
	gpus, err := DetectGPUs(Options{Env: env()})
	if err != nil {
		t.Fatalf("DetectGPUs: %v", err)
	}
	for _, g := range gpus {
		t.Logf("GPU %d %s %s %s", g.Index, g.UUID, g.Name, FormatBytes(g.MemoryBytes))
	}
}

func TestNodeString(t *testing.T) {
	for _, tc := range []struct {
		n    Node
		want string
	}{
		{Node{CPUs: 2, MemoryBytes: 25125306777}, "2 CPUs, 23.4 GiB, 0 GPUs"},
		{Node{CPUs: 1, MemoryBytes: 1 << 30, GPUs: []GPU{{Index: 0}}}, "1 CPU, 1.0 GiB, 1 GPU"},
		{
			Node{CPUs: 1.5, MemoryBytes: 512 << 20, GPUs: make([]GPU, 4),
				Custom: map[string]float64{"license": 0.5, "ib_port": 1}},
			"1.5 CPUs, 512.0 MiB, 4 GPUs, ib_port=1, license=0.5",
		},
	} {
		if got := tc.n.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if strings.Contains(tc.n.String(), "\n") {
			t.Errorf("String() has a newline")
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		b    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"}, // not "1024.0 KiB"
		{10 << 20, "10.0 MiB"},
		{25125306777, "23.4 GiB"},
		{1<<30 - 1, "1.0 GiB"},
		{2 << 40, "2.0 TiB"},
		{1<<64 - 1, "16777216.0 TiB"},
	} {
		if got := FormatBytes(tc.b); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.b, got, tc.want)
		}
	}
}
