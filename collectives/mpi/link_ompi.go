//go:build mpi && !mpich

package mpi

// Open MPI, through Debian's pkg-config name for it. ("mpi" and "mpi-c"
// are alternatives that point at whichever MPI was installed last.)

// #cgo pkg-config: ompi
import "C"
