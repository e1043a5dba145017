// Command mantisdb is go/cmd/mantisdb with the peers registered: it runs the
// MantisDB benchmark suites on our engines (c with -tags ccore, purego), the
// standard library's sync.Map, xsync, a B-tree behind a RWMutex, otter and
// ristretto, in one run. `make run` builds it with -tags ccore and runs the
// light stress level.
//
//	mantisdb --benchmark-only --benchmark-stress=light
//	mantisdb --help
package main

import (
	"os"

	"github.com/mantisdb/mantisdb/bench/peers"
	"github.com/mantisdb/mantisdb/go/benchmark"
)

func main() {
	os.Exit(benchmark.Main(os.Args[1:], peers.Registrations()...))
}
