package benchmark

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the nearest-rank percentile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestHistogramBuckets(t *testing.T) {
	// Every bucket's range starts right after the previous one's and is at
	// most 1/subCount of its values wide.
	prevHigh := int64(-1)
	for i := 0; i < bucketOf(histMaxNs); i++ {
		high := bucketHigh(i)
		low := prevHigh + 1
		if bucketOf(low) != i || bucketOf(high) != i {
			t.Fatalf("bucket %d: [%d, %d] maps to buckets %d and %d", i, low, high, bucketOf(low), bucketOf(high))
		}
		if float64(high-low) > float64(low)/subCount {
			t.Fatalf("bucket %d: [%d, %d] is wider than 1/%d of its values", i, low, high, subCount)
		}
		prevHigh = high
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	h := newHistogram(histMaxNs)
	var vals []int64
	for v := int64(1); v <= 1000; v++ {
		h.record(v)
		vals = append(vals, v)
	}
	for _, q := range []float64{0, 1, 25, 50, 90, 95, 99, 99.9, 100} {
		if got, want := h.quantile(q), exactQuantile(vals, q); got != want {
			t.Errorf("p%v = %d, want exactly %d", q, got, want)
		}
	}
	if h.quantile(50) != 500 || h.quantile(99) != 990 || h.quantile(100) != 1000 {
		t.Errorf("p50, p99, p100 of 1..1000 = %d, %d, %d; want 500, 990, 1000",
			h.quantile(50), h.quantile(99), h.quantile(100))
	}
	if h.mean() != 500.5 || h.count() != 1000 {
		t.Errorf("mean %v count %d, want 500.5 and 1000", h.mean(), h.count())
	}
}

func TestHistogramMatchesExactPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for _, dist := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform 1ns-1ms", func() int64 { return 1 + rng.Int64N(1_000_000) }},
		{"log-uniform 1ns-60s", func() int64 { return int64(math.Exp(rng.Float64() * math.Log(float64(histMaxNs)))) }},
		{"bimodal 200ns/5ms", func() int64 {
			if rng.IntN(100) < 98 {
				return 150 + rng.Int64N(100)
			}
			return 5_000_000 + rng.Int64N(1_000_000)
		}},
	} {
		// Two histograms merged, as the workers' are.
		a, b := newHistogram(histMaxNs), newHistogram(histMaxNs)
		vals := make([]int64, 0, 200_000)
		sum := 0.0
		for i := 0; i < 200_000; i++ {
			v := dist.gen()
			vals = append(vals, v)
			sum += float64(v)
			if i%2 == 0 {
				a.record(v)
			} else {
				b.record(v)
			}
		}
		a.merge(b)
		slices.Sort(vals)
		for _, q := range []float64{0, 50, 95, 99, 99.9, 99.99, 100} {
			got, want := a.quantile(q), exactQuantile(vals, q)
			if got < want || float64(got-want) > float64(want)/subCount {
				t.Errorf("%s: p%v = %d, exact %d (must be within +0.1%%)", dist.name, q, got, want)
			}
		}
		if a.quantile(100) != vals[len(vals)-1] || a.quantile(0) != vals[0] {
			t.Errorf("%s: max/min %d/%d, want exactly %d/%d", dist.name, a.quantile(100), a.quantile(0),
				vals[len(vals)-1], vals[0])
		}
		if m := sum / float64(len(vals)); math.Abs(a.mean()-m) > 1e-9*m {
			t.Errorf("%s: mean %v, want %v", dist.name, a.mean(), m)
		}
	}
}

func TestHistogramClampsAndEmpty(t *testing.T) {
	h := newHistogram(1000)
	if h.quantile(50) != 0 || h.mean() != 0 {
		t.Error("an empty histogram reports values")
	}
	h.record(-5)
	h.record(1 << 40)
	if h.quantile(0) != 0 || h.quantile(100) != 1000 {
		t.Errorf("clamped min/max = %d/%d, want 0/1000", h.quantile(0), h.quantile(100))
	}
}
