//go:build linux && cgo

package resources

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/dl"
	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlMu serialises every use of go-nvml: loading a library rewrites its
// package-level symbol table and error-string function.
var nvmlMu sync.Mutex

// nvmlGPUs loads the NVML library at path and lists the devices vis
// selects. loaded is false, with no error, when the library cannot be
// opened or finds no driver.
func nvmlGPUs(path string, vis visibility) (gpus []GPU, loaded bool, err error) {
	nvmlMu.Lock()
	defer nvmlMu.Unlock()

	ok, err := probeNVML(path)
	if !ok || err != nil {
		return nil, false, err
	}
	lib := nvml.New(nvml.WithLibraryPath(path))
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, false, nil
	default:
		return nil, false, nvmlErr("Init", "", ret)
	}
	// A failed Shutdown leaves nothing for the caller to do, and the
	// devices were listed; ignore it.
	defer lib.Shutdown()
	gpus, err = listNVML(lib, vis)
	return gpus, true, err
}

// probeNVML opens the library at path on its own to check that it is NVML
// before go-nvml uses it: go-nvml calls NVML's symbols directly, and a
// library without them would end the process with a symbol lookup error
// rather than return one. ok is false when the library cannot be opened.
func probeNVML(path string) (ok bool, err error) {
	lib := dl.New(path, dl.RTLD_LAZY|dl.RTLD_LOCAL)
	if err := lib.Open(); err != nil {
		return false, nil
	}
	defer lib.Close()
	// nvmlInit (v1) and nvmlShutdown are exported by every NVML release.
	for _, sym := range []string{"nvmlInit", "nvmlShutdown"} {
		if err := lib.Lookup(sym); err != nil {
			return false, fmt.Errorf("%w: %s lacks %s", ErrNotNVML, path, sym)
		}
	}
	return true, nil
}

// listNVML lists the devices of an initialised NVML that vis selects,
// in CUDA order. Tests pass a fake lib.
func listNVML(lib nvml.Interface, vis visibility) ([]GPU, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("DeviceGetCount", "", ret)
	}
	var all []GPU
	var handles []nvml.Device
	for i := range n {
		id := strconv.Itoa(i)
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret == nvml.ERROR_NO_PERMISSION {
			continue // a device cgroup keeps this process off the device
		}
		if ret != nvml.SUCCESS {
			return nil, nvmlErr("DeviceGetHandleByIndex", id, ret)
		}
		uuid, ret := h.GetUUID()
		if ret != nvml.SUCCESS {
			return nil, nvmlErr("DeviceGetUUID", id, ret)
		}
		all = append(all, GPU{Index: i, UUID: uuid})
		handles = append(handles, h)
	}

	if !vis.set {
		for i := range all {
			if err := describe(handles[i], &all[i]); err != nil {
				return nil, err
			}
		}
		return all, nil
	}

	var gpus []GPU
	seen := map[string]bool{}
	add := func(g GPU) {
		if !seen[g.ID()] {
			seen[g.ID()] = true
			gpus = append(gpus, g)
		}
	}
	for entries := vis.entries; len(entries) > 0; {
		idx, rest := pick(all, entries)
		for _, i := range idx {
			g := all[i]
			if err := describe(handles[i], &g); err != nil {
				return nil, err
			}
			add(g)
		}
		if len(rest) == 0 {
			break
		}
		g, found, err := byUUID(lib, rest[0])
		if err != nil || !found {
			return gpus, err
		}
		add(g)
		entries = rest[1:]
	}
	return gpus, nil
}

// byUUID looks up a device that enumeration by index does not list, such as
// a MIG instance, by its full UUID. found is false if NVML knows no such
// device.
func byUUID(lib nvml.Interface, uuid string) (g GPU, found bool, err error) {
	if _, isIndex := entryIndex(uuid); isIndex {
		return GPU{}, false, nil
	}
	h, ret := lib.DeviceGetHandleByUUID(uuid)
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_NOT_FOUND, nvml.ERROR_INVALID_ARGUMENT:
		return GPU{}, false, nil
	default:
		return GPU{}, false, nvmlErr("DeviceGetHandleByUUID", uuid, ret)
	}
	g = GPU{Index: -1, UUID: uuid}
	// A MIG instance takes the index of the GPU that holds it.
	indexed := h
	if parent, ret := h.GetDeviceHandleFromMigDeviceHandle(); ret == nvml.SUCCESS {
		indexed = parent
	}
	if i, ret := indexed.GetIndex(); ret == nvml.SUCCESS {
		g.Index = i
	}
	if err := describe(h, &g); err != nil {
		return GPU{}, false, err
	}
	return g, true, nil
}

// describe fills in g's name and memory from h.
func describe(h nvml.Device, g *GPU) error {
	name, ret := h.GetName()
	if ret != nvml.SUCCESS {
		return nvmlErr("DeviceGetName", g.ID(), ret)
	}
	g.Name = name
	m, ret := h.GetMemoryInfo()
	switch ret {
	case nvml.SUCCESS:
		g.MemoryBytes = m.Total
	case nvml.ERROR_NOT_SUPPORTED:
		// Devices that share memory with the host (GB10) report none.
	default:
		return nvmlErr("DeviceGetMemoryInfo", g.ID(), ret)
	}
	return nil
}

// nvmlErr converts an NVML return code at the boundary. It must run while
// the library is loaded and nvmlMu held: ret.Error asks the library.
func nvmlErr(call, device string, ret nvml.Return) error {
	return &NVMLError{Call: call, Device: device, Code: int(ret), Msg: ret.Error()}
}
