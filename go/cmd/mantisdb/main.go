// Command mantisdb serves MantisDB's HTTP API over the engine of this build
// (the pure-Go engine; the C engine with -tags ccore), and with
// --benchmark-only runs the benchmark suites on our engines and the standard
// library's sync.Map. The peers (xsync, a B-tree, otter, ristretto) are in
// the bench module's mantisdb command (bench/cmd/mantisdb), so that users of
// this module do not inherit their dependencies. See go/cli.
//
//	mantisdb --data-dir ./data --port 8080
//	mantisdb --benchmark-only --benchmark-stress=light
//	mantisdb --help
package main

import (
	"os"

	"github.com/mantisdb/mantisdb/go/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
