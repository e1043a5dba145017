package benchmark

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Stress is a named size of run: how many keys, how many workers and how long
// each suite runs on each engine.
type Stress struct {
	Name string
	// Keys is the size of the key space of the suites (a multiple of 100,
	// so that the scan suites see whole groups of 100 keys).
	Keys int
	// LargeKeys is the key space of the memory-pressure suite, whose
	// values are 16-64 KiB.
	LargeKeys int
	// WorkersPerCPU multiplies GOMAXPROCS to give the default number of
	// workers of a suite (high-throughput uses 4 times as many).
	WorkersPerCPU int
	// Duration is how long each suite is measured on each engine.
	Duration time.Duration
	// About is the line printed by --help.
	About string
	// RecoveryBytes is the live data of the recovery suite's database.
	RecoveryBytes int64
}

// StressLevels are the levels --benchmark-stress accepts, lightest first.
var StressLevels = []Stress{
	{"light", 20_000, 400, 1, 250 * time.Millisecond,
		"20k keys, 1 worker per CPU, 0.25 s per suite and engine, a 16 MiB database to reopen: the whole run in about two minutes on 2 cores",
		16 << 20},
	{"medium", 200_000, 2_000, 1, 2 * time.Second,
		"200k keys, 1 worker per CPU, 2 s per suite and engine, a 128 MiB database to reopen: a few minutes",
		128 << 20},
	{"heavy", 1_000_000, 8_000, 2, 5 * time.Second,
		"1M keys, 2 workers per CPU, 5 s per suite and engine, a 1 GiB database to reopen",
		1 << 30},
	{"extreme", 10_000_000, 32_000, 4, 10 * time.Second,
		"10M keys, 4 workers per CPU, 10 s per suite and engine, a 1 GiB database to reopen: for large machines (tens of GB of RAM)",
		1 << 30},
}

// LookupStress returns the level called name.
func LookupStress(name string) (Stress, bool) {
	for _, s := range StressLevels {
		if s.Name == name {
			return s, true
		}
	}
	return Stress{}, false
}

// Config is a parsed command line.
type Config struct {
	BenchmarkOnly bool
	Stress        Stress
	// Engines are the names given to --engines; nil means every
	// registered engine and peer.
	Engines []string
	// Suites are the names given to --suites; nil means every suite.
	Suites []string
	OutDir string
	// Duration, Workers and Keys are the effective values: the stress
	// level's unless overridden on the command line.
	Duration time.Duration
	Workers  int
	Keys     int
	// DurationSet is true when --duration was given: it then applies to
	// every suite, even those with a longer Suite.MinDuration.
	DurationSet bool
	// LargeKeys is the memory-pressure suite's key space.
	LargeKeys int
	// Progress is "auto" (a bar when stdout is a terminal), "on" or "off".
	Progress string
	// Seed seeds every worker's random generator (worker i uses Seed+i).
	Seed uint64
	// DataDir is where the durable suites make their temporary data
	// directories ("": the system's temporary directory).
	DataDir string
	// RecoveryBytes is the live data of the recovery suite's database.
	RecoveryBytes int64
	// Help is set when --help was given (usage has been printed).
	Help bool
}

// errUsage marks command-line errors (exit status 2).
var errUsage = errors.New("usage")

