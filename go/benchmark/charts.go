package benchmark

// The charts, drawn as hand-written SVG so that the harness needs nothing
// outside the standard library: a grid with one small plot per suite (each
// with its own scale: suites differ by orders of magnitude) and a legend
// tile. Every engine keeps its color in every plot.
//
//	throughput.svg  ops/s per engine, one bar each (linear scale from 0)
//	latency.svg     p50, p95, p99, p99.9 and max per engine (log scale)

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

const (
	chartCols = 4
	tileW     = 340
	tileH     = 250
	// The plot area inside a tile.
	plotLeft, plotRight, plotTop, plotBottom = 58.0, 12.0, 30.0, 62.0
)

// palette: distinct colors, reused in order (the run's engine order).
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"}

// engineColors gives each engine of the run a color, in the run's order.
func engineColors(engines []string) map[string]string {
	m := make(map[string]string, len(engines))
	for i, e := range engines {
		m[e] = palette[i%len(palette)]
	}
	return m
}

// writeCharts writes throughput and latency charts of results into dir and
// returns the files written.
func writeCharts(dir string, results []*Result, suites []*Suite, engines []string) ([]string, error) {
	colors := engineColors(engines)
	var bySuite [][]*Result
	var names []string
	for _, s := range suites {
		var rs []*Result
		for _, r := range results {
			if r.Suite == s.Name {
				rs = append(rs, r)
			}
		}
		if len(rs) > 0 {
			bySuite = append(bySuite, rs)
			names = append(names, s.Name)
		}
	}
	if len(bySuite) == 0 {
		return nil, nil
	}
	var files []string
	for _, kind := range []string{"throughput", "latency"} {
		tiles := len(bySuite) + 1
		rows := (tiles + chartCols - 1) / chartCols
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" `+
			`font-family="sans-serif" font-size="10">`+"\n"+`<rect width="100%%" height="100%%" fill="white"/>`+"\n",
			chartCols*tileW, rows*tileH, chartCols*tileW, rows*tileH)
		for i := 0; i < tiles; i++ {
			x, y := float64(i%chartCols*tileW), float64(i/chartCols*tileH)
			fmt.Fprintf(&b, `<g transform="translate(%g,%g)">`+"\n", x, y)
			switch {
			case i == len(bySuite):
				legendTile(&b, kind, engines, colors)
			case kind == "throughput":
				throughputTile(&b, names[i], bySuite[i], colors)
			default:
				latencyTile(&b, names[i], bySuite[i], colors)
			}
			b.WriteString("</g>\n")
		}
		b.WriteString("</svg>\n")
		path := filepath.Join(dir, kind+".svg")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return files, fmt.Errorf("writing %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}

func esc(s string) string { return html.EscapeString(s) }

func tileTitle(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<text x="%d" y="16" text-anchor="middle" font-size="13" font-weight="bold">%s</text>`+"\n",
		tileW/2, esc(title))
}

// plotArea returns the plot rectangle of a tile and draws its frame.
func plotArea(b *strings.Builder) (x0, y0, x1, y1 float64) {
	x0, y0, x1, y1 = plotLeft, plotTop, tileW-plotRight, tileH-plotBottom
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n",
		x0, y0, x1-x0, y1-y0)
	return
}

// yTick draws a tick line across the plot at y with a label on the left.
func yTick(b *strings.Builder, x0, x1, y float64, label string, major bool) {
	stroke := "#eee"
	if major {
		stroke = "#ccc"
	}
	fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s"/>`+"\n", x0, y, x1, y, stroke)
	if label != "" {
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
			x0-4, y, esc(label))
	}
}

// xLabel writes a category label under the plot, rotated so long names fit.
func xLabel(b *strings.Builder, x, y1 float64, label string) {
	fmt.Fprintf(b, `<text transform="translate(%.1f,%g) rotate(-35)" text-anchor="end">%s</text>`+"\n",
		x, y1+12, esc(label))
}

