package storage

// Benchmarks of every method on every engine in testEngines, at 1 million
// keys (16-byte keys, 100-byte values), with 1 and 2 goroutines:
//
//	go test -run XXX -bench . -benchtime 1s ./go/storage
//	go test -run XXX -bench 'Engines/purego/Mixed' ./go/storage
//
// Names: BenchmarkEngines/<engine>/<operation>/g<goroutines>. The dataset of
// an engine is built once, lazily, by the first of its benchmarks that runs
// (so `go test` without -bench, or a -bench that matches none of them, pays
// nothing), and released before the next engine's benchmarks, so that the
// Go heap measured for one engine does not hold another's data.
// MANTIS_BENCH_KEYS overrides the number of keys (default 1000000).
//
// ns/op is wall time divided by the operations of all goroutines, so with
// 2 goroutines it is the inverse of the combined throughput (ops/s is
// reported too). Writes overwrite existing keys with fresh 100-byte values,
// so the dataset stays at the same size; Delete and BatchDelete delete keys
// of an extra pool inserted (untimed) before their timed loop.
//
// Extra metrics: ops/s; ns/key for BatchGet; entries/s for iteration; for
// Mixed (50% Get, 50% Put of random keys) p99-ns (the 99th percentile of
// per-operation latency, sampled on 1 operation in 8), heap-MB (HeapInuse
// after a GC at the end) and engine-heap-MB (heap-MB minus the HeapInuse
// measured before the engine's dataset was built: the engine's own share).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchKeyLen = 16
	benchValLen = 100
)

// benchKeyCount is the dataset size: MANTIS_BENCH_KEYS or 1 million.
func benchKeyCount() int {
	if n, err := strconv.Atoi(os.Getenv("MANTIS_BENCH_KEYS")); err == nil && n >= 1000 {
		return n
	}
	return 1_000_000
}

// benchKey formats key i: "key:" and 12 digits, 16 bytes.
func benchKey(buf *[benchKeyLen]byte, i int) {
	copy(buf[:], "key:000000000000")
	for p := benchKeyLen - 1; i > 0 && p >= 4; p-- {
		buf[p] = byte('0' + i%10)
		i /= 10
	}
}

// benchValue returns a fresh 100-byte value for key i and version ver (a
// new allocation, as a value received from a client would be).
func benchValue(i, ver int) string {
	var buf [benchValLen]byte
	for p := range buf {
		buf[p] = byte('a' + (p+i+ver)%26)
	}
	for p := 0; p < 8; p++ {
		buf[p] = byte(i >> (8 * p))
		buf[8+p] = byte(ver >> (8 * p))
	}
	return string(buf[:])
}

// benchData is one engine loaded with the dataset.
type benchData struct {
	te       testEngine
	e        Engine
	keys     []string // keys[i] is key i (substrings of one allocation)
	n        int
	baseHeap uint64 // HeapInuse before the engine's dataset was built
}

// heapInuse returns HeapInuse after a full GC.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// benchKeys returns the n keys, built once for all engines (they are part
// of the harness's heap, not of any engine's).
var benchKeys = sync.OnceValue(func() []string {
	n := benchKeyCount()
	all := make([]byte, 0, n*benchKeyLen)
	var buf [benchKeyLen]byte
	for i := range n {
		benchKey(&buf, i)
		all = append(all, buf[:]...)
	}
	s := string(all)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = s[i*benchKeyLen : (i+1)*benchKeyLen]
	}
	return keys
})

// loadBench builds te's dataset.
func loadBench(b *testing.B, te testEngine) *benchData {
	b.Helper()
	keys := benchKeys()
	d := &benchData{te: te, keys: keys, n: len(keys), baseHeap: heapInuse()}
	d.e = te.new(StorageConfig{})
	if err := d.e.Init(""); err != nil {
		b.Fatal(err)
	}
	const chunk = 10000
	for lo := 0; lo < d.n; lo += chunk {
		kv := make(map[string]string, chunk)
		for i := lo; i < min(lo+chunk, d.n); i++ {
			kv[keys[i]] = benchValue(i, 0)
		}
		if err := d.e.BatchPut(context.Background(), kv); err != nil {
			b.Fatal(err)
		}
	}
	if s := d.e.Stats(); s.Entries != uint64(d.n) {
		b.Fatalf("dataset holds %d entries, want %d", s.Entries, d.n)
	}
	return d
}

