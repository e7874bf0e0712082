//go:build linux && cgo

package resources

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// fakeGPU is one device of fakeNVML.
type fakeGPU struct {
	uuid, name string
	mem        uint64
	ret        nvml.Return // returned by DeviceGetHandleByIndex
	memRet     nvml.Return // returned by GetMemoryInfo
	parent     int         // for a MIG instance: the index of its GPU; else -1
}

func (f fakeGPU) device(index int) *mock.Device {
	return &mock.Device{
		GetUUIDFunc: func() (string, nvml.Return) { return f.uuid, nvml.SUCCESS },
		GetNameFunc: func() (string, nvml.Return) { return f.name, nvml.SUCCESS },
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			return nvml.Memory{Total: f.mem}, f.memRet
		},
		GetIndexFunc: func() (int, nvml.Return) {
			if f.parent >= 0 {
				return 0, nvml.ERROR_NOT_SUPPORTED
			}
			return index, nvml.SUCCESS
		},
		GetDeviceHandleFromMigDeviceHandleFunc: func() (nvml.Device, nvml.Return) {
			if f.parent < 0 {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			return &mock.Device{GetIndexFunc: func() (int, nvml.Return) { return f.parent, nvml.SUCCESS }}, nvml.SUCCESS
		},
	}
}

// fakeNVML is an initialised NVML with gpus by index and migs by UUID.
func fakeNVML(gpus []fakeGPU, migs []fakeGPU) *mock.Interface {
	return &mock.Interface{
		DeviceGetCountFunc: func() (int, nvml.Return) { return len(gpus), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(gpus) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			if gpus[i].ret != nvml.SUCCESS {
				return nil, gpus[i].ret
			}
			return gpus[i].device(i), nvml.SUCCESS
		},
		DeviceGetHandleByUUIDFunc: func(uuid string) (nvml.Device, nvml.Return) {
			for _, m := range migs {
				if m.uuid == uuid {
					return m.device(-1), nvml.SUCCESS
				}
			}
			return nil, nvml.ERROR_NOT_FOUND
		},
	}
}

func TestListNVML(t *testing.T) {
	const gib = 1 << 30
	gpus := []fakeGPU{
		{uuid: "GPU-aaaa-0000", name: "NVIDIA H100 80GB HBM3", mem: 80 * gib, parent: -1},
		{uuid: "GPU-aaaa-1111", name: "NVIDIA H100 80GB HBM3", mem: 80 * gib, parent: -1},
		{ret: nvml.ERROR_NO_PERMISSION, parent: -1}, // outside this job's device cgroup
		{uuid: "GPU-bbbb-3333", name: "NVIDIA GB10", memRet: nvml.ERROR_NOT_SUPPORTED, parent: -1},
	}
	migs := []fakeGPU{{uuid: "MIG-cccc", name: "NVIDIA A100-SXM4-40GB MIG 1g.5gb", mem: 5 * gib, parent: 1}}
	lib := fakeNVML(gpus, migs)
	h100 := func(i int) GPU {
		return GPU{Index: i, UUID: gpus[i].uuid, Name: gpus[i].name, MemoryBytes: 80 * gib}
	}
	gb10 := GPU{Index: 3, UUID: "GPU-bbbb-3333", Name: "NVIDIA GB10"}
	mig := GPU{Index: 1, UUID: "MIG-cccc", Name: migs[0].name, MemoryBytes: 5 * gib}

	for _, tc := range []struct {
		name string
		vis  visibility
		want []GPU
	}{
		{"all", visibility{}, []GPU{h100(0), h100(1), gb10}},
		{"by index", visibility{set: true, entries: []string{"3", "0"}}, []GPU{gb10, h100(0)}},
		{"by uuid prefix", visibility{set: true, entries: []string{"GPU-aaaa-1"}}, []GPU{h100(1)}},
		{"stops at unpermitted", visibility{set: true, entries: []string{"1", "2", "0"}}, []GPU{h100(1)}},
		{"stops at unknown", visibility{set: true, entries: []string{"0", "GPU-zzzz", "1"}}, []GPU{h100(0)}},
		{"ambiguous prefix", visibility{set: true, entries: []string{"GPU-aaaa"}}, nil},
		{"mig", visibility{set: true, entries: []string{"MIG-cccc", "0", "MIG-cccc"}}, []GPU{mig, h100(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := listNVML(lib, tc.vis)
			if err != nil {
				t.Fatalf("listNVML: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("listNVML =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

func TestListNVMLErrors(t *testing.T) {
	lost := fakeNVML([]fakeGPU{{uuid: "GPU-0", parent: -1}, {ret: nvml.ERROR_GPU_IS_LOST, parent: -1}}, nil)
	_, err := listNVML(lost, visibility{})
	var ne *NVMLError
	if !errors.As(err, &ne) || ne.Call != "DeviceGetHandleByIndex" || ne.Device != "1" ||
		ne.Code != int(nvml.ERROR_GPU_IS_LOST) {
		t.Errorf("lost GPU: err = %#v, want an *NVMLError for DeviceGetHandleByIndex on device 1", err)
	} else {
		t.Logf("lost GPU: %v", err)
	}

	noCount := &mock.Interface{DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }}
	if _, err := listNVML(noCount, visibility{}); !errors.As(err, &ne) || ne.Call != "DeviceGetCount" || ne.Device != "" {
		t.Errorf("DeviceGetCount failing: err = %v", err)
	}

	badMem := fakeNVML([]fakeGPU{{uuid: "GPU-0", memRet: nvml.ERROR_UNKNOWN, parent: -1}}, nil)
	if _, err := listNVML(badMem, visibility{}); !errors.As(err, &ne) || ne.Call != "DeviceGetMemoryInfo" || ne.Device != "GPU-0" {
		t.Errorf("GetMemoryInfo failing: err = %v", err)
	}
}

func TestNVMLMissingLibrary(t *testing.T) {
	for _, path := range []string{noNVML, filepath.Join(t.TempDir(), "libnvidia-ml.so.1")} {
		gpus, err := DetectGPUs(Options{NVMLPath: path, Env: env()})
		if gpus != nil || err != nil {
			t.Errorf("NVMLPath %s: got %v, %v; want no GPUs and no error", path, gpus, err)
		}
	}
	// A file that is not a shared library at all.
	junk := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	if err := os.WriteFile(junk, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if gpus, err := DetectGPUs(Options{NVMLPath: junk, Env: env()}); gpus != nil || err != nil {
		t.Errorf("junk library: got %v, %v; want no GPUs and no error", gpus, err)
	}
}

func TestNVMLWrongLibrary(t *testing.T) {
	// libc loads but has no NVML symbols; go-nvml would die calling them.
	gpus, err := DetectGPUs(Options{NVMLPath: "libc.so.6", Env: env()})
	if !errors.Is(err, ErrNotNVML) {
		t.Fatalf("DetectGPUs with libc: got %v, %v; want ErrNotNVML", gpus, err)
	}
	t.Logf("libc: %v", err)
}

func TestNVMLConcurrent(t *testing.T) {
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := DetectGPUs(Options{NVMLPath: noNVML, Env: env(visibleEnv, "0")})
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
