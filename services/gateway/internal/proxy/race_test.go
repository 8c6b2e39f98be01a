//go:build race

package proxy

// raceEnabled: the race detector adds allocations of its own, so the
// allocation budget is not checked under -race.
const raceEnabled = true