// rng is a per-goroutine xorshift generator.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// deletePool is the number of keys deleted per round of the delete
// benchmarks: the pool they delete from is refilled (untimed) between rounds,
// so the engine never holds more than the dataset plus deletePool keys.
const deletePool = 100_000

// runRounds is runG for benchmarks that need an untimed preparation: the
// b.N operations are cut into rounds of at most round operations; before
// each round, with the timer stopped, prepare(lo, hi) readies operations
// lo..hi-1 of the round (numbered from 0 within the round); then the g
// goroutines run body on them. It reports ops/s.
func runRounds(b *testing.B, g, round int, prepare func(lo, hi int), body func(w, lo, hi int)) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	var el time.Duration
	for done := 0; done < b.N; {
		n := min(round, b.N-done)
		b.StopTimer()
		prepare(0, n)
		b.StartTimer()
		start := time.Now()
		if g == 1 {
			body(0, 0, n)
		} else {
			var wg sync.WaitGroup
			per := n / g
			for w := range g {
				lo, hi := w*per, (w+1)*per
				if w == g-1 {
					hi = n
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					body(w, lo, hi)
				}()
			}
			wg.Wait()
		}
		el += time.Since(start)
		done += n
	}
	b.StopTimer()
	if el > 0 {
		b.ReportMetric(float64(b.N)/el.Seconds(), "ops/s")
	}
}

// runG runs body on g goroutines that share b.N operations between them;
// body(w, lo, hi) performs operations lo..hi-1 as worker w. It reports ops/s.
func runG(b *testing.B, g int, body func(w, lo, hi int)) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	if g == 1 {
		body(0, 0, b.N)
	} else {
		var wg sync.WaitGroup
		per := b.N / g
		for w := range g {
			lo, hi := w*per, (w+1)*per
			if w == g-1 {
				hi = b.N
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				body(w, lo, hi)
			}()
		}
		wg.Wait()
	}
	el := time.Since(start)
	b.StopTimer()
	if el > 0 {
		b.ReportMetric(float64(b.N)/el.Seconds(), "ops/s")
	}
}

// benchOp is one benchmarked operation.
type benchOp struct {
	name string
	run  func(b *testing.B, d *benchData, g int)
}

func BenchmarkEngines(b *testing.B) {
	for _, te := range testEngines {
		var d *benchData
		b.Run(te.name, func(b *testing.B) {
			for _, op := range benchOps {
				b.Run(op.name, func(b *testing.B) {
					for _, g := range []int{1, 2} {
						b.Run("g"+strconv.Itoa(g), func(b *testing.B) {
							if d == nil {
								b.StopTimer()
								d = loadBench(b, te)
								b.StartTimer()
							}
							op.run(b, d, g)
						})
					}
				})
			}
		})
		if d != nil {
			d.e.Close()
			d = nil
		}
	}
}

var ctxB = context.Background()

// fail reports an unexpected error from a benchmark goroutine.
func fail(b *testing.B, what string, err error) {
	b.Errorf("%s: %v", what, err)
	runtime.Goexit()
}

