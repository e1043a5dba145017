package benchmark

// The durable suites' table and the targets of the durability issue, as
// ratios against anchors measured in the same run (pebble; the disk's own
// fdatasync rate; the same engine's in-memory YCSB C). A result whose reopen
// lost acknowledged writes shows "not durable" in place of its figures, and
// every target it enters says so instead of a ratio.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// durableOps is a durable result's throughput column.
func durableOps(r *Result) string {
	switch {
	case !r.OK():
		return "FAILED"
	case r.NotDurable != "":
		return "not durable"
	case r.Suite == "recovery":
		return "-"
	}
	return humanCount(r.OpsPerSec)
}

func diskPerLive(r *Result) string {
	if r.LiveBytes <= 0 || r.DiskBytes <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(r.DiskBytes)/float64(r.LiveBytes))
}

func reopenTime(r *Result) string {
	if r.ReopenNs <= 0 || r.NotDurable != "" {
		return "-"
	}
	return humanNs(float64(r.ReopenNs))
}

// recoveryRate is the database's bytes on disk per second of reopen.
func recoveryRate(r *Result) float64 {
	if r.ReopenNs <= 0 {
		return 0
	}
	return float64(r.DiskBytes) / (float64(r.ReopenNs) / 1e9)
}

// writeDurableTable prints the durable suites' results, the disk floor and
// the targets; nothing when no durable suite ran.
func writeDurableTable(w io.Writer, rep *Report) {
	var rs []*Result
	for _, r := range rep.Results {
		if r.Durable {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\ndurable suites (a fresh data directory per run; every acknowledged write checked after a reopen)")
	if d := rep.Disk; d != nil {
		fmt.Fprintf(w, "disk floor: 1 writer, 4 KiB write + fdatasync: %s/s (p50 %s, p99 %s, %d syncs) in %s (%s)\n",
			humanCount(d.FdatasyncsPerSec), humanNs(float64(d.P50Ns)), humanNs(float64(d.P99Ns)), d.Count, d.Dir, d.FS)
		if d.FS == "tmpfs" {
			fmt.Fprintln(w, "WARNING: the data directory is on tmpfs: fsync does nothing there; use --data-dir on a disk")
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "suite\tengine\twriters\tops/s\tp50\tp99\tp99.9\treopen\tdisk/live\tRSS\tcheck\t")
	prev := ""
	for _, r := range rs {
		suite := r.Suite
		if suite == prev {
			suite = ""
		}
		prev = r.Suite
		p50, p99, p999 := humanNs(float64(r.P50Ns)), humanNs(float64(r.P99Ns)), humanNs(float64(r.P999Ns))
		if r.NotDurable != "" || r.Suite == "recovery" || !r.OK() {
			p50, p99, p999 = "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", suite, r.Engine, r.Workers,
			durableOps(r), p50, p99, p999, reopenTime(r), diskPerLive(r), humanBytes(r.RSSBytes), status(r))
	}
	tw.Flush()
	for _, r := range rs {
		if r.NotDurable != "" {
			fmt.Fprintf(w, "  not durable: %s on %s: %s\n", r.Suite, r.Engine, r.NotDurable)
		}
	}
	if lines := durableTargets(rep); len(lines) > 0 {
		fmt.Fprintln(w, "\ndurability targets (issue 9), ratios against anchors of this run:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, l := range lines {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}
}

// durableTargets returns one tab-separated line per target and engine of
// ours: what, the target, the figure, and met / missed / why not measured.
func durableTargets(rep *Report) []string {
	find := func(suite, engine string) *Result {
		for _, r := range rep.Results {
			if r.Suite == suite && r.Engine == engine {
				return r
			}
		}
		return nil
	}
	var ours []string
	for _, r := range rep.Results {
		if r.Durable && !r.Peer && !containsStr(ours, r.Engine) {
			ours = append(ours, r.Engine)
		}
	}
	// usable says why r cannot give a figure ("" if it can).
	usable := func(r *Result, name string) string {
		switch {
		case r == nil:
			return name + " did not run"
		case !r.OK():
			return name + " FAILED"
		case r.NotDurable != "":
			return name + " not durable"
		}
		return ""
	}
	var lines []string
	ran := map[string]bool{}
	for _, r := range rep.Results {
		ran[r.Suite] = true
	}
	verdict := func(engine, what, target string, ratio float64, why string, atLeast bool, want float64) {
		got, v := "-", why
		if why == "" {
			got = fmt.Sprintf("%.2fx", ratio)
			if (atLeast && ratio >= want) || (!atLeast && ratio <= want) {
				v = "met"
			} else {
				v = "missed"
			}
		}
		lines = append(lines, fmt.Sprintf("  %s\t%s\t%s\t%s\t%s", engine, what, target, got, v))
	}
	floor := 0.0
	if rep.Disk != nil {
		floor = rep.Disk.FdatasyncsPerSec
	}
	vsPebble := func(e, suite, target string, want float64) {
		a, p := find(suite, e), find(suite, "pebble")
		why := usable(a, e)
		if why == "" {
			why = usable(p, "pebble")
		}
		ratio := 0.0
		if why == "" && p.OpsPerSec > 0 {
			ratio = a.OpsPerSec / p.OpsPerSec
		}
		verdict(e, suite+" / pebble", target, ratio, why, true, want)
	}
	vsFloor := func(e, suite, target string, want float64) {
		a := find(suite, e)
		why := usable(a, e)
		if why == "" && floor <= 0 {
			why = "no disk floor"
		}
		ratio := 0.0
		if why == "" {
			ratio = a.OpsPerSec / floor
		}
		verdict(e, suite+" / fdatasync rate", target, ratio, why, true, want)
	}
	for _, e := range ours {
		// Only the targets of the suites that ran.
		if ran["sync-write-16"] {
			vsPebble(e, "sync-write-16", ">= 1.5x", 1.5)
			vsFloor(e, "sync-write-16", ">= 10x", 10)
		}
		if ran["sync-write-1"] {
			vsFloor(e, "sync-write-1", ">= 0.9x", 0.9)
		}
		if ran["nosync-write"] {
			vsPebble(e, "nosync-write", ">= 2x", 2)
		}
		if ran["durable-ycsb-c"] {
			vsPebble(e, "durable-ycsb-c", ">= 2x", 2)
		}
		if ran["durable-ycsb-c"] {
			a, m := find("durable-ycsb-c", e), find("ycsb-c", e)
			why := usable(a, e)
			if why == "" && (m == nil || !m.OK()) {
				why = "in-memory ycsb-c did not run"
			}
			ratio := 0.0
			if why == "" && m.OpsPerSec > 0 {
				ratio = a.OpsPerSec / m.OpsPerSec
			}
			verdict(e, "durable-ycsb-c / in-memory ycsb-c", ">= 0.9x (same speed)", ratio, why, true, 0.9)
		}
		if ran["recovery"] {
			a := find("recovery", e)
			why := usable(a, e)
			if why == "" {
				rate := recoveryRate(a)
				lines = append(lines, fmt.Sprintf("  %s\trecovery: bytes on disk / reopen time\t>= 500 MB/s\t%.0f MB/s\t%s",
					e, rate/1e6, map[bool]string{true: "met", false: "missed"}[rate >= 500e6]))
			} else {
				lines = append(lines, fmt.Sprintf("  %s\trecovery: bytes on disk / reopen time\t>= 500 MB/s\t-\t%s", e, why))
			}
			p := find("recovery", "pebble")
			if why == "" {
				why = usable(p, "pebble")
			}
			ratio := 0.0
			if why == "" {
				ratio = float64(a.ReopenNs) / float64(max(p.ReopenNs, 1))
			}
			size := ""
			if a != nil && a.LiveBytes > 0 {
				size = " (" + humanBytes(a.LiveBytes) + ")"
			}
			verdict(e, "recovery: reopen time"+size+" / pebble's", "<= 0.5x", ratio, why, false, 0.5)
		}
	}
	return lines
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// writeDurableMarkdown is report.md's durable section.
func writeDurableMarkdown(b *strings.Builder, rep *Report) {
	var rs []*Result
	for _, r := range rep.Results {
		if r.Durable {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return
	}
	b.WriteString("## Durable suites\n\n")
	b.WriteString("Each run opens the store with a fresh data directory; every acknowledged write is " +
		"read back after the store is closed and reopened. A store whose reopen lost acknowledged " +
		"writes is reported as not durable, without figures.\n\n")
	if d := rep.Disk; d != nil {
		fmt.Fprintf(b, "Disk floor (same run): one writer, 4 KiB write + fdatasync: **%s/s** (p50 %s, p99 %s) "+
			"in `%s` (%s).\n\n", humanCount(d.FdatasyncsPerSec), humanNs(float64(d.P50Ns)),
			humanNs(float64(d.P99Ns)), d.Dir, d.FS)
	}
	b.WriteString("| suite | engine | writers | ops/s | p50 | p99 | reopen | disk/live | RSS | check |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rs {
		p50, p99 := humanNs(float64(r.P50Ns)), humanNs(float64(r.P99Ns))
		if r.NotDurable != "" || r.Suite == "recovery" || !r.OK() {
			p50, p99 = "-", "-"
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Suite, r.Engine, r.Workers,
			durableOps(r), p50, p99, reopenTime(r), diskPerLive(r), humanBytes(r.RSSBytes), status(r))
	}
	b.WriteString("\n")
	for _, r := range rs {
		if r.NotDurable != "" {
			fmt.Fprintf(b, "- not durable: %s on %s: %s\n", r.Suite, r.Engine, r.NotDurable)
		}
	}
	if lines := durableTargets(rep); len(lines) > 0 {
		b.WriteString("\n| engine | target | wanted | measured | verdict |\n|---|---|---|--:|---|\n")
		for _, l := range lines {
			f := strings.Split(strings.TrimSpace(l), "\t")
			b.WriteString("| " + strings.Join(f, " | ") + " |\n")
		}
	}
	b.WriteString("\n")
}
