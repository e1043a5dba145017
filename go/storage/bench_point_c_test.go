//go:build ccore && cgo

package storage

// Where a point operation's time goes, from Go (docs/performance/go-cengine.md,
// session 3): one engine of 20,000 keys (the benchmark command's light
// level: everything resident in the cache and the CPU's caches), one
// goroutine, and in the same sub-benchmark the floor of every part:
//
//	go test -tags ccore -run '^$' -bench 'BenchmarkCPointParts' -benchtime 1s ./go/storage/
//
// Sub-benchmarks: nop (an empty cgo call), get (Engine.Get of the default
// engine, which has no cache: the storage read and its result allocation),
// get-cache (the same with a 64 MiB cache holding every key: the coherent
// read), getappend (get into a reused buffer: no allocation), put (an
// overwrite, default engine), put-cache and put-cached (the same with a
// cache, of a key that is not cached and of one that is: the coherent
// write), put-raw (the same write as a one-record mantis_db_write: the
// storage write alone, no cache), dram-miss (one dependent load from
// 128 MiB) and map-get/map-put (a Go map behind a RWMutex, the floor a Go
// peer meets).

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"unsafe"
)

const pointKeys = 20_000

// dramSink keeps the dram-miss walk from being optimised away.
var dramSink uint32

// cPointEngine is an in-memory C engine (with a cache of cacheSize bytes if
// positive) holding pointKeys keys (cBenchKey, cBenchValue), put one by one;
// the caller closes it.
func cPointEngine(b *testing.B, cacheSize int64) (*CStorageEngine, []string) {
	b.Helper()
	e := NewCStorageEngine(StorageConfig{CacheSize: cacheSize})
	if err := e.Init(""); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, pointKeys)
	for i := range keys {
		keys[i] = cBenchKey(i)
		if err := e.Put(context.Background(), keys[i], cBenchValue); err != nil {
			e.Close()
			b.Fatal(err)
		}
	}
	return e, keys
}