var benchOps = []benchOp{
	// Mixed: 50% Get, 50% Put of random keys, with p99 latency and heap.
	{"Mixed", func(b *testing.B, d *benchData, g int) {
		samples := make([][]int64, g)
		runG(b, g, func(w, lo, hi int) {
			r := rng(0xfeed + uint64(w))
			lat := make([]int64, 0, (hi-lo)/8+1)
			for i := lo; i < hi; i++ {
				sample := i&7 == 0
				var t0 time.Time
				if sample {
					t0 = time.Now()
				}
				k := r.intn(d.n)
				if r.next()&1 == 0 {
					if _, err := d.e.Get(ctxB, d.keys[k]); err != nil {
						fail(b, "Get", err)
					}
				} else if err := d.e.Put(ctxB, d.keys[k], benchValue(k, i)); err != nil {
					fail(b, "Put", err)
				}
				if sample {
					lat = append(lat, int64(time.Since(t0)))
				}
			}
			samples[w] = lat
		})
		all := slices.Concat(samples...)
		samples = nil
		if len(all) > 0 {
			slices.Sort(all)
			b.ReportMetric(float64(all[(len(all)*99)/100]), "p99-ns")
		}
		all = nil
		h := heapInuse()
		b.ReportMetric(float64(h)/(1<<20), "heap-MB")
		b.ReportMetric((float64(h)-float64(d.baseHeap))/(1<<20), "engine-heap-MB")
	}},
	{"Get", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x9e3779b97f4a7c15 + uint64(w))
			for i := lo; i < hi; i++ {
				if _, err := d.e.Get(ctxB, d.keys[r.intn(d.n)]); err != nil {
					fail(b, "Get", err)
				}
			}
		})
	}},
	// GetHot reads 1000 keys over and over: in the C engine, cached keys.
	{"GetHot", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x51ed27 + uint64(w))
			for i := lo; i < hi; i++ {
				if _, err := d.e.Get(ctxB, d.keys[r.intn(1000)]); err != nil {
					fail(b, "Get", err)
				}
			}
		})
	}},
	{"GetMissing", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x1234567 + uint64(w))
			missing := make([]string, 1024)
			for j := range missing {
				missing[j] = d.keys[r.intn(d.n)][:benchKeyLen-1] + "x"
			}
			for i := lo; i < hi; i++ {
				if _, err := d.e.Get(ctxB, missing[i&1023]); err != ErrNotFound {
					fail(b, "Get missing", err)
				}
			}
		})
	}},
	{"Put", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0xabcdef + uint64(w))
			for i := lo; i < hi; i++ {
				k := r.intn(d.n)
				if err := d.e.Put(ctxB, d.keys[k], benchValue(k, i)); err != nil {
					fail(b, "Put", err)
				}
			}
		})
	}},
	{"PutWithTTL", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				k := i % d.n
				if err := d.e.PutWithTTL(ctxB, d.keys[k], benchValue(k, i), time.Hour); err != nil {
					fail(b, "PutWithTTL", err)
				}
			}
		})
		// Untimed: give the keys back their plain (no TTL) values.
		restore(b, d, 0, min(b.N, d.n))
	}},
	{"BatchPut100", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x777 + uint64(w))
			kv := make(map[string]string, 100)
			for i := lo; i < hi; i++ {
				clear(kv)
				for range 100 {
					k := r.intn(d.n)
					kv[d.keys[k]] = benchValue(k, i)
				}
				if err := d.e.BatchPut(ctxB, kv); err != nil {
					fail(b, "BatchPut", err)
				}
			}
		})
	}},
	{"BatchGet100", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x999 + uint64(w))
			keys := make([]string, 100)
			for i := lo; i < hi; i++ {
				for j := range keys {
					keys[j] = d.keys[r.intn(d.n)]
				}
				m, err := d.e.BatchGet(ctxB, keys)
				if err != nil || len(m) == 0 {
					fail(b, "BatchGet", err)
				}
			}
		})
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/key")
	}},
	// IterateAll walks all keys: NewIterator, Next over every entry, Close.
	{"IterateAll", func(b *testing.B, d *benchData, g int) {
		var entries atomic.Int64
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				entries.Add(int64(iterate(b, d.e, "")))
			}
		})
		if entries.Load() != int64(b.N)*int64(d.n) {
			b.Fatalf("iterated %d entries, want %d", entries.Load(), int64(b.N)*int64(d.n))
		}
		b.ReportMetric(float64(entries.Load())/b.Elapsed().Seconds(), "entries/s")
	}},
	// IteratePrefix100 walks the 100 keys under a random prefix.
	{"IteratePrefix100", func(b *testing.B, d *benchData, g int) {
		var entries atomic.Int64
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x3141 + uint64(w))
			for i := lo; i < hi; i++ {
				p := d.keys[r.intn(d.n)][:benchKeyLen-2]
				entries.Add(int64(iterate(b, d.e, p)))
			}
		})
		b.ReportMetric(float64(entries.Load())/b.Elapsed().Seconds(), "entries/s")
	}},
	// Transaction: BeginTransaction, Get, Put, Commit (read-modify-write of
	// a random key); conflicts (2 goroutines) are counted, not retried.
	{"Transaction", func(b *testing.B, d *benchData, g int) {
		var conflicts atomic.Int64
		runG(b, g, func(w, lo, hi int) {
			r := rng(0x2718 + uint64(w))
			for i := lo; i < hi; i++ {
				k := r.intn(d.n)
				txn, err := d.e.BeginTransaction(ctxB)
				if err != nil {
					fail(b, "BeginTransaction", err)
				}
				if _, err := txn.Get(d.keys[k]); err != nil {
					fail(b, "txn Get", err)
				}
				if err := txn.Put(d.keys[k], benchValue(k, i)); err != nil {
					fail(b, "txn Put", err)
				}
				if err := txn.Commit(); errors.Is(err, ErrConflict) {
					conflicts.Add(1)
				} else if err != nil {
					fail(b, "Commit", err)
				}
			}
		})
		b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
	}},
	{"BeginRollback", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				txn, err := d.e.BeginTransaction(ctxB)
				if err != nil {
					fail(b, "BeginTransaction", err)
				}
				if err := txn.Rollback(); err != nil {
					fail(b, "Rollback", err)
				}
			}
		})
	}},
	{"Delete", func(b *testing.B, d *benchData, g int) {
		var pool []string
		runRounds(b, g, deletePool, func(lo, hi int) {
			pool = fillPool(b, d, "del", hi-lo)
		}, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				if err := d.e.Delete(ctxB, pool[i]); err != nil {
					fail(b, "Delete", err)
				}
			}
		})
	}},
	{"BatchDelete100", func(b *testing.B, d *benchData, g int) {
		var pool []string
		runRounds(b, g, deletePool/100, func(lo, hi int) {
			pool = fillPool(b, d, "bdel", 100*(hi-lo))
		}, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				if err := d.e.BatchDelete(ctxB, pool[100*i:100*i+100]); err != nil {
					fail(b, "BatchDelete", err)
				}
			}
		})
	}},
	{"HealthCheck", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				if err := d.e.HealthCheck(ctxB); err != nil {
					fail(b, "HealthCheck", err)
				}
			}
		})
	}},
	{"Stats", func(b *testing.B, d *benchData, g int) {
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				if s := d.e.Stats(); s.Entries == 0 {
					fail(b, "Stats", fmt.Errorf("no entries"))
				}
			}
		})
	}},
	// InitClose opens and closes an empty engine (not the dataset's).
	{"InitClose", func(b *testing.B, d *benchData, g int) {
		te := d.te
		runG(b, g, func(w, lo, hi int) {
			for i := lo; i < hi; i++ {
				e := te.new(StorageConfig{})
				if err := e.Init(""); err != nil {
					fail(b, "Init", err)
				}
				if err := e.Close(); err != nil {
					fail(b, "Close", err)
				}
			}
		})
	}},
}

