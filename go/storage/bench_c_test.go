//go:build ccore && cgo

package storage

// Benchmarks of the C engine's cgo layer against its floor, an empty cgo
// call, measured in the same run (the machine is shared and noisy: only
// ratios within one run mean something):
//
//	go test -tags ccore -run '^$' -bench 'BenchmarkC' -benchtime 2s ./go/storage/
//
// BenchmarkCGoCall is the floor. BenchmarkCGetCached reads keys that are
// resident in the cache of an engine holding 1 million keys (16-byte keys,
// 100-byte values) and reports x-cgo-call, its time per Get divided by the
// time of an empty cgo call timed just before it (target: <= 3), and
// c-lookup-ns, the C cache's own time per lookup of the same keys, looped in
// C, and alloc-ns, the time to allocate a 100-byte result buffer alone: a
// Get costs at least cgo-call-ns + c-lookup-ns + alloc-ns.
// BenchmarkCBatchGet100 reports per-key-vs-get, the time per key of a
// 100-key BatchGet divided by a single Get's time in the same benchmark
// (target: <= 0.2). The engine-agnostic benchmarks (every method, both
// engines, mixed workloads) are in bench_test.go.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	cBenchKeys = 1 << 20 // 1 million keys
)

// cBenchKey is the i-th benchmark key: 16 bytes.
func cBenchKey(i int) string { return fmt.Sprintf("key-%012d", i) }

var cBenchValue = strings.Repeat("v", 100)

// cBenchEngine is one engine with a 256 MiB cache and cBenchKeys keys,
// shared by the benchmarks of a run (loading it takes a second or two);
// cBenchEngineNoCache the same keys in an engine without a cache (the
// default).
var (
	cBenchEngine        = sync.OnceValues(func() (*CStorageEngine, error) { return cBenchLoad(256 << 20) })
	cBenchEngineNoCache = sync.OnceValues(func() (*CStorageEngine, error) { return cBenchLoad(0) })
)

func cBenchLoad(cacheSize int64) (*CStorageEngine, error) {
	e := NewCStorageEngine(StorageConfig{CacheSize: cacheSize})
	if err := e.Init(""); err != nil {
		return nil, err
	}
	batch := make(map[string]string, 1024)
	for i := range cBenchKeys {
		batch[cBenchKey(i)] = cBenchValue
		if len(batch) == 1024 {
			if err := e.BatchPut(context.Background(), batch); err != nil {
				return nil, err
			}
			clear(batch)
		}
	}
	return e, nil
}

func cBench(b *testing.B) *CStorageEngine { return cBenchFrom(b, cBenchEngine) }

