package benchmark

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseArgsDefaultsAndOverrides(t *testing.T) {
	cfg, err := ParseArgs([]string{"--benchmark-only"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	light, _ := LookupStress("light")
	if !cfg.BenchmarkOnly || cfg.Stress.Name != "light" || cfg.Duration != light.Duration ||
		cfg.Keys != light.Keys || cfg.OutDir != "bench-results" || cfg.Engines != nil || cfg.Workers < 1 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = ParseArgs([]string{"--benchmark-only", "--benchmark-stress=heavy", "--engines", "purego, syncmap",
		"--suites=ycsb-a", "--out", "x/y/", "--duration=1500ms", "--workers=7", "--keys=1001"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stress.Name != "heavy" || cfg.Duration != 1500*time.Millisecond || cfg.Workers != 7 ||
		cfg.Keys != 1100 || cfg.LargeKeys != 1100 || cfg.OutDir != "x/y" ||
		strings.Join(cfg.Engines, "|") != "purego|syncmap" || strings.Join(cfg.Suites, "|") != "ycsb-a" {
		t.Fatalf("overrides: %+v", cfg)
	}
	for _, bad := range [][]string{
		{"--benchmark-stress=huge"}, {"--duration=-1s"}, {"--workers=-2"}, {"--nope"},
		{"--progress=sometimes"}, {"--out="}, {"stray"},
	} {
		if _, err := ParseArgs(bad, new(bytes.Buffer)); err == nil {
			t.Errorf("ParseArgs(%q) accepted", bad)
		}
	}
}

func TestHelpExplainsEveryOption(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := mainIO([]string{"--help"}, &out, &errOut, false, nil); code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errOut.String())
	}
	help := out.String()
	for _, want := range []string{"--benchmark-only", "--benchmark-stress", "--engines", "--out", "--duration",
		"--workers", "--suites", "--keys", "light", "medium", "heavy", "extreme", "purego", "syncmap",
		"ycsb-e", "prefix-scan", "results.json", "--data-dir", "--recovery-mib", "durable", "sync-write-16",
		"recovery"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, // no --benchmark-only: there is no server to run
		{"--benchmark-only", "--engines=nosuch"},
		{"--benchmark-only", "--suites=nosuch"},
		{"--benchmark-only", "--engines=syncmap", "--suites=prefix-scan"}, // nothing fits
		{"--benchmark-stress=bogus"},
	} {
		var out, errOut bytes.Buffer
		if code := mainIO(args, &out, &errOut, false, nil); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if errOut.Len() == 0 {
			t.Errorf("%q: no error message", args)
		}
	}
}

// TestZipf checks the generator against the exact Zipf(0.99) probabilities
// of the hottest ranks, and the scrambled indexes' range and bijection.
func TestZipf(t *testing.T) {
	const n, draws = 1000, 200_000
	z := NewZipf(rand.New(rand.NewPCG(1, 2)), n, 0.99)
	counts := make([]int, n)
	for range draws {
		r := z.Rank()
		if r >= n {
			t.Fatalf("rank %d out of range", r)
		}
		counts[r]++
	}
	zeta := 0.0
	for i := 1; i <= n; i++ {
		zeta += 1 / math.Pow(float64(i), 0.99)
	}
	for r := 0; r < 10; r++ {
		p := 1 / math.Pow(float64(r+1), 0.99) / zeta
		got := float64(counts[r]) / draws
		if math.Abs(got-p) > 0.08*p {
			t.Errorf("rank %d: frequency %.4f, want %.4f within 8%%", r, got, p)
		}
	}
	// Pearson's chi-squared over the ranks grouped so that each group
	// expects at least 200 draws: with ~100 groups the statistic is
	// about 100 for a correct generator; a wrong one is far above.
	chi, df, exp, obs := 0.0, 0, 0.0, 0
	for r := 0; r < n; r++ {
		exp += draws / math.Pow(float64(r+1), 0.99) / zeta
		obs += counts[r]
		if exp >= 200 || r == n-1 {
			chi += (float64(obs) - exp) * (float64(obs) - exp) / exp
			df++
			exp, obs = 0, 0
		}
	}
	if chi > 2*float64(df)+50 {
		t.Errorf("chi-squared %.1f over %d groups: not Zipf(0.99)", chi, df)
	}
	// The hottest 10% of the ranks draw the mass Zipf gives them.
	top, want := 0, 0.0
	for r := 0; r < n/10; r++ {
		top += counts[r]
		want += 1 / math.Pow(float64(r+1), 0.99) / zeta
	}
	if got := float64(top) / draws; math.Abs(got-want) > 0.05 {
		t.Errorf("top 10%% of ranks: %.3f of the draws, want %.3f", got, want)
	}
	// Scrambling maps the ranks onto 0..n-1 one to one: rank 1, the
	// second hottest, is index p mod n, not index 1.
	seen := make([]bool, n)
	for r := uint64(0); r < n; r++ {
		i := r * z.spread % n
		if seen[i] {
			t.Fatalf("scrambled index %d twice", i)
		}
		seen[i] = true
	}
	hot := make([]int, n)
	for range 20_000 {
		i := z.Scrambled()
		if i >= n {
			t.Fatalf("scrambled index %d out of range", i)
		}
		hot[i]++
	}
	if h := z.spread % n; h == 1 || hot[h] < 20_000/20 || hot[1] > 20_000/100 {
		t.Errorf("scrambled rank 1 (index %d) drawn %d times, index 1 %d times", h, hot[h], hot[1])
	}
	// Other exponents, and a generator grown from a smaller one.
	g := NewZipf(rand.New(rand.NewPCG(3, 4)), 10, 1.5)
	g.grow(n)
	c0, c1 := 0, 0
	for range draws {
		switch g.Rank() {
		case 0:
			c0++
		case 1:
			c1++
		}
	}
	if ratio := float64(c0) / float64(c1); math.Abs(ratio-math.Pow(2, 1.5)) > 0.15 {
		t.Errorf("q=1.5: P(0)/P(1) = %.3f, want %.3f", ratio, math.Pow(2, 1.5))
	}
}

func TestCodecDetectsWrongValues(t *testing.T) {
	for _, spec := range []valueSpec{smallValue, {Min: 16 << 10, Max: 64 << 10}, durableValue,
		{Min: 1000, Max: 1000, Incompressible: true}} {
		c := newCodec(spec)
		k := keyOf(42)
		v := c.value(k, 7)
		if ver, err := c.check(k, v); err != nil || ver != 7 {
			t.Fatalf("round trip: %d %v", ver, err)
		}
		if len(v) < spec.Min || len(v) > spec.Max {
			t.Fatalf("value of %d bytes outside %v", len(v), spec)
		}
		bad := map[string]string{
			"another key's value": c.value(keyOf(43), 7),
			"truncated":           v[:len(v)-1],
			"empty":               "",
			"flipped last byte":   v[:len(v)-1] + string(v[len(v)-1]^1),
			"flipped version":     string(v[0]^1) + v[1:],
			"flipped middle":      v[:len(v)/2] + string(v[len(v)/2]^0x80) + v[len(v)/2+1:],
		}
		for name, b := range bad {
			if _, err := c.check(k, b); err == nil {
				t.Errorf("%v: %s accepted", spec, name)
			}
		}
	}
	// The durable suites' values do not compress (so that peers which
	// compress their files store what the data holds); the others do.
	for _, c := range []struct {
		spec         valueSpec
		compressible bool
	}{{valueSpec{Min: 1000, Max: 1000}, true}, {valueSpec{Min: 1000, Max: 1000, Incompressible: true}, false}} {
		var raw, z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestCompression)
		cd := newCodec(c.spec)
		for i := uint64(0); i < 200; i++ {
			v := cd.value(keyOf(i), 1)
			raw.WriteString(v)
			w.Write([]byte(v))
		}
		w.Close()
		if ratio := float64(z.Len()) / float64(raw.Len()); (ratio < 0.5) != c.compressible {
			t.Errorf("%+v: compresses to %.2f of its size", c.spec, ratio)
		}
	}
	if i, ok := keyIndex(keyOf(123456789)); !ok || i != 123456789 || len(keyOf(1)) != keyLen {
		t.Errorf("keyIndex(keyOf(123456789)) = %d, %v", i, ok)
	}
	if keyOf(199)[:groupPrefix] != keyOf(100)[:groupPrefix] || keyOf(200)[:groupPrefix] == keyOf(199)[:groupPrefix] {
		t.Error("a group prefix does not name exactly 100 keys")
	}
}

func TestHumanFormats(t *testing.T) {
	for in, want := range map[string]string{
		humanCount(2_500_000): "2.50M", humanNs(1500): "1.50µs", humanBytes(3 << 20): "3.00MiB",
		tickLabel("1.00ms"): "1ms", tickLabel("2.50M"): "2.5M", tickLabel("100ns"): "100ns",
		tickLabel("10.0µs"): "10µs",
	} {
		if in != want {
			t.Errorf("got %q, want %q", in, want)
		}
	}
}

func TestBuiltinStoresPassCheckStore(t *testing.T) {
	regs, err := Registered()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		t.Run(r.Name, func(t *testing.T) {
			if err := CheckStore(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFits(t *testing.T) {
	mem := func(int) (Store, error) { return &syncMapStore{}, nil }
	disk := func(string, bool) (Store, error) { return &syncMapStore{}, nil }
	cache := Registration{Name: "cache", Lossy: true, New: mem}
	ordered := Registration{Name: "tree", Ordered: true, OrderedOnly: true, New: mem}
	hash := Registration{Name: "hash", New: mem}
	durableOnly := Registration{Name: "lsm", Durable: disk}
	both := Registration{Name: "engine", Ordered: true, New: mem, Durable: disk}
	for _, s := range Suites {
		if cache.Fits(s) != (s.CacheShaped && !s.Ordered) {
			t.Errorf("cache on %s: %v", s.Name, cache.Fits(s))
		}
		if ordered.Fits(s) != s.Ordered {
			t.Errorf("ordered-only on %s: %v", s.Name, ordered.Fits(s))
		}
		if hash.Fits(s) != (!s.Ordered && !s.Durable) {
			t.Errorf("hash map on %s: %v", s.Name, hash.Fits(s))
		}
		if durableOnly.Fits(s) != s.Durable {
			t.Errorf("durable-only store on %s: %v", s.Name, durableOnly.Fits(s))
		}
		if !both.Fits(s) {
			t.Errorf("an ordered engine with a durable mode does not fit %s", s.Name)
		}
	}
	if _, err := Registered(Registration{Name: "neither"}); err == nil {
		t.Error("a registration with neither New nor Durable was accepted")
	}
	var cacheSuites []string
	for _, s := range Suites {
		if s.CacheShaped {
			cacheSuites = append(cacheSuites, s.Name)
		}
	}
	if strings.Join(cacheSuites, ",") != "ycsb-b,ycsb-c,zipf-reads" {
		t.Errorf("cache-shaped suites: %v", cacheSuites)
	}
}

// badStore wraps a sync.Map store and gets one thing wrong.
type badStore struct {
	syncMapStore
	mode  string
	mu    sync.Mutex
	first map[string]string // first value written per key ("stale")
	n     int
}

func (b *badStore) Put(k, v string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	switch b.mode {
	case "drop":
		// Loses every write of one key in ten (chosen by the key's
		// last byte), so that the loss is certain to be the last
		// write of some key whatever the interleaving.
		if k != "" && k[len(k)-1]%10 == 3 {
			return nil
		}
	case "stale":
		if _, ok := b.first[k]; !ok {
			b.first[k] = v
		}
	}
	return b.syncMapStore.Put(k, v)
}

func (b *badStore) Get(k string) (string, bool, error) {
	v, ok, err := b.syncMapStore.Get(k)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ok {
		return v, ok, err
	}
	switch b.mode {
	case "flip":
		b.n++
		if b.n%100 == 0 {
			v = v[:30] + string(v[30]^4) + v[31:]
		}
	case "swap":
		if o, ok2, _ := b.syncMapStore.Get(keyOf(0)); ok2 && k != keyOf(0) {
			v = o
		}
	case "stale":
		if f, ok := b.first[k]; ok {
			v = f
		}
	}
	return v, ok, err
}

func badReg(mode string) Registration {
	return Registration{Name: "bad-" + mode, Peer: true, New: func(int) (Store, error) {
		return &badStore{mode: mode, first: map[string]string{}}, nil
	}}
}

// TestVerificationFailsTheRun proves the checks can fail: stores that
// corrupt a byte, return another key's value, lose writes or return stale
// values make the suites (and the command) fail.
func TestVerificationFailsTheRun(t *testing.T) {
	cfg := testConfig()
	cases := []struct{ mode, suite string }{
		{"flip", "seq-read"}, {"flip", "ycsb-c"},
		{"swap", "ycsb-a"},
		{"drop", "random-write"}, {"drop", "high-throughput"}, {"drop", "zipf-reads"},
		{"drop", "memory-pressure"},
		{"stale", "seq-write"}, {"stale", "concurrent-ops"},
	}
	for _, c := range cases {
		res := runOne(cfg, LookupSuite(c.suite), badReg(c.mode), nil)
		if res.OK() || res.CheckFailures == 0 || res.Failure == "" {
			t.Errorf("%s store on %s passed: %+v", c.mode, c.suite, res)
		} else {
			t.Logf("%s on %s: %s", c.mode, c.suite, res.Failure)
		}
	}
	// The same store declared lossy may miss, but not return wrong values.
	lossy := badReg("flip")
	lossy.Lossy = true
	if res := runOne(cfg, LookupSuite("ycsb-c"), lossy, nil); res.OK() {
		t.Error("a lossy store returning corrupted values passed")
	}
	// And through the command: exit status 1.
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := mainIO([]string{"--benchmark-only", "--engines=bad-flip", "--suites=seq-read", "--duration=30ms",
		"--keys=2000", "--out", dir}, &out, &errOut, false, []Registration{badReg("flip")})
	if code != 1 || !strings.Contains(errOut.String(), "FAILED") {
		t.Fatalf("a corrupting store: exit %d, stderr %q", code, errOut.String())
	}
	var rep struct{ OK bool }
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.OK {
		t.Fatalf("results.json of a failed run: ok=%v err=%v", rep.OK, err)
	}
}

func testConfig() Config {
	// A small key space, so that even a slow (race-instrumented) run
	// overwrites and rereads keys many times within the duration.
	cfg, _ := ParseArgs([]string{"--benchmark-only", "--duration=30ms", "--keys=200", "--workers=2"}, new(bytes.Buffer))
	cfg.LargeKeys = 100
	return cfg
}

// TestMainWritesEverything runs the whole command at a tiny size and checks
// every output: the table, results.json's schema, report.md and the charts.
func TestMainWritesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	args := []string{"--benchmark-only", "--duration=25ms", "--keys=1000", "--out", dir, "--progress=on",
		"--suites=memory"} // the durable ones: durable_test.go
	suites := memorySuites(Suites)
	if testing.Short() {
		// -short (the -race runs): fewer suites, to keep the race
		// detector's run short.
		args = append(args, "--duration=10ms", "--suites=ycsb-c,ycsb-e,zipf-reads")
		suites = nil
		for _, n := range []string{"ycsb-c", "ycsb-e", "zipf-reads"} {
			suites = append(suites, LookupSuite(n))
		}
	}
	var out, errOut bytes.Buffer
	code := mainIO(args, &out, &errOut, false, nil)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), suites[0].Name) || !strings.Contains(out.String(), "all ") {
		t.Errorf("no table in the output:\n%s", out.String())
	}

	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep["ok"] != true || rep["stress"] != "light" {
		t.Errorf("results.json header: ok=%v stress=%v", rep["ok"], rep["stress"])
	}
	results, _ := rep["results"].([]any)
	regs, _ := Registered()
	want := 0
	for _, s := range suites {
		for _, r := range regs {
			if r.Fits(s) {
				want++
			}
		}
	}
	if len(results) != want {
		t.Fatalf("%d results, want %d (one per suite and engine that fits)", len(results), want)
	}
	seen := map[string]bool{}
	for _, x := range results {
		o := x.(map[string]any)
		for _, k := range []string{"suite", "engine"} {
			if s, ok := o[k].(string); !ok || s == "" {
				t.Fatalf("result without %q: %v", k, o)
			}
		}
		for _, k := range []string{"workers", "keys", "ops_per_sec", "p50_ns", "p95_ns", "p99_ns", "p999_ns",
			"max_ns", "heap_bytes", "rss_bytes", "gc_pause_total_ns", "gc_count", "errors", "check_failures",
			"hit_ratio", "gc_cpu_seconds", "gc_cpu_load_seconds"} {
			if _, ok := o[k].(float64); !ok {
				t.Fatalf("%s/%s: %q missing or not a number: %v", o["suite"], o["engine"], k, o[k])
			}
		}
		if o["ops_per_sec"].(float64) <= 0 || o["p50_ns"].(float64) <= 0 ||
			o["p50_ns"].(float64) > o["p99_ns"].(float64) || o["p99_ns"].(float64) > o["max_ns"].(float64) {
			t.Errorf("%s/%s: implausible figures: %v", o["suite"], o["engine"], o)
		}
		if o["rss_bytes"].(float64) <= 0 {
			t.Errorf("%s/%s: no RSS", o["suite"], o["engine"])
		}
		seen[o["suite"].(string)+"/"+o["engine"].(string)] = true
	}
	for _, s := range suites {
		if must := s.Name + "/purego"; !seen[must] {
			t.Errorf("no result for %s", must)
		}
		if must := s.Name + "/syncmap"; !s.Ordered && !seen[must] {
			t.Errorf("no result for %s", must)
		}
	}
	if seen["ycsb-e/syncmap"] {
		t.Error("sync.Map ran an ordered suite")
	}

	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# MantisDB benchmark report", "Who wins", "all checks passed",
		"throughput.svg", "### ycsb-e"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, kind := range []string{"throughput", "latency"} {
		svg, err := os.ReadFile(filepath.Join(dir, kind+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(svg[:min(len(svg), 512)], []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
			t.Errorf("%s.svg is not an SVG document", kind)
		}
		// Well-formed XML, with one bar (throughput) or one line (latency)
		// per result.
		dec := xml.NewDecoder(bytes.NewReader(svg))
		shapes := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s.svg is not well-formed XML: %v", kind, err)
			}
			if el, ok := tok.(xml.StartElement); ok {
				for _, a := range el.Attr {
					if a.Name.Local == "fill" && el.Name.Local == "rect" && kind == "throughput" && a.Value != "white" && a.Value != "none" {
						shapes++
					}
				}
				if el.Name.Local == "polyline" && kind == "latency" {
					shapes++
				}
			}
		}
		want := len(results)
		if kind == "throughput" {
			engines, _ := rep["engines"].([]any)
			want += len(engines) // the legend's swatches
		}
		if shapes != want {
			t.Errorf("%s.svg has %d bars or lines, want %d", kind, shapes, want)
		}
	}
}