// iterate walks the keys with prefix and returns how many there were.
func iterate(b *testing.B, e Engine, prefix string) int {
	it, err := e.NewIterator(ctxB, prefix)
	if err != nil {
		fail(b, "NewIterator", err)
	}
	n := 0
	for it.Next() {
		if len(it.Key()) != benchKeyLen || len(it.Value()) != benchValLen {
			fail(b, "iterator", fmt.Errorf("entry %q has a %d-byte value", it.Key(), len(it.Value())))
		}
		n++
	}
	if err := it.Error(); err != nil {
		fail(b, "iterator", err)
	}
	it.Close()
	return n
}

// fillPool inserts n extra keys for the delete benchmarks and returns them.
// runRounds calls it with the timer stopped.
func fillPool(b *testing.B, d *benchData, tag string, n int) []string {
	pool := make([]string, n)
	kv := make(map[string]string, 10000)
	for i := range pool {
		pool[i] = fmt.Sprintf("%s:%0*d", tag, benchKeyLen-len(tag)-1, i)
		kv[pool[i]] = benchValue(i, 1)
		if len(kv) == 10000 || i == n-1 {
			if err := d.e.BatchPut(ctxB, kv); err != nil {
				b.Fatal(err)
			}
			clear(kv)
		}
	}
	return pool
}

// restore rewrites keys lo..hi-1 with plain values (untimed: after runG).
func restore(b *testing.B, d *benchData, lo, hi int) {
	b.StopTimer()
	kv := make(map[string]string, 10000)
	for i := lo; i < hi; i++ {
		kv[d.keys[i]] = benchValue(i, 0)
		if len(kv) == 10000 || i == hi-1 {
			if err := d.e.BatchPut(ctxB, kv); err != nil {
				b.Fatal(err)
			}
			clear(kv)
		}
	}
}
