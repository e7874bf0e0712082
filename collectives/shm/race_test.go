//go:build race

package shm

// raceEnabled trims the slowest tests under the race detector, which runs
// them about ten times slower.
const raceEnabled = true