// cBenchFrom returns the shared engine load makes, failing b if it could not.
func cBenchFrom(b *testing.B, load func() (*CStorageEngine, error)) *CStorageEngine {
	b.Helper()
	e, err := load()
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// floorNs times an empty cgo call (ns per call, best of 3 runs).
func floorNs() float64 {
	best := 0.0
	for range 3 {
		const n = 1 << 20
		start := time.Now()
		for range n {
			cNop()
		}
		ns := float64(time.Since(start).Nanoseconds()) / n
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best
}

// allocSink keeps allocNs's buffers on the heap.
var allocSink []byte

// allocNs times the allocation of a Get's result buffer (n bytes) alone (ns
// per allocation, best of 3 runs): the part of a Get that is neither cgo
// nor C.
func allocNs(n int) float64 {
	best := 0.0
	for range 3 {
		const iters = 1 << 18
		start := time.Now()
		for range iters {
			allocSink = make([]byte, n)
		}
		ns := float64(time.Since(start).Nanoseconds()) / iters
		if best == 0 || ns < best {
			best = ns
		}
	}
	allocSink = nil
	return best
}

// BenchmarkCGoCall: the floor, one empty cgo call.
func BenchmarkCGoCall(b *testing.B) {
	for b.Loop() {
		cNop()
	}
}

// BenchmarkCGetCached: Get of keys resident in the cache, hot sets of 1000
// keys (they stay in the CPU's caches) and 65536 keys (each lookup misses
// the CPU's caches), 1 and 2 goroutines, with the ratio to the floor; and
// the same Gets from the default engine, which has no cache (cache=none:
// its reads go to storage, whose lines for the hot keys are as hot).
func BenchmarkCGetCached(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "cache=256MiB"
		load := cBenchEngine
		if !cached {
			name, load = "cache=none", cBenchEngineNoCache
		}
		b.Run(name, func(b *testing.B) {
			e := cBenchFrom(b, load)
			for _, hot := range []int{1000, 1 << 16} {
				b.Run(fmt.Sprintf("hot=%d", hot), func(b *testing.B) { benchGetCached(b, e, hot) })
			}
		})
	}
}

func benchGetCached(b *testing.B, e *CStorageEngine, hot int) {
	ctx := context.Background()
	keys := make([]string, hot)
	for i := range keys {
		keys[i] = cBenchKey(i * (cBenchKeys / hot))
		if _, err := e.Get(ctx, keys[i]); err != nil { // fill the cache
			b.Fatal(err)
		}
	}
	// The same keys in random order for the C loop, as the Gets pick them.
	var enc []byte
	r := rand.New(rand.NewPCG(3, 3))
	for range 4 * len(keys) {
		k := keys[r.IntN(len(keys))]
		enc = binary.LittleEndian.AppendUint32(enc, uint32(len(k)))
		enc = append(enc, k...)
	}
	_, cache := handlesOf(e)
	// cGetNs times the C cache's own lookups of the same keys, from C, in
	// one cgo call (ns per lookup, best of 3).
	cGetNs := func() float64 {
		best := 0.0
		for range 3 {
			const n = 1 << 19
			start := time.Now()
			if hits := cBenchCacheGet(cache, enc, n); hits != n {
				b.Fatalf("C lookups: %d hits of %d", hits, n)
			}
			ns := float64(time.Since(start).Nanoseconds()) / n
			if best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}
	for _, g := range []int{1, 2} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			floor := floorNs()
			cget := 0.0
			if cache != 0 {
				cget = cGetNs()
			}
			alloc := allocNs(len(cBenchValue))
			s0 := e.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			runParallelN(b, g, func(worker int, n int) {
				r := rand.New(rand.NewPCG(uint64(worker), 1))
				for range n {
					k := keys[r.IntN(len(keys))]
					v, err := e.Get(ctx, k)
					if err != nil || len(v) != len(cBenchValue) {
						panic(fmt.Sprintf("Get(%q) = %d bytes, %v", k, len(v), err))
					}
				}
			})
			b.StopTimer()
			s1 := e.Stats()
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(floor, "cgo-call-ns")
			if cache != 0 {
				b.ReportMetric(cget, "c-lookup-ns")
			}
			b.ReportMetric(alloc, "alloc-ns")
			// Per Get of one goroutine: with g goroutines, wall time per
			// op times g.
			b.ReportMetric(perOp*float64(g)/floor, "x-cgo-call")
			if hits := s1.CacheHits - s0.CacheHits; cache != 0 && b.N > 1000 {
				b.ReportMetric(float64(hits)/float64(b.N), "hit-ratio")
			}
		})
	}
}

