package benchmark

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts: a grid with one small plot per suite (each with its own
// scale: suites differ by orders of magnitude) and a legend tile. Every
// engine keeps its color in every plot.
//
//	throughput.{svg,png}  ops/s per engine, one bar each
//	latency.{svg,png}     p50, p95, p99, p99.9 and max per engine (log scale)

const chartCols = 4

// engineColors gives each engine of the run a color, in the run's order.
func engineColors(engines []string) map[string]color.Color {
	m := make(map[string]color.Color, len(engines))
	for i, e := range engines {
		m[e] = plotutil.Color(i)
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
		var plots []*plot.Plot
		for i, rs := range bySuite {
			var p *plot.Plot
			var err error
			if kind == "throughput" {
				p, err = throughputPlot(names[i], rs, colors)
			} else {
				p, err = latencyPlot(names[i], rs, colors)
			}
			if err != nil {
				return files, fmt.Errorf("%s chart of %s: %w", kind, names[i], err)
			}
			plots = append(plots, p)
		}
		plots = append(plots, legendPlot(kind, engines, colors))
		for _, ext := range []string{"svg", "png"} {
			path := filepath.Join(dir, kind+"."+ext)
			if err := saveGrid(path, ext, plots); err != nil {
				return files, fmt.Errorf("writing %s: %w", path, err)
			}
			files = append(files, path)
		}
	}
	return files, nil
}

func throughputPlot(suite string, rs []*Result, colors map[string]color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = suite
	p.Y.Label.Text = "ops/s"
	p.Y.Min = 0
	p.Y.Tick.Marker = humanTicks{}
	smallText(p)
	var labels []string
	var pts plotter.XYs
	var lbls []string
	top := 0.0
	for i, r := range rs {
		v := r.OpsPerSec
		if !r.OK() {
			v = 0
		}
		bars, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(16))
		if err != nil {
			return nil, err
		}
		bars.XMin = float64(i)
		bars.Color = colors[r.Engine]
		bars.LineStyle.Width = 0
		p.Add(bars)
		name := r.Engine
		if !r.OK() {
			name += " (failed)"
		}
		labels = append(labels, name)
		pts = append(pts, plotter.XY{X: float64(i), Y: v})
		lbls = append(lbls, humanCount(v))
		top = math.Max(top, v)
	}
	p.Y.Max = top * 1.15
	if p.Y.Max == 0 {
		p.Y.Max = 1
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: lbls})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font.Size = vg.Points(7)
		l.TextStyle[i].XAlign = draw.XCenter
	}
	l.Offset = vg.Point{Y: vg.Points(2)}
	p.Add(l)
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(rs))-0.4
	return p, nil
}

var percentileNames = []string{"p50", "p95", "p99", "p99.9", "max"}

func latencyPlot(suite string, rs []*Result, colors map[string]color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = suite
	p.Y.Label.Text = "latency"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = nsLogTicks{}
	smallText(p)
	lo, hi := math.Inf(1), 0.0
	for i, r := range rs {
		if r.Ops == 0 {
			continue
		}
		vals := []int64{r.P50Ns, r.P95Ns, r.P99Ns, r.P999Ns, r.MaxNs}
		xys := make(plotter.XYs, len(vals))
		for j, v := range vals {
			y := math.Max(float64(v), 1)
			xys[j] = plotter.XY{X: float64(j), Y: y}
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color = colors[r.Engine]
		line.Width = vg.Points(1.2)
		pts.Color = colors[r.Engine]
		pts.Shape = plotutil.Shape(i)
		pts.Radius = vg.Points(2)
		p.Add(line, pts)
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
	p.NominalX(percentileNames...)
	p.X.Min, p.X.Max = -0.3, float64(len(percentileNames))-0.7
	return p, nil
}

// legendPlot is the grid's last tile: the engines and their colors.
func legendPlot(kind string, engines []string, colors map[string]color.Color) *plot.Plot {
	p := plot.New()
	p.HideAxes()
	p.Title.Text = map[string]string{"throughput": "ops/s (higher is better)",
		"latency": "latency (lower is better)"}[kind]
	smallText(p)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.Padding = vg.Points(3)
	for i, e := range engines {
		if kind == "throughput" {
			b, _ := plotter.NewBarChart(plotter.Values{0}, vg.Points(8))
			b.Color = colors[e]
			b.LineStyle.Width = 0
			p.Legend.Add(e, b)
		} else {
			l, s, _ := plotter.NewLinePoints(plotter.XYs{{}})
			l.Color, s.Color, s.Shape = colors[e], colors[e], plotutil.Shape(i)
			p.Legend.Add(e, l, s)
		}
	}
	return p
}

func smallText(p *plot.Plot) {
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Label.TextStyle.Font.Size = vg.Points(8)
}

// saveGrid draws plots in a grid of chartCols columns into path.
func saveGrid(path, ext string, plots []*plot.Plot) error {
	rows := (len(plots) + chartCols - 1) / chartCols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, chartCols)
		for c := range grid[r] {
			if i := r*chartCols + c; i < len(plots) {
				grid[r][c] = plots[i]
			}
		}
	}
	w, h := vg.Points(4*260), vg.Points(float64(rows)*200)
	var canvas vg.CanvasWriterTo
	switch ext {
	case "svg":
		canvas = vgsvg.New(w, h)
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))}
	default:
		return fmt.Errorf("unknown chart format %q", ext)
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: rows, Cols: chartCols, PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	cells := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c, p := range grid[r] {
			if p != nil {
				p.Draw(cells[r][c])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// humanTicks labels a linear axis with 1.5M-style numbers.
type humanTicks struct{}

func (humanTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = tickLabel(humanCount(ts[i].Value))
		}
	}
	return ts
}

// nsLogTicks labels a log axis of nanoseconds with durations.
type nsLogTicks struct{}

func (nsLogTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for dec := math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1)))); dec <= hi; dec *= 10 {
		ts = append(ts, plot.Tick{Value: dec, Label: tickLabel(humanNs(dec))})
		for m := 2.0; m < 10; m++ {
			if v := dec * m; v <= hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
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
