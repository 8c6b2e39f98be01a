//go:build race

package usage

// raceEnabled: the race detector adds allocations of its own.
const raceEnabled = true