// ParseArgs parses the command line (without the program name). With --help
// it writes the usage to out and returns a Config whose Help is set and a nil
// error. Errors wrap errUsage and say what is wrong.
func ParseArgs(args []string, out io.Writer) (Config, error) {
	var (
		cfg      Config
		stress   string
		engines  string
		suites   string
		duration time.Duration
		workers  int
		keys     int
	)
	fs := flag.NewFlagSet("mantisdb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&cfg.BenchmarkOnly, "benchmark-only", false,
		"run the benchmark suites and exit instead of serving")
	fs.StringVar(&stress, "benchmark-stress", "light",
		"stress `LEVEL`: "+stressNames()+" (see below)")
	fs.StringVar(&engines, "engines", "",
		"comma-separated `LIST` of engines and peers to measure (default: every one of this build, listed below)")
	fs.StringVar(&suites, "suites", "",
		"comma-separated `LIST` of suites to run, or the groups memory (the in-memory suites) and durable "+
			"(default: every suite, listed below)")
	fs.StringVar(&cfg.OutDir, "out", "bench-results",
		"`DIR` to write results.json, report.md and the charts into (created if missing)")
	fs.DurationVar(&duration, "duration", 0,
		"how long each suite runs on each engine, a `DURATION` like 500ms or 3s (default: the stress level's)")
	fs.IntVar(&workers, "workers", 0,
		"`N` goroutines per suite (default: the stress level's workers per CPU x GOMAXPROCS; high-throughput uses 4x)")
	fs.IntVar(&keys, "keys", 0,
		"`N` keys in the suites' key space, rounded up to a multiple of 100 (default: the stress level's)")
	fs.StringVar(&cfg.Progress, "progress", "auto",
		"progress bar `MODE`: auto (only when stdout is a terminal), on or off")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "`SEED` of the workers' random generators")
	fs.StringVar(&cfg.DataDir, "data-dir", "",
		"`DIR` in which the durable suites make a temporary data directory per run, removed after it "+
			"(default: the system's temporary directory; it must be on the disk to measure, not tmpfs)")
	var recoveryMiB int64
	fs.Int64Var(&recoveryMiB, "recovery-mib", 0,
		"`MIB` of live data in the recovery suite's database (default: the stress level's; 1024 for the full 1 GiB)")
	var help bool
	fs.BoolVar(&help, "help", false, "print this help and exit")
	fs.BoolVar(&help, "h", false, "print this help and exit")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help = true
		} else {
			return cfg, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if help {
		cfg.Help = true
		printUsage(out, fs)
		return cfg, nil
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	st, ok := LookupStress(stress)
	if !ok {
		return cfg, fmt.Errorf("%w: --benchmark-stress=%q: want one of %s", errUsage, stress, stressNames())
	}
	cfg.Stress = st
	cfg.Engines = splitList(engines)
	cfg.Suites = splitList(suites)
	if duration < 0 || workers < 0 || keys < 0 || recoveryMiB < 0 {
		return cfg, fmt.Errorf("%w: --duration, --workers, --keys and --recovery-mib must not be negative", errUsage)
	}
	cfg.RecoveryBytes = st.RecoveryBytes
	if recoveryMiB > 0 {
		cfg.RecoveryBytes = recoveryMiB << 20
	}
	cfg.Duration = st.Duration
	if duration > 0 {
		cfg.Duration, cfg.DurationSet = duration, true
	}
	cfg.Workers = st.WorkersPerCPU * runtime.GOMAXPROCS(0)
	if workers > 0 {
		cfg.Workers = workers
	}
	cfg.Keys = st.Keys
	cfg.LargeKeys = st.LargeKeys
	if keys > 0 {
		cfg.Keys = (keys + 99) / 100 * 100
		cfg.LargeKeys = min(cfg.LargeKeys, cfg.Keys)
	}
	switch cfg.Progress {
	case "auto", "on", "off":
	default:
		return cfg, fmt.Errorf("%w: --progress=%q: want auto, on or off", errUsage, cfg.Progress)
	}
	if cfg.OutDir == "" {
		return cfg, fmt.Errorf("%w: --out must not be empty", errUsage)
	}
	cfg.OutDir = filepath.Clean(cfg.OutDir)
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func stressNames() string {
	names := make([]string, len(StressLevels))
	for i, s := range StressLevels {
		names[i] = s.Name
	}
	return strings.Join(names, "|")
}

// usageRegs and usageSuites are filled in by Main before parsing so that
// --help lists what this build can run.
var (
	usageRegs   []Registration
	usageSuites []*Suite
)

func printUsage(out io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(out, `mantisdb: the MantisDB storage engines measured side by side with the Go
libraries a user would pick instead, on the same suites, in one run.

Usage:
  mantisdb --benchmark-only [--benchmark-stress=LEVEL] [--engines=a,b] [--suites=x,y]
           [--out=DIR] [--duration=D] [--workers=N] [--keys=N]

Every suite verifies what it reads: a read of a key the suite wrote must return
the value written. Any failed check or engine error fails the run (exit status 1).
Results: a table on stdout, and DIR/results.json, DIR/report.md,
DIR/throughput.svg and DIR/latency.svg.

Options:
`)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "h" {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += "=" + strings.ToUpper(name)
		}
		fmt.Fprintf(out, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
	fmt.Fprintln(out, "\nStress levels:")
	for _, s := range StressLevels {
		fmt.Fprintf(out, "  %-8s %s\n", s.Name, s.About)
	}
	if len(usageRegs) > 0 {
		fmt.Fprintln(out, "\nEngines and peers of this build:")
		for _, r := range usageRegs {
			fmt.Fprintf(out, "  %-10s %s\n", r.Name, r.About)
		}
	}
	if len(usageSuites) > 0 {
		fmt.Fprintln(out, "\nSuites:")
		for _, s := range usageSuites {
			fmt.Fprintf(out, "  %-16s %s\n", s.Name, s.Title)
		}
	}
}
