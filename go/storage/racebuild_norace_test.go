//go:build !race

package storage

// raceBuild: allocation counts are not exact under the race detector.
const raceBuild = false
