package benchmark

// Histogram is a log-linear latency histogram, the harness's own so that the
// package needs nothing outside the standard library (users of the module
// must not inherit the harness's requirements).
//
// Values 0..2*subCount-1 have a bucket each (exact). Above, each power of
// two [2^e, 2^(e+1)) is cut into subCount equal buckets, so a bucket's width
// is at most 1/subCount of its values: a reported percentile is within 0.1%
// (subCount = 1024) above the exact one, as HDR histograms with three
// significant digits. Recording is one bits.Len64 and an increment; merging
// adds the counts. The zero value is not usable: use newHistogram.

import (
	"math"
	"math/bits"
)

const (
	subBits  = 10
	subCount = 1 << subBits
)

type histogram struct {
	counts   []uint64
	total    uint64
	min, max int64
	sum      float64
	maxValue int64
}

// newHistogram returns a histogram for values 0..maxValue; larger values are
// recorded as maxValue and negative ones as 0.
func newHistogram(maxValue int64) *histogram {
	return &histogram{counts: make([]uint64, bucketOf(maxValue)+1), min: math.MaxInt64, maxValue: maxValue}
}

// bucketOf is the index of v's bucket (v >= 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < 2*subCount {
		return int(u)
	}
	shift := bits.Len64(u) - (subBits + 1) // u>>shift is in [subCount, 2*subCount)
	return 2*subCount + (shift-1)*subCount + int(u>>shift) - subCount
}

// bucketHigh is the largest value of bucket i.
func bucketHigh(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	shift := (i-2*subCount)/subCount + 1
	mant := uint64((i-2*subCount)%subCount + subCount)
	return int64((mant+1)<<shift - 1)
}

// record adds one value.
func (h *histogram) record(v int64) {
	v = min(max(v, 0), h.maxValue)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds o's values to h (o must have the same maxValue).
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

func (h *histogram) count() uint64 { return h.total }

// mean is exact (the sum of the values, not of their buckets).
func (h *histogram) mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// quantile returns the q-th percentile (0..100) by nearest rank: the
// smallest recorded value v such that at least q% of the values are <= v,
// rounded up to its bucket's largest value and capped by the largest value
// recorded. 0 when empty.
func (h *histogram) quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	rank := uint64(math.Ceil(q / 100 * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketHigh(i), h.max)
		}
	}
	return h.max
}
