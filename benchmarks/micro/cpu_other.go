//go:build !linux

package micro

import "time"

// treeCPU is measured on Linux only.
func treeCPU() (time.Duration, bool) { return 0, false }
