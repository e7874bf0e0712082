//go:build !amd64

package backend

func vectorSum(dt DType, dst, src []byte) int { return 0 }
