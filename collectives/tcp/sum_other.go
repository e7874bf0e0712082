//go:build !amd64

package tcp

import "github.com/raygo/raygo/collectives/backend"

func vectorSum(dt backend.DType, dst, src []byte) int { return 0 }
