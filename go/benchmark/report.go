package benchmark

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// EngineInfo describes an engine of the run in results.json.
type EngineInfo struct {
	Name    string `json:"name"`
	About   string `json:"about"`
	Peer    bool   `json:"peer"`
	Ordered bool   `json:"ordered"`
	Lossy   bool   `json:"lossy"`
}

// Report is results.json.
type Report struct {
	Tool               string       `json:"tool"`
	Args               []string     `json:"args"`
	Stress             string       `json:"stress"`
	Started            time.Time    `json:"started"`
	ElapsedNs          int64        `json:"elapsed_ns"`
	DurationPerSuiteNs int64        `json:"duration_per_suite_ns"`
	Workers            int          `json:"workers"`
	Keys               int          `json:"keys"`
	LargeKeys          int          `json:"large_keys"`
	Seed               uint64       `json:"seed"`
	Machine            Machine      `json:"machine"`
	Engines            []EngineInfo `json:"engines"`
	// Disk is the fdatasync floor, measured when durable suites ran.
	Disk    *DiskFloor `json:"disk,omitempty"`
	OK      bool       `json:"ok"`
	Results []*Result  `json:"results"`
	suites  []*Suite   // the suites run, in order
	regs    []Registration
}

func humanCount(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3) + "k"
	default:
		return trimFloat(v)
	}
}

func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func humanNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return trimFloat(ns/1e9) + "s"
	case ns >= 1e6:
		return trimFloat(ns/1e6) + "ms"
	case ns >= 1e3:
		return trimFloat(ns/1e3) + "µs"
	default:
		return fmt.Sprintf("%.0fns", ns)
	}
}

func humanBytes(b int64) string {
	neg := ""
	if b < 0 {
		neg, b = "-", -b
	}
	f := float64(b)
	switch {
	case f >= 1<<30:
		return neg + trimFloat(f/(1<<30)) + "GiB"
	case f >= 1<<20:
		return neg + trimFloat(f/(1<<20)) + "MiB"
	case f >= 1<<10:
		return neg + trimFloat(f/(1<<10)) + "KiB"
	default:
		return fmt.Sprintf("%s%dB", neg, b)
	}
}

func hitRatio(r *Result) string {
	if r.Reads == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*r.HitRatio)
}

// hitRatios adds the engine's own cache hit ratio, where it has one.
func hitRatios(r *Result) string {
	s := hitRatio(r)
	if r.EngineCacheHitRatio >= 0 {
		s += fmt.Sprintf(" (cache %.1f%%)", 100*r.EngineCacheHitRatio)
	}
	return s
}

func status(r *Result) string {
	if r.OK() {
		return "ok"
	}
	return "FAILED"
}

// writeTable prints the results as a table.
func writeTable(w io.Writer, results []*Result) {
	any := false
	for _, r := range results {
		any = any || !r.Durable
	}
	if !any {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "suite\tengine\tworkers\tops/s\tp50\tp95\tp99\tp99.9\tmax\thits\theap\tΔRSS\tGCs\tGC pause\tGC CPU\tcheck\t")
	prev := ""
	for _, r := range results {
		if r.Durable {
			continue // in the durable table
		}
		suite := r.Suite
		if suite == prev {
			suite = ""
		}
		prev = r.Suite
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n",
			suite, r.Engine, r.Workers, humanCount(r.OpsPerSec),
			humanNs(float64(r.P50Ns)), humanNs(float64(r.P95Ns)), humanNs(float64(r.P99Ns)),
			humanNs(float64(r.P999Ns)), humanNs(float64(r.MaxNs)), hitRatio(r),
			humanBytes(r.HeapBytes), humanBytes(r.RSSDeltaBytes), r.GCCount,
			humanNs(float64(r.GCPauseNs)), humanNs(r.GCCPUSeconds*1e9), status(r))
	}
	tw.Flush()
}

// writeJSON writes results.json.
func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// suiteWinners returns, for one suite's results, the fastest of ours and the
// fastest peer (nil if none ran or all failed).
func suiteWinners(rs []*Result) (ours, peer *Result) {
	for _, r := range rs {
		if !r.OK() || r.NotDurable != "" {
			continue
		}
		if r.Peer {
			if peer == nil || r.OpsPerSec > peer.OpsPerSec {
				peer = r
			}
		} else if ours == nil || r.OpsPerSec > ours.OpsPerSec {
			ours = r
		}
	}
	return ours, peer
}

