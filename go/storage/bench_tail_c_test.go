//go:build ccore && cgo

package storage

// BenchmarkCTail: the latency tail of a point read from Go, against its
// floors, in one run: 4 goroutines on GOMAXPROCS Ps (the benchmark
// command's heavy level on 2 cores) each time every call and the
// sub-benchmark reports p50, p99 and p99.9 over all of them:
//
//	go test -tags ccore -run '^$' -bench 'BenchmarkCTail' -benchtime 2000000x ./go/storage/
//
// nop is an empty cgo call; getappend reads a key of the default engine
// (no cache, 1M keys, Zipf-distributed like YCSB) into a reused buffer (no
// allocation, so no garbage collection); get is Engine.Get (its result
// allocated); map-get reads a Go map of the same keys behind a RWMutex,
// the floor a Go peer meets. A tail above map-get's that nop does not have
// comes from the time spent inside C: a thread descheduled there holds the
// call (the Go scheduler cannot preempt it) and, past sysmon's 20 us, loses
// its P.

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func BenchmarkCTail(b *testing.B) {
	e := cBenchFrom(b, cBenchEngineNoCache)
	ctx := context.Background()
	keys := make([]string, cBenchKeys)
	var mu sync.RWMutex
	m := make(map[string]string, cBenchKeys)
	for i := range keys {
		keys[i] = cBenchKey(i)
		m[keys[i]] = cBenchValue
	}
	const workers = 4
	for _, op := range []struct {
		name string
		read func(buf []byte, k string) []byte
	}{
		{"nop", func(buf []byte, _ string) []byte { cNop(); return buf }},
		{"getappend", func(buf []byte, k string) []byte {
			buf, err := e.GetAppend(ctx, buf[:0], k)
			if err != nil {
				panic(err)
			}
			return buf
		}},
		{"get", func(buf []byte, k string) []byte {
			if _, err := e.Get(ctx, k); err != nil {
				panic(err)
			}
			return buf
		}},
		{"map-get", func(buf []byte, k string) []byte {
			mu.RLock()
			v := m[k]
			mu.RUnlock()
			if len(v) == 0 {
				panic("missing " + k)
			}
			return buf
		}},
	} {
		b.Run(op.name, func(b *testing.B) {
			lat := make([][]int64, workers)
			b.ResetTimer()
			runParallelN(b, workers, func(w, n int) {
				z := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 5)), 1.01, 1, uint64(len(keys)-1))
				l := make([]int64, 0, n)
				buf := make([]byte, 0, 256)
				for range n {
					k := keys[z.Uint64()]
					t0 := time.Now()
					buf = op.read(buf, k)
					l = append(l, int64(time.Since(t0)))
				}
				lat[w] = l
			})
			b.StopTimer()
			var all []int64
			for _, l := range lat {
				all = append(all, l...)
			}
			if len(all) < 1000 {
				return
			}
			slices.Sort(all)
			q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) }
			b.ReportMetric(q(0.5), "p50-ns")
			b.ReportMetric(q(0.99), "p99-ns")
			b.ReportMetric(q(0.999), "p99.9-ns")
		})
	}
}
