// Command mantisdb is go/cmd/mantisdb with the peers registered for
// --benchmark-only: it runs the MantisDB benchmark suites on our engines (c
// with -tags ccore, purego), the standard library's sync.Map, xsync, a
// B-tree behind a RWMutex, otter and ristretto, in one run; without
// --benchmark-only it serves the HTTP API like go/cmd/mantisdb. `make run`
// builds it with -tags ccore and runs the light stress level.
//
//	mantisdb --benchmark-only --benchmark-stress=light
//	mantisdb --help
package main

import (
	"os"

	"github.com/mantisdb/mantisdb/bench/peers"
	"github.com/mantisdb/mantisdb/go/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], peers.Registrations()...))
}
