//go:build !(linux && cgo)

package resources

// nvmlGPUs stands in for NVML where go-nvml cannot build (not Linux, or
// cgo off): the library is never loaded, so GPUs come from
// CUDA_VISIBLE_DEVICES alone.
func nvmlGPUs(path string, vis visibility) (gpus []GPU, loaded bool, err error) {
	return nil, false, nil
}