// writeMarkdown writes report.md.
func writeMarkdown(path string, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# MantisDB benchmark report\n\n")
	fmt.Fprintf(&b, "`mantisdb %s`, started %s, took %s.\n\n", strings.Join(rep.Args, " "),
		rep.Started.Format(time.RFC3339), time.Duration(rep.ElapsedNs).Round(100*time.Millisecond))
	m := rep.Machine
	fmt.Fprintf(&b, "Machine: %s, %d CPUs (GOMAXPROCS %d), %s RAM, %s %s/%s.\n\n",
		orDash(m.CPUModel), m.NumCPU, m.GOMAXPROCS, humanBytes(m.MemTotal), m.GoVersion, m.OS, m.Arch)
	fmt.Fprintf(&b, "Stress level `%s`: each suite ran %s on each engine, with %d workers "+
		"(high-throughput: 4x), over %d keys of 16 bytes with 100-byte values (memory-pressure: %d keys "+
		"of 16-64 KiB). Latencies are per operation (a scan or a read-modify-write is one operation), "+
		"from a log-linear histogram (within 0.1%%). Heap is the live Go heap the store added (after a GC); RSS is the "+
		"process's resident set at the end of the suite and ΔRSS its growth since before the store "+
		"was made. Hits are reads that found the key (for our engines, the engine's own cache hit "+
		"ratio follows in parentheses).\n\n",
		rep.Stress, time.Duration(rep.DurationPerSuiteNs), rep.Workers, rep.Keys, rep.LargeKeys)

	var failed []*Result
	for _, r := range rep.Results {
		if !r.OK() {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(&b, "**Verification: every read of every suite returned the value written (all checks passed).**\n\n")
	} else {
		fmt.Fprintf(&b, "**Verification FAILED on %d suite runs:**\n\n", len(failed))
		for _, r := range failed {
			fmt.Fprintf(&b, "- %s on %s: %d errors, %d failed checks: %s\n", r.Suite, r.Engine, r.Errors,
				r.CheckFailures, r.Failure)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Engines and peers\n\n")
	for _, e := range rep.Engines {
		fmt.Fprintf(&b, "- `%s`: %s\n", e.Name, e.About)
	}
	b.WriteString("\n## Who wins\n\n")
	b.WriteString("| suite | fastest of ours | ops/s | fastest peer | ops/s | ours / peer |\n")
	b.WriteString("|---|---|--:|---|--:|--:|\n")
	var peerWins []string
	memSuites := memorySuites(rep.suites)
	for _, s := range memSuites {
		rs := resultsOf(rep.Results, s.Name)
		if len(rs) == 0 {
			continue
		}
		ours, peer := suiteWinners(rs)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name, nameOf(ours), opsOf(ours),
			nameOf(peer), opsOf(peer), ratioOf(ours, peer))
		if ours != nil && peer != nil && peer.OpsPerSec > ours.OpsPerSec {
			peerWins = append(peerWins, fmt.Sprintf("- **%s**: %s (%s ops/s) beats our fastest, %s (%s ops/s), by %.2fx.",
				s.Name, peer.Engine, humanCount(peer.OpsPerSec), ours.Engine, humanCount(ours.OpsPerSec),
				peer.OpsPerSec/ours.OpsPerSec))
		}
	}
	b.WriteString("\n")
	if len(peerWins) > 0 {
		b.WriteString("Where a peer wins on throughput:\n\n")
		b.WriteString(strings.Join(peerWins, "\n"))
		b.WriteString("\n\n")
	} else {
		b.WriteString("No peer beats our fastest engine on throughput in any suite of this run.\n\n")
	}

	writeDurableMarkdown(&b, rep)

	b.WriteString("## Charts (in-memory suites)\n\n![throughput per suite and engine](throughput.svg)\n\n" +
		"![latency percentiles per suite and engine](latency.svg)\n\n")

	b.WriteString("## Results per suite\n\n")
	for _, s := range memSuites {
		rs := resultsOf(rep.Results, s.Name)
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s: %s\n\n%s\n\n", s.Name, s.Title, s.Description)
		b.WriteString("| engine | workers | ops/s | p50 | p95 | p99 | p99.9 | max | hits | heap | RSS | ΔRSS | GCs | GC pause | GC CPU | check |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		sorted := append([]*Result(nil), rs...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].OpsPerSec > sorted[j].OpsPerSec })
		for _, r := range sorted {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |\n",
				r.Engine, r.Workers, humanCount(r.OpsPerSec), humanNs(float64(r.P50Ns)),
				humanNs(float64(r.P95Ns)), humanNs(float64(r.P99Ns)), humanNs(float64(r.P999Ns)),
				humanNs(float64(r.MaxNs)), hitRatios(r), humanBytes(r.HeapBytes), humanBytes(r.RSSBytes),
				humanBytes(r.RSSDeltaBytes), r.GCCount, humanNs(float64(r.GCPauseNs)),
				humanNs(r.GCCPUSeconds*1e9), status(r))
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func resultsOf(all []*Result, suite string) []*Result {
	var rs []*Result
	for _, r := range all {
		if r.Suite == suite {
			rs = append(rs, r)
		}
	}
	return rs
}

func nameOf(r *Result) string {
	if r == nil {
		return "-"
	}
	return r.Engine
}

func opsOf(r *Result) string {
	if r == nil {
		return "-"
	}
	return humanCount(r.OpsPerSec)
}

func ratioOf(ours, peer *Result) string {
	if ours == nil || peer == nil || peer.OpsPerSec == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", ours.OpsPerSec/peer.OpsPerSec)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeOutputs writes results.json, report.md and the charts into dir.
func writeOutputs(dir string, rep *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := []string{filepath.Join(dir, "results.json"), filepath.Join(dir, "report.md")}
	if err := writeJSON(files[0], rep); err != nil {
		return nil, err
	}
	if err := writeMarkdown(files[1], rep); err != nil {
		return files[:1], err
	}
	// The charts show the in-memory suites: the engines that ran one.
	var engines []string
	for _, e := range rep.Engines {
		for _, r := range rep.Results {
			if r.Engine == e.Name && !r.Durable {
				engines = append(engines, e.Name)
				break
			}
		}
	}
	charts, err := writeCharts(dir, rep.Results, memorySuites(rep.suites), engines)
	return append(files, charts...), err
}

// memorySuites are the suites of ss that are not durable (the durable ones
// have their own table).
func memorySuites(ss []*Suite) []*Suite {
	var out []*Suite
	for _, s := range ss {
		if !s.Durable {
			out = append(out, s)
		}
	}
	return out
}
