// Package cli is the mantisdb command: both builds of it (go/cmd/mantisdb
// and bench/cmd/mantisdb, which adds the peers' benchmark registrations) are
// one call to Main.
//
// Main dispatches, in this order:
//
//   - a registered subcommand named by the first argument ("mantisdb check
//     --data-dir DIR"): subcommands live in their own files of this package
//     and register themselves from init with Register;
//   - --benchmark-only anywhere on the line: the benchmark harness,
//     benchmark.Main, with the registrations given to Main;
//   - --help or -h: the server's usage, the subcommands, then the
//     benchmark's usage;
//   - anything else: the server (go/server), until SIGTERM or SIGINT.
//
// Adding a subcommand (one file per subcommand, named after it):
//
//	func init() { Register("check", "verify a data directory offline", runCheck) }
//	func runCheck(args []string) int { ... } // args exclude "check"; returns the exit status
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/mantisdb/mantisdb/go/benchmark"
	"github.com/mantisdb/mantisdb/go/server"
)

// subcommands holds the registered subcommands by name: each gets the
// arguments after its name and returns the exit status. Register (or an
// init that assigns to it directly) fills it before Main runs.
var subcommands = map[string]func(args []string) int{}

// subcommandAbout holds the one-line description --help prints.
var subcommandAbout = map[string]string{}

// Register adds a subcommand; run gets the arguments after its name and
// returns the exit status. It panics on a duplicate or reserved name (a
// programming error, found at start).
func Register(name, about string, run func(args []string) int) {
	if name == "" || strings.HasPrefix(name, "-") {
		panic("cli: bad subcommand name " + strconv.Quote(name))
	}
	if _, dup := subcommands[name]; dup {
		panic("cli: subcommand " + name + " registered twice")
	}
	subcommands[name] = run
	subcommandAbout[name] = about
}

// Main runs the mantisdb command with args (without the program name) and
// returns its exit status: 0 after a clean run (a server stopped by SIGTERM
// or SIGINT included), 1 on failure, 2 for a bad command line. regs are
// extra benchmark registrations (the peers) for --benchmark-only.
func Main(args []string, regs ...benchmark.Registration) int {
	return mainIO(args, os.Stdout, os.Stderr, os.Getenv, regs)
}

func mainIO(args []string, stdout, stderr io.Writer, getenv func(string) string, regs []benchmark.Registration) int {
	if len(args) > 0 {
		if run, ok := subcommands[args[0]]; ok {
			return run(args[1:])
		}
	}
	bench, help := scanFlags(args)
	if bench {
		return benchmark.Main(args, regs...)
	}
	if help {
		printHelp(stdout)
		return benchmark.Main([]string{"--help"}, regs...)
	}
	cfg, err := server.ParseConfig(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "mantisdb: %v\nrun mantisdb --help for the options\n", trimUsage(err))
		return 2
	}
	log := newLogger(stderr, cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := server.Run(ctx, cfg, log); err != nil {
		log.Error("mantisdb: " + err.Error())
		return 1
	}
	log.Info("mantisdb stopped cleanly")
	return 0
}

func trimUsage(err error) string {
	return strings.TrimPrefix(err.Error(), server.ErrUsage.Error()+": ")
}

// scanFlags reports whether the command line asks for the benchmark
// (--benchmark-only, true unless given =false) or for help, before "--".
func scanFlags(args []string) (bench, help bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		switch name {
		case "benchmark-only":
			b := true
			if hasVal {
				if v, err := strconv.ParseBool(val); err == nil {
					b = v
				}
			}
			bench = b
		case "help", "h":
			help = true
		}
	}
	return bench, help
}

func newLogger(w io.Writer, cfg server.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func printHelp(out io.Writer) {
	fmt.Fprint(out, `mantisdb: the MantisDB key-value server, and its benchmark.

  mantisdb [flags]                    serve MantisDB's HTTP API (docs/server.md)
  mantisdb --benchmark-only [flags]   run the benchmark suites (below)
  mantisdb SUBCOMMAND [args]          see the subcommands below

The server listens on 127.0.0.1:8080 unless told otherwise, and stops
cleanly on SIGTERM or SIGINT (requests in flight finish, the engine is
closed). Each flag can also be set by its environment variable; a flag wins.

Server flags:
`)
	server.PrintUsage(out)
	if len(subcommands) > 0 {
		fmt.Fprint(out, "\nSubcommands:\n")
		names := make([]string, 0, len(subcommands))
		for n := range subcommands {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(out, "  %-12s %s\n", n, subcommandAbout[n])
		}
	}
	fmt.Fprint(out, "\nBenchmark mode (--benchmark-only):\n\n")
}
