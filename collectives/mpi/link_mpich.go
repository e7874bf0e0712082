//go:build mpi && mpich

package mpi

// MPICH, through its pkg-config name.

// #cgo pkg-config: mpich
import "C"
