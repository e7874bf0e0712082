//go:build !linux

package resources

import "runtime"

// affinityCPUs counts the logical CPUs this process may use.
func affinityCPUs() int {
	return runtime.NumCPU()
}
