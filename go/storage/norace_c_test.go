//go:build ccore && cgo && !race

package storage

const raceEnabled = false
