package resources

import (
	"reflect"
	"slices"
	"testing"
)

// env returns an environment lookup holding only kv (name, value, ...).
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseVisible(t *testing.T) {
	unset := parseVisible(env())
	if unset.set || unset.entries != nil {
		t.Errorf("unset: got %+v", unset)
	}
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"", nil},
		{"NoDevFiles", nil},
		{"-1", nil},
		{"0", []string{"0"}},
		{"2,3", []string{"2", "3"}},
		{" 1 , 0 ", []string{"1", "0"}},
		{"0,-1,1", []string{"0"}},         // CUDA stops at an invalid entry
		{"0,,1", []string{"0"}},           // an empty entry is invalid
		{"0,1x,2", []string{"0"}},         // so is a malformed index
		{"1,NoDevFiles,2", []string{"1"}}, // and NoDevFiles within a list
		{"GPU-8932f937-d72c-4106-c12f-20bd9faed9f6,1", []string{"GPU-8932f937-d72c-4106-c12f-20bd9faed9f6", "1"}},
		{"MIG-1b2c", []string{"MIG-1b2c"}},
	} {
		got := parseVisible(env(visibleEnv, tc.value))
		if !got.set || !slices.Equal(got.entries, tc.want) {
			t.Errorf("CUDA_VISIBLE_DEVICES=%q: got %+v, want set with %q", tc.value, got, tc.want)
		}
	}
}

func TestListedGPUs(t *testing.T) {
	got := listedGPUs([]string{"3", "GPU-abc", "3", "01", "GPU-abc"})
	want := []GPU{{Index: 3}, {Index: -1, UUID: "GPU-abc"}, {Index: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listedGPUs = %+v, want %+v", got, want)
	}
	if listedGPUs(nil) != nil {
		t.Errorf("listedGPUs(nil) is not nil")
	}
}

func TestPick(t *testing.T) {
	all := []GPU{
		{Index: 0, UUID: "GPU-aaaa-1111"},
		{Index: 1, UUID: "GPU-aaaa-2222"},
		{Index: 3, UUID: "GPU-bbbb-3333"}, // index 2 not permitted
	}
	for _, tc := range []struct {
		entries  []string
		wantIdx  []int
		wantRest []string
	}{
		{[]string{"3", "0"}, []int{2, 0}, nil},
		{[]string{"GPU-bbbb-3333", "GPU-aaaa-2"}, []int{2, 1}, nil}, // UUID and unique prefix
		{[]string{"1", "GPU-aaaa", "0"}, []int{1}, []string{"GPU-aaaa", "0"}},
		{[]string{"0", "2", "1"}, []int{0}, []string{"2", "1"}},
		{[]string{"0", "0", "GPU-aaaa-1111"}, []int{0}, nil},
		{[]string{"MIG-x"}, nil, []string{"MIG-x"}},
	} {
		idx, rest := pick(all, tc.entries)
		if !slices.Equal(idx, tc.wantIdx) || !slices.Equal(rest, tc.wantRest) {
			t.Errorf("pick(%q) = %v, %q; want %v, %q", tc.entries, idx, rest, tc.wantIdx, tc.wantRest)
		}
	}
}

// noNVML is a library path that cannot exist, so tests see a node without
// NVML wherever they run.
const noNVML = "/nonexistent/raygo/libnvidia-ml.so.1"

func TestDetectGPUsWithoutNVML(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(string) (string, bool)
		want []GPU
	}{
		{"unset", env(), nil},
		{"empty", env(visibleEnv, ""), nil},
		{"NoDevFiles", env(visibleEnv, "NoDevFiles"), nil},
		{"minus one", env(visibleEnv, "-1"), nil},
		{"slurm indices", env(visibleEnv, "2,3"), []GPU{{Index: 2}, {Index: 3}}},
		{"uuid", env(visibleEnv, "GPU-abc,0"), []GPU{{Index: -1, UUID: "GPU-abc"}, {Index: 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DetectGPUs(Options{NVMLPath: noNVML, Env: tc.env})
			if err != nil {
				t.Fatalf("DetectGPUs: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DetectGPUs = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGPUID(t *testing.T) {
	if got := (GPU{Index: 2}).ID(); got != "2" {
		t.Errorf("ID = %q, want 2", got)
	}
	if got := (GPU{Index: 2, UUID: "GPU-x"}).ID(); got != "GPU-x" {
		t.Errorf("ID = %q, want GPU-x", got)
	}
}