// BenchmarkCGetAppend: the allocation-free read (getAppend into a reused
// buffer) of cached keys, 1000 hot keys, one goroutine, with its ratio to an
// empty cgo call timed just before (x-cgo-call) and its allocations per
// read (target: 0). Get of the same keys is timed in the same benchmark
// (get-x-cgo-call), so the cost of the result's allocation shows.
func BenchmarkCGetAppend(b *testing.B) {
	e := cBench(b)
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = cBenchKey(i * (cBenchKeys / len(keys)))
		if _, err := e.Get(ctx, keys[i]); err != nil { // fill the cache
			b.Fatal(err)
		}
	}
	floor := floorNs()
	getNs := func() float64 {
		best := 0.0
		for range 3 {
			const n = 1 << 18
			r := rand.New(rand.NewPCG(5, 5))
			start := time.Now()
			for range n {
				if _, err := e.Get(ctx, keys[r.IntN(len(keys))]); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / n
			if best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}()
	buf := make([]byte, 0, 256)
	r := rand.New(rand.NewPCG(5, 5))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		v, err := e.getAppend(ctx, buf[:0], keys[r.IntN(len(keys))])
		if err != nil || len(v) != len(cBenchValue) {
			b.Fatalf("getAppend: %d bytes, %v", len(v), err)
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(floor, "cgo-call-ns")
	b.ReportMetric(perOp/floor, "x-cgo-call")
	b.ReportMetric(getNs/floor, "get-x-cgo-call")
}

// BenchmarkCBatchGet100: BatchGet of 100 random keys of the 1 million (the
// default engine: no cache), with the time per key relative to a single Get
// of the same keys timed in the same benchmark.
func BenchmarkCBatchGet100(b *testing.B) {
	e := cBenchFrom(b, cBenchEngineNoCache) // the default: no cache
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	const sets = 256
	keySets := make([][]string, sets)
	for i := range keySets {
		keySets[i] = make([]string, 100)
		for j := range keySets[i] {
			keySets[i][j] = cBenchKey(r.IntN(cBenchKeys))
		}
	}
	// Single Gets of the same keys (in the CPU's caches after the first
	// pass, as far as they fit: the best case for Get).
	for _, ks := range keySets {
		for _, k := range ks {
			e.Get(ctx, k)
		}
	}
	start := time.Now()
	gets := 0
	for round := 0; time.Since(start) < 200*time.Millisecond; round++ {
		for _, k := range keySets[round%sets] {
			if _, err := e.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
			gets++
		}
	}
	getNs := float64(time.Since(start).Nanoseconds()) / float64(gets)
	// The floor of the interface: building the result map of 100 entries
	// alone (ns per key, best of 3), which BatchGet must do whatever the
	// engine.
	mapNs := 0.0
	for range 3 {
		const rounds = 2000
		t0 := time.Now()
		for i := range rounds {
			m := make(map[string]string, 100)
			for _, k := range keySets[i%sets] {
				m[k] = k
			}
			mapSink = m
		}
		if ns := float64(time.Since(t0).Nanoseconds()) / rounds / 100; mapNs == 0 || ns < mapNs {
			mapNs = ns
		}
	}
	mapSink = nil
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m, err := e.BatchGet(ctx, keySets[i%sets])
		if err != nil || len(m) == 0 {
			b.Fatalf("BatchGet: %d keys, %v", len(m), err)
		}
		i++
	}
	perKey := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 100
	b.ReportMetric(perKey, "ns/key")
	b.ReportMetric(getNs, "get-ns")
	b.ReportMetric(perKey/getNs, "per-key-vs-get")
	b.ReportMetric(mapNs, "map-ns/key")
}

// mapSink keeps BenchmarkCBatchGet100's floor maps on the heap.
var mapSink map[string]string

// BenchmarkCWritePolicy: the coherence protocol's write policies compared
// in the same run: 4 goroutines (more than the 2 cores) over 200,000 keys
// with a cache that holds about a fifth of them. "mixed": loops of 1 Put
// and 3 Gets of keys drawn from a skewed distribution (a hot tenth of the
// keys gets 90% of the operations); "writes": Puts of uniformly random
// keys. Reports ns/op (per operation of all goroutines) and the hit ratio
// of the Gets.
func BenchmarkCWritePolicy(b *testing.B) {
	ctx := context.Background()
	const keys = 200000
	for _, p := range []struct {
		name   string
		policy int
	}{{"if-cached", 0}, {"always", 1}, {"never", 2}} {
		for _, mix := range []string{"mixed", "writes"} {
			b.Run(mix+"/"+p.name, func(b *testing.B) {
				cSetWritePolicy(p.policy)
				defer cSetWritePolicy(0)
				e := NewCStorageEngine(StorageConfig{CacheSize: keys / 5 * 200})
				if err := e.Init(""); err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				batch := make(map[string]string, 1024)
				for i := range keys {
					batch[cBenchKey(i)] = cBenchValue
					if len(batch) == 1024 || i == keys-1 {
						if err := e.BatchPut(ctx, batch); err != nil {
							b.Fatal(err)
						}
						clear(batch)
					}
				}
				s0 := e.Stats()
				b.ResetTimer()
				runParallelN(b, 4, func(worker, n int) {
					r := rand.New(rand.NewPCG(uint64(worker), 9))
					for i := range n {
						k := r.IntN(keys / 10)
						if mix == "writes" || r.IntN(10) == 0 {
							k = r.IntN(keys)
						}
						var err error
						if mix == "writes" || i%4 == 0 {
							err = e.Put(ctx, cBenchKey(k), cBenchValue)
						} else {
							_, err = e.Get(ctx, cBenchKey(k))
						}
						if err != nil {
							panic(err)
						}
					}
				})
				b.StopTimer()
				s1 := e.Stats()
				if h, m := s1.CacheHits-s0.CacheHits, s1.CacheMisses-s0.CacheMisses; h+m > 0 {
					b.ReportMetric(float64(h)/float64(h+m), "hit-ratio")
				}
			})
		}
	}
}

// BenchmarkCIterate: a full scan of the 1 million keys, in entries per
// second (target: >= 5 million).
func BenchmarkCIterate(b *testing.B) {
	e := cBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	entries := 0
	for b.Loop() {
		it, err := e.NewIterator(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for it.Next() {
			n++
		}
		if err := it.Error(); err != nil || n != cBenchKeys {
			b.Fatalf("scanned %d, %v", n, err)
		}
		it.Close()
		entries += n
	}
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

// runParallelN splits b.N operations over g goroutines and waits for them.
func runParallelN(b *testing.B, g int, f func(worker, n int)) {
	var wg sync.WaitGroup
	for w := range g {
		n := b.N / g
		if w < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w, n)
		}()
	}
	wg.Wait()
}
