//go:build !mpi

package main

// Built without the mpi tag, the mpi backend is a stand-in that moves the
// data with the tcp backend.
import _ "github.com/raygo/raygo/collectives/tcp"