func BenchmarkCPointParts(b *testing.B) {
	ctx := context.Background()
	e, keys := cPointEngine(b, 0)
	defer e.Close()
	st, _ := e.state()
	rng := rand.New(rand.NewPCG(1, 2))
	idx := make([]int, 1<<16)
	for i := range idx {
		idx[i] = rng.IntN(pointKeys)
	}
	b.Run("nop", func(b *testing.B) {
		for b.Loop() {
			cNop()
		}
	})
	b.Run("get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := e.Get(ctx, keys[idx[i&(len(idx)-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("get-cache", func(b *testing.B) {
		ce, _ := cPointEngine(b, 64<<20)
		defer ce.Close()
		for _, k := range keys {
			if _, err := ce.Get(ctx, k); err != nil { // cached from now on
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			if _, err := ce.Get(ctx, keys[idx[i&(len(idx)-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("getappend", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		i := 0
		for b.Loop() {
			var err error
			if buf, err = e.GetAppend(ctx, buf[:0], keys[idx[i&(len(idx)-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// Puts on engines of their own: "put" without a cache, "put-cache"
	// writes keys no one read (not cached: the write policy only removes
	// them), "put-cached" keys all read once before (cached: each write
	// replaces its entry).
	for _, p := range []struct {
		name   string
		cache  int64
		cached bool
	}{{"put", 0, false}, {"put-cache", 64 << 20, false}, {"put-cached", 64 << 20, true}} {
		cached := p.cached
		b.Run(p.name, func(b *testing.B) {
			pe := NewCStorageEngine(StorageConfig{CacheSize: p.cache})
			if err := pe.Init(""); err != nil {
				b.Fatal(err)
			}
			defer pe.Close()
			for _, k := range keys {
				if err := pe.Put(ctx, k, cBenchValue); err != nil {
					b.Fatal(err)
				}
				if cached {
					if _, err := pe.Get(ctx, k); err != nil {
						b.Fatal(err)
					}
				}
			}
			i := 0
			for b.Loop() {
				if err := pe.Put(ctx, keys[idx[i&(len(idx)-1)]], cBenchValue); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	b.Run("put-raw", func(b *testing.B) {
		bt := getBatch(256)
		i := 0
		for b.Loop() {
			bt.buf = bt.buf[:0]
			bt.add(cOpPut, keys[idx[i&(len(idx)-1)]], cBenchValue)
			if rc, _ := cWriteRaw(st.db, bt.buf); rc != cOK {
				b.Fatal(cError("put-raw", rc))
			}
			i++
		}
	})
	b.Run("dram-miss", func(b *testing.B) {
		// One dependent load from a random place in 128 MiB (beyond the
		// last-level cache): a random cycle (Sattolo's shuffle) walked
		// one hop per iteration.
		next := make([]uint32, 32<<20)
		for i := range next {
			next[i] = uint32(i)
		}
		for i := len(next) - 1; i > 0; i-- {
			j := rng.IntN(i)
			next[i], next[j] = next[j], next[i]
		}
		p := uint32(0)
		for b.Loop() {
			p = next[p]
		}
		dramSink = p
	})
	var mu sync.RWMutex
	m := make(map[string]string, pointKeys)
	for _, k := range keys {
		m[k] = cBenchValue
	}
	b.Run("map-get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			mu.RLock()
			_, ok := m[keys[idx[i&(len(idx)-1)]]]
			mu.RUnlock()
			if !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("map-put", func(b *testing.B) {
		i := 0
		for b.Loop() {
			mu.Lock()
			m[keys[idx[i&(len(idx)-1)]]] = cBenchValue
			mu.Unlock()
			i++
		}
	})
}

// BenchmarkCBatchGetParts: BatchGet of 100 keys of the same 20,000 (the
// default engine: no cache) against its parts, each timed alone per key: get
// (a single Get of the same keys), batchget (the whole BatchGet), c-multiget (the one cgo call that
// fills one reused buffer: the C lookups and copies), map (building a
// pre-sized 100-entry map[string]string from that buffer, as BatchGet does:
// the interface's floor).
func BenchmarkCBatchGetParts(b *testing.B) {
	ctx := context.Background()
	e, keys := cPointEngine(b, 0)
	defer e.Close()
	for _, k := range keys {
		if _, err := e.Get(ctx, k); err != nil { // in the CPU's caches from now on
			b.Fatal(err)
		}
	}
	st, _ := e.state()
	rng := rand.New(rand.NewPCG(3, 4))
	const sets = 256
	keySets := make([][]string, sets)
	encoded := make([][]byte, sets)
	for i := range keySets {
		keySets[i] = make([]string, 100)
		for j := range keySets[i] {
			k := keys[rng.IntN(pointKeys)]
			keySets[i][j] = k
			encoded[i] = binary.LittleEndian.AppendUint32(encoded[i], uint32(len(k)))
			encoded[i] = append(encoded[i], k...)
		}
	}
	perKey := func(b *testing.B) { b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/key") }
	b.Run("get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			for _, k := range keySets[i%sets] {
				if _, err := e.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
			i++
		}
		perKey(b)
	})
	b.Run("batchget", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if m, err := e.BatchGet(ctx, keySets[i%sets]); err != nil || len(m) == 0 {
				b.Fatal(len(m), err)
			}
			i++
		}
		perKey(b)
	})
	out := make([]byte, 100*(4+len(cBenchValue)))
	b.Run("c-multiget", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if rc, _ := cMultiGet(st.db, st.cache, encoded[i%sets], 100, out); rc != cOK {
				b.Fatal(cError("multiget", rc))
			}
			i++
		}
		perKey(b)
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m := make(map[string]string, 100)
			off := 0
			for _, k := range keySets[i%sets] {
				n := int(binary.LittleEndian.Uint32(out[off:]))
				m[k] = unsafe.String(&out[off+4], n)
				off += 4 + n
			}
			mapSink = m
			i++
		}
		perKey(b)
	})
	mapSink = nil
}
