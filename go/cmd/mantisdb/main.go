// Command mantisdb runs the MantisDB benchmark suites on the engines of this
// build (the pure-Go engine; the C engine too when built with -tags ccore)
// and the standard library's sync.Map. The peers (xsync, a B-tree, otter,
// ristretto) are in the bench module's mantisdb command (bench/cmd/mantisdb),
// so that users of this module do not inherit their dependencies.
//
//	mantisdb --benchmark-only --benchmark-stress=light
//	mantisdb --help
package main

import (
	"os"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

func main() {
	os.Exit(benchmark.Main(os.Args[1:]))
}