// niceStep returns a round step (1, 2 or 5 times a power of ten) giving
// about n steps up to top.
func niceStep(top float64, n int) float64 {
	raw := top / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func throughputTile(b *strings.Builder, suite string, rs []*Result, colors map[string]string) {
	tileTitle(b, suite)
	x0, y0, x1, y1 := plotArea(b)
	top := 0.0
	for _, r := range rs {
		if r.OK() {
			top = math.Max(top, r.OpsPerSec)
		}
	}
	if top <= 0 {
		top = 1
	}
	step := niceStep(top*1.15, 5)
	yMax := math.Ceil(top*1.15/step) * step
	yOf := func(v float64) float64 { return y1 - (y1-y0)*v/yMax }
	for v := 0.0; v <= yMax*1.0001; v += step {
		yTick(b, x0, x1, yOf(v), tickLabel(humanCount(v)), true)
	}
	slot := (x1 - x0) / float64(len(rs))
	barW := math.Min(slot*0.7, 28)
	for i, r := range rs {
		v, name := r.OpsPerSec, r.Engine
		if !r.OK() {
			v, name = 0, name+" (failed)"
		}
		cx := x0 + slot*(float64(i)+0.5)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s ops/s</title></rect>`+"\n",
			cx-barW/2, yOf(v), barW, y1-yOf(v), colors[r.Engine], esc(r.Engine), humanCount(v))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="8">%s</text>`+"\n",
			cx, yOf(v)-3, humanCount(v))
		xLabel(b, cx, y1, name)
	}
	fmt.Fprintf(b, `<text transform="translate(12,%g) rotate(-90)" text-anchor="middle">ops/s</text>`+"\n", (y0+y1)/2)
}

var percentileNames = []string{"p50", "p95", "p99", "p99.9", "max"}

// markers are the point shapes of the latency plots, one per engine.
var markers = []string{"circle", "square", "diamond", "triangle"}

func marker(b *strings.Builder, shape string, x, y float64, color string) {
	switch shape {
	case "circle":
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, color)
	case "square":
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="6" height="6" fill="%s"/>`+"\n", x-3, y-3, color)
	case "diamond":
		fmt.Fprintf(b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`+"\n",
			x, y-4, x+4, y, x, y+4, x-4, y, color)
	default:
		fmt.Fprintf(b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`+"\n",
			x, y-4, x+4, y+3, x-4, y+3, color)
	}
}

func latencyTile(b *strings.Builder, suite string, rs []*Result, colors map[string]string) {
	tileTitle(b, suite)
	x0, y0, x1, y1 := plotArea(b)
	lo, hi := math.Inf(1), 0.0
	for _, r := range rs {
		if r.Ops == 0 {
			continue
		}
		for _, v := range []int64{r.P50Ns, r.MaxNs} {
			y := math.Max(float64(v), 1)
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	yOf := func(v float64) float64 {
		return y1 - (y1-y0)*(math.Log10(math.Max(v, 1))-dLo)/(dHi-dLo)
	}
	for d := dLo; d <= dHi; d++ {
		dec := math.Pow(10, d)
		yTick(b, x0, x1, yOf(dec), tickLabel(humanNs(dec)), true)
		for m := 2.0; m < 10 && d < dHi; m++ {
			yTick(b, x0, x1, yOf(dec*m), "", false)
		}
	}
	slot := (x1 - x0) / float64(len(percentileNames))
	for j, n := range percentileNames {
		fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x0+slot*(float64(j)+0.5), y1+14, n)
	}
	for i, r := range rs {
		if r.Ops == 0 {
			continue
		}
		vals := []int64{r.P50Ns, r.P95Ns, r.P99Ns, r.P999Ns, r.MaxNs}
		pts := make([]string, len(vals))
		for j, v := range vals {
			pts[j] = fmt.Sprintf("%.1f,%.1f", x0+slot*(float64(j)+0.5), yOf(float64(v)))
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"><title>%s</title></polyline>`+"\n",
			strings.Join(pts, " "), colors[r.Engine], esc(r.Engine))
		for j, v := range vals {
			marker(b, markers[i%len(markers)], x0+slot*(float64(j)+0.5), yOf(float64(v)), colors[r.Engine])
		}
	}
	fmt.Fprintf(b, `<text transform="translate(12,%g) rotate(-90)" text-anchor="middle">latency</text>`+"\n", (y0+y1)/2)
}

// legendTile is the grid's last tile: the engines and their colors.
func legendTile(b *strings.Builder, kind string, engines []string, colors map[string]string) {
	tileTitle(b, map[string]string{"throughput": "ops/s (higher is better)",
		"latency": "latency (lower is better)"}[kind])
	for i, e := range engines {
		x, y := 20.0+float64(i/10)*160, 40.0+float64(i%10)*18
		if kind == "throughput" {
			fmt.Fprintf(b, `<rect x="%g" y="%g" width="12" height="10" fill="%s"/>`+"\n", x, y-5, colors[e])
		} else {
			fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="1.5"/>`+"\n",
				x-2, y, x+14, y, colors[e])
			marker(b, markers[i%len(markers)], x+6, y, colors[e])
		}
		fmt.Fprintf(b, `<text x="%g" y="%g" dominant-baseline="middle" font-size="12">%s</text>`+"\n", x+20, y, esc(e))
	}
}

// tickLabel drops trailing zeros of the number of a label: "1.00ms" -> "1ms",
// "2.50M" -> "2.5M".
func tickLabel(s string) string {
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, unit := s[:end], s[end:]
	if strings.Contains(num, ".") {
		num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	}
	return num + unit
}
