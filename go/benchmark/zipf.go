package benchmark

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Zipf draws ranks 0..n-1 with P(rank r) proportional to 1/(r+1)^q, for any
// exponent q > 0 (YCSB's request distribution uses q = 0.99; the standard
// library's rand.Zipf needs q > 1, so it cannot draw it).
//
// The method is rejection-inversion (W. Hörmann and G. Derflinger,
// "Rejection-inversion to generate variates from monotone discrete
// distributions", ACM TOMACS 6(3), 1996), which is exact and needs no table
// and no sum over the n items, so a generator over a growing key space (YCSB
// D's latest keys) costs nothing to grow. With the hat h(x) = x^-q and its
// integral H(x) = (x^(1-q) - 1)/(1-q), a uniform u in
// [H(1.5) - h(1), H(n + 0.5)) gives x = H^-1(u) and k = round(x); k is
// accepted if k - x <= s (a constant that makes most draws accept at once) or
// u >= H(k + 0.5) - h(k); the accepted region of each k has area exactly
// h(k), so P(k) is proportional to k^-q.
//
// A Zipf is not safe for concurrent use: each worker has its own.
type Zipf struct {
	n      uint64
	q      float64
	hX1    float64 // H(1.5) - h(1)
	hN     float64 // H(n + 0.5)
	s      float64
	rng    *rand.Rand
	spread uint64 // multiplier of the scrambled ranks (a prime above n)
}

// NewZipf returns a generator of ranks 0..n-1 (n >= 1) with exponent q > 0
// drawing from rng.
func NewZipf(rng *rand.Rand, n uint64, q float64) *Zipf {
	z := &Zipf{q: q, rng: rng, spread: 2654435761}
	z.hX1 = z.hIntegral(1.5) - 1
	z.s = 2 - z.hIntegralInv(z.hIntegral(2.5)-z.h(2))
	z.grow(max(n, 1))
	return z
}

// grow sets the number of items to n (n >= 1).
func (z *Zipf) grow(n uint64) {
	z.n = n
	z.hN = z.hIntegral(float64(n) + 0.5)
}

// N returns the number of items.
func (z *Zipf) N() uint64 { return z.n }

func (z *Zipf) h(x float64) float64 { return math.Exp(-z.q * math.Log(x)) }

// hIntegral is H(x) = (x^(1-q) - 1)/(1-q), computed as
// log(x) * expm1(t)/t with t = (1-q) log(x), stable for q near 1.
func (z *Zipf) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return lx * expm1Over((1-z.q)*lx)
}

// hIntegralInv is H^-1(y) = (1 + y(1-q))^(1/(1-q)), computed as
// exp(y * log1p(t)/t) with t = y(1-q).
func (z *Zipf) hIntegralInv(y float64) float64 {
	t := y * (1 - z.q)
	if t < -1 { // rounding at the lower end of the range
		t = -1
	}
	return math.Exp(log1pOver(t) * y)
}

// expm1Over is expm1(t)/t, 1 at t = 0.
func expm1Over(t float64) float64 {
	if math.Abs(t) > 1e-8 {
		return math.Expm1(t) / t
	}
	return 1 + t/2*(1+t/3*(1+t/4))
}

// log1pOver is log1p(t)/t, 1 at t = 0.
func log1pOver(t float64) float64 {
	if math.Abs(t) > 1e-8 {
		return math.Log1p(t) / t
	}
	return 1 - t*(1.0/2-t*(1.0/3-t/4))
}

// Rank returns a rank in 0..n-1: rank 0 is the most frequent.
func (z *Zipf) Rank() uint64 {
	for {
		u := z.hN + z.rng.Float64()*(z.hX1-z.hN)
		x := z.hIntegralInv(u)
		k := math.Floor(x + 0.5)
		if k < 1 {
			k = 1
		} else if k > float64(z.n) {
			k = float64(z.n)
		}
		if k-x <= z.s || u >= z.hIntegral(k+0.5)-z.h(k) {
			return uint64(k) - 1
		}
	}
}

// Scrambled returns a Zipf-distributed index in 0..n-1 whose hot items are
// spread over the key space rather than packed at its start (YCSB's
// "scrambled zipfian"): rank r maps to r*p mod n for a prime p > n, a
// bijection.
func (z *Zipf) Scrambled() uint64 {
	r := z.Rank()
	if z.spread <= z.n {
		return r
	}
	hi, lo := bits.Mul64(r, z.spread)
	return bits.Rem64(hi, lo, z.n)
}
