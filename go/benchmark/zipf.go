package benchmark

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Zipf draws ranks 0..n-1 with P(rank r) proportional to 1/(r+1)^theta, for
// 0 < theta < 1 (YCSB's request distribution uses theta = 0.99; the standard
// library's rand.Zipf needs an exponent above 1, so it cannot draw it).
//
// The method is the one of Gray et al., "Quickly Generating Billion-Record
// Synthetic Databases" (SIGMOD 1994), which YCSB uses: with
// zeta(n) = sum over i=1..n of 1/i^theta, a uniform u in [0,1) gives rank 0 if
// u*zeta(n) < 1, rank 1 if it is below 1 + 1/2^theta, and otherwise
// n * (eta*u - eta + 1)^(1/(1-theta)), where
// eta = (1 - (2/n)^(1-theta)) / (1 - zeta(2)/zeta(n)). Ranks 0 and 1 are
// exact; the rest follow the distribution closely (the test measures it).
//
// A Zipf is not safe for concurrent use: each worker has its own.
type Zipf struct {
	n      uint64
	theta  float64
	alpha  float64
	zetan  float64
	zeta2  float64
	eta    float64
	half   float64 // 1 + 0.5^theta
	rng    *rand.Rand
	spread uint64 // multiplier of the scrambled ranks (a prime above n)
}

// NewZipf returns a generator of ranks 0..n-1 (n >= 1) drawing from rng.
func NewZipf(rng *rand.Rand, n uint64, theta float64) *Zipf {
	if n < 1 {
		n = 1
	}
	z := &Zipf{theta: theta, alpha: 1 / (1 - theta), rng: rng, spread: 2654435761}
	z.zeta2 = 1 + math.Pow(0.5, theta)
	z.half = z.zeta2
	z.grow(n)
	return z
}

// grow extends the generator to n items (n >= the current n), adding the new
// terms of zeta(n): a generator over a growing key space (YCSB D's latest
// keys) costs one power per new key.
func (z *Zipf) grow(n uint64) {
	for i := z.n + 1; i <= n; i++ {
		z.zetan += 1 / math.Pow(float64(i), z.theta)
	}
	z.n = n
	z.eta = (1 - math.Pow(2/float64(n), 1-z.theta)) / (1 - z.zeta2/z.zetan)
}

// N returns the number of items.
func (z *Zipf) N() uint64 { return z.n }

// Rank returns a rank in 0..n-1: rank 0 is the most frequent.
func (z *Zipf) Rank() uint64 {
	u := z.rng.Float64()
	uz := u * z.zetan
	if uz < 1 || z.n == 1 {
		return 0
	}
	if uz < z.half || z.n == 2 {
		return 1
	}
	r := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if r >= z.n {
		r = z.n - 1
	}
	return r
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
