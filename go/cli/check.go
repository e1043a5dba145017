package cli

// mantisdb check --data-dir DIR: verifies a closed durable database offline
// (storage.CheckDir: every checksum, the checkpoint's entries, the log's
// continuity), prints the report and exits 0 if it is sound, 1 if it is
// corrupt, locked or unreadable, 2 for a bad command line (as `bbolt check`).

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mantisdb/mantisdb/go/storage"
)

func init() { Register("check", "verify a closed data directory offline", runCheck) }

func runCheck(args []string) int { return check(args, os.Stdout, os.Stderr) }

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mantisdb check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "the data directory to verify (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: mantisdb check --data-dir DIR")
		return 2
	}
	report, err := storage.CheckDir(*dir)
	fmt.Fprint(stdout, report)
	if err != nil {
		fmt.Fprintf(stderr, "mantisdb check: FAILED: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}
