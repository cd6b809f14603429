//go:build race

package tests

// raceEnabled reports a test binary built with -race.
const raceEnabled = true
