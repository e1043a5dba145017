// Package benchmark is the mantisdb command's benchmark harness: the suites
// (sequential and random writes, reads, high throughput, memory pressure,
// concurrent operations, YCSB A-F, prefix scans, Zipf reads through a cache),
// run on our engines and on the Go libraries users would pick instead, each
// through a small Store adapter, with every read checked. It measures ops/s,
// latency percentiles (log-linear histograms, histogram.go), Go heap, RSS and GC, and writes a
// table, results.json, report.md and charts.
//
// Both mantisdb commands are Main: go/cmd/mantisdb with our engines and
// sync.Map, bench/cmd/mantisdb with the peers of the bench module registered
// as extra Registrations.
package benchmark

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Main runs the mantisdb command with args (without the program name), with
// the built-in engines and extra registered, and returns the exit status: 0
// when every suite passed its checks, 1 when a check failed, an engine
// returned an error or the outputs could not be written, 2 for a bad command
// line.
func Main(args []string, extra ...Registration) int {
	return mainIO(args, os.Stdout, os.Stderr, isTerminal(os.Stdout), extra)
}

func mainIO(args []string, stdout, stderr io.Writer, terminal bool, extra []Registration) int {
	regs, err := Registered(extra...)
	if err != nil {
		fmt.Fprintln(stderr, "mantisdb:", err)
		return 2
	}
	usageRegs, usageSuites = regs, Suites
	cfg, err := ParseArgs(args, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "mantisdb: %v\nrun mantisdb --help for the options\n", err)
		return 2
	}
	if cfg.Help {
		return 0
	}
	if !cfg.BenchmarkOnly {
		fmt.Fprintln(stderr, "mantisdb: benchmark.Main runs only with --benchmark-only (the command serves otherwise: see go/cli)")
		return 2
	}
	regs, err = filterRegs(regs, cfg.Engines)
	if err != nil {
		fmt.Fprintln(stderr, "mantisdb:", err)
		return 2
	}
	suites := Suites
	if cfg.Suites != nil {
		suites = nil
		seen := map[*Suite]bool{}
		for _, n := range cfg.Suites {
			group := []*Suite{LookupSuite(n)}
			switch n {
			case "memory", "durable":
				group = nil
				for _, s := range Suites {
					if s.Durable == (n == "durable") {
						group = append(group, s)
					}
				}
			}
			if len(group) == 0 || group[0] == nil {
				fmt.Fprintf(stderr, "mantisdb: unknown suite %q (see --help)\n", n)
				return 2
			}
			for _, s := range group {
				if !seen[s] {
					seen[s] = true
					suites = append(suites, s)
				}
			}
		}
	}
	type pair struct {
		s   *Suite
		reg Registration
	}
	var pairs []pair
	var ran []*Suite
	for _, s := range suites {
		n := len(pairs)
		for _, r := range regs {
			if r.Fits(s) {
				pairs = append(pairs, pair{s, r})
			}
		}
		if len(pairs) > n {
			ran = append(ran, s)
		}
	}
	if len(pairs) == 0 {
		fmt.Fprintln(stderr, "mantisdb: none of the chosen suites fits the chosen engines")
		return 2
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "mantisdb:", err)
		return 1
	}

	rep := &Report{
		Tool: "mantisdb --benchmark-only", Args: args, Stress: cfg.Stress.Name, Started: time.Now(),
		DurationPerSuiteNs: cfg.Duration.Nanoseconds(), Workers: cfg.Workers, Keys: cfg.Keys,
		LargeKeys: cfg.LargeKeys, Seed: cfg.Seed, Machine: readMachine(), suites: ran, regs: regs,
	}
	for _, r := range regs {
		rep.Engines = append(rep.Engines, EngineInfo{r.Name, r.About, r.Peer, r.Ordered, r.Lossy})
	}
	fmt.Fprintf(stdout, "mantisdb benchmark: stress %s, %d suite runs (%d suites, %d engines), %s each, %d workers, %d keys\n",
		cfg.Stress.Name, len(pairs), len(ran), len(regs), cfg.Duration, cfg.Workers, cfg.Keys)

	for _, p := range pairs {
		if p.s.Durable {
			fl, err := measureFloor(cfg.DataDir, max(cfg.Duration, time.Second))
			if err != nil {
				fmt.Fprintln(stderr, "mantisdb: measuring the disk's fdatasync rate:", err)
				return 1
			}
			rep.Disk = fl
			break
		}
	}

	var bar *progress
	if cfg.Progress == "on" || (cfg.Progress == "auto" && terminal) {
		bar = newProgress(stdout, len(pairs))
	}
	rep.OK = true
	for _, p := range pairs {
		res := runOne(cfg, p.s, p.reg, bar.started)
		bar.finished()
		rep.Results = append(rep.Results, res)
		if !res.OK() {
			rep.OK = false
		}
	}
	bar.stop()
	rep.ElapsedNs = time.Since(rep.Started).Nanoseconds()

	writeTable(stdout, rep.Results)
	writeDurableTable(stdout, rep)
	status := 0
	files, err := writeOutputs(cfg.OutDir, rep)
	if err != nil {
		fmt.Fprintln(stderr, "mantisdb: writing the results:", err)
		status = 1
	}
	if len(files) > 0 {
		fmt.Fprintf(stdout, "\nwrote %d files in %s (report.md, results.json, charts)\n", len(files), cfg.OutDir)
	}
	for _, r := range rep.Results {
		if !r.OK() {
			fmt.Fprintf(stderr, "mantisdb: FAILED: %s\n", r.Failure)
			status = 1
		}
	}
	if status == 0 {
		notDurable := ""
		n := 0
		for _, r := range rep.Results {
			if r.NotDurable != "" {
				n++
			}
		}
		if n > 0 {
			notDurable = fmt.Sprintf("; %d of them not durable: their reopen lost acknowledged writes", n)
		}
		fmt.Fprintf(stdout, "every read checked: all %d suite runs passed (%s%s)\n", len(rep.Results),
			time.Duration(rep.ElapsedNs).Round(100*time.Millisecond), notDurable)
	}
	return status
}
