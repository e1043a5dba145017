//go:build ccore && cgo

package main

// The process test builds the binary with the engine of its own build.
func init() { buildTags = "ccore" }
