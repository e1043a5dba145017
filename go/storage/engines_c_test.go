//go:build ccore && cgo

package storage

// Tests of the C engine beyond the shared conformance suite (which runs
// against it through testEngines): handles and C memory after Close, Close
// racing iterators and transactions, the cleanup backstop, the cache-aside
// protocol under a hammer with tiny caches, the size-guessing copy-out
// paths, error mapping, and allocation counts.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCacheSize is the cache of the "c-cache" test engine and of the tests
// of the cache's part in the C engine (the engine has none by default).
const testCacheSize = 64 << 20

func init() {
	testEngines = append(testEngines,
		testEngine{"c", func(c StorageConfig) Engine { return NewCStorageEngine(c) }},
		// The same engine with the coherent cache in front of its db:
		// every shared test runs through both paths.
		testEngine{"c-cache", func(c StorageConfig) Engine {
			if c.CacheSize == 0 {
				c.CacheSize = testCacheSize
			}
			return NewCStorageEngine(c)
		}})
}

// openC returns an initialised C engine closed at the end of the test.
func openC(t testing.TB, cfg StorageConfig) *CStorageEngine {
	t.Helper()
	e := NewCStorageEngine(cfg)
	if err := e.Init(""); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// handlesOf returns the engine's db and cache handles (0, 0 if not open).
func handlesOf(e *CStorageEngine) (db, cache uint64) {
	if st := e.st.Load(); st != nil {
		return st.db, st.cache
	}
	return 0, 0
}

// mustClosedHandle fails unless closing h (again) reports MANTIS_CLOSED,
// which the handle table returns only for a handle that was closed.
func mustClosedHandle(t *testing.T, what string, rc int) {
	t.Helper()
	if rc != cClosed {
		t.Fatalf("%s: got C code %d (%s), want MANTIS_CLOSED", what, rc, cStrerror(rc))
	}
}

// TestCCloseReleasesHandles: Close closes the db, the cache, and the
// handles of open iterators and unfinished transactions, and the C core
// destroys them (the process's open handle count returns to where it was).
func TestCCloseReleasesHandles(t *testing.T) {
	// Other tests' engines may be collected (and their cleanups close
	// handles) while this runs: retry the count check a few times; the
	// per-handle checks are exact.
	for attempt := 0; ; attempt++ {
		runtime.GC()
		before := cHandleOpenCount()
		e := NewCStorageEngine(StorageConfig{CacheSize: testCacheSize})
		mustIs(t, "Init", e.Init(""), nil)
		for i := range 3000 {
			mustIs(t, "Put", e.Put(bg, pad(i), strings.Repeat("v", i%200)), nil)
		}
		db, cache := handlesOf(e)
		it1, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		if !it1.Next() {
			t.Fatal("iterator is empty")
		}
		it2, err := e.NewIterator(bg, pad(1))
		mustIs(t, "NewIterator", err, nil)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		_, err = txn.Get(pad(5))
		mustIs(t, "txn Get", err, nil)
		ih1, ih2, snap := it1.(*cIter).h, it2.(*cIter).h, txn.(*cTxn).snap
		open := cHandleOpenCount()

		mustIs(t, "Close", e.Close(), nil)
		after := cHandleOpenCount()

		mustClosedHandle(t, "db", cDBClose(db))
		mustClosedHandle(t, "cache", cCacheClose(cache))
		mustClosedHandle(t, "iterator 1", cIterClose(ih1))
		mustClosedHandle(t, "iterator 2", cIterClose(ih2))
		mustClosedHandle(t, "snapshot", cSnapshotClose(snap))

		// They fail cleanly afterwards.
		if it1.Next() || !errors.Is(it1.Error(), ErrClosed) {
			t.Fatalf("iterator after Close: Error() = %v, want ErrClosed", it1.Error())
		}
		if it2.Next() || !errors.Is(it2.Error(), ErrClosed) {
			t.Fatalf("iterator after Close: Error() = %v, want ErrClosed", it2.Error())
		}
		_, err = txn.Get(pad(6))
		mustIs(t, "txn Get after Close", err, ErrClosed)
		mustIs(t, "Commit after Close", txn.Commit(), ErrClosed)
		mustIs(t, "iterator Close", it1.Close(), nil)
		mustIs(t, "iterator Close", it2.Close(), nil)
		mustIs(t, "second Close", e.Close(), nil)

		if open == before+5 && after == before {
			return
		}
		if attempt == 4 {
			t.Fatalf("open C handles: %d before, %d with the engine, %d after Close; want %d, %d, %d",
				before, open, after, before, before+5, before)
		}
	}
}

// TestCIteratorReleasesAtEnd: an iterator releases its C handle (and
// snapshot) as soon as it reaches the end, before Close.
func TestCIteratorReleasesAtEnd(t *testing.T) {
	e := openC(t, StorageConfig{})
	for i := range 10 {
		mustIs(t, "Put", e.Put(bg, pad(i), "v"), nil)
	}
	it, err := e.NewIterator(bg, "")
	mustIs(t, "NewIterator", err, nil)
	h := it.(*cIter).h
	n := 0
	for it.Next() {
		n++
	}
	if n != 10 || it.Error() != nil {
		t.Fatalf("iterated %d entries, error %v; want 10, nil", n, it.Error())
	}
	mustClosedHandle(t, "exhausted iterator", cIterClose(h))
	mustIs(t, "Close", it.Close(), nil)
	e.res.mu.Lock()
	left := len(e.res.open)
	e.res.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d handles still registered", left)
	}
}

// TestCCloseRacesIteratorsAndTransactions: goroutines iterate and run
// transactions while the engine closes. Every call returns a value or
// ErrClosed (or ErrConflict), never crashes; the race detector watches the
// Go side, the handle table the C side.
func TestCCloseRacesIteratorsAndTransactions(t *testing.T) {
	for round := range scaled(30, 4) {
		e := NewCStorageEngine(StorageConfig{})
		mustIs(t, "Init", e.Init(""), nil)
		for i := range 2000 {
			mustIs(t, "Put", e.Put(bg, pad(i), strings.Repeat("x", 50)), nil)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		started := make(chan struct{}, 4)
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started <- struct{}{}
				for i := 0; ; i++ {
					if g%2 == 0 {
						it, err := e.NewIterator(bg, "")
						if errors.Is(err, ErrClosed) {
							return
						}
						if err != nil {
							errc <- err
							return
						}
						n := 0
						for it.Next() {
							if len(it.Value()) != 50 {
								errc <- fmt.Errorf("iterator value %q", it.Value())
							}
							n++
						}
						err = it.Error()
						it.Close()
						if errors.Is(err, ErrClosed) {
							return
						}
						if err != nil || n != 2000 {
							errc <- fmt.Errorf("iterated %d entries, error %v", n, err)
							return
						}
						continue
					}
					txn, err := e.BeginTransaction(bg)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						errc <- err
						return
					}
					k := pad(i % 2000)
					if _, err := txn.Get(k); err != nil && !errors.Is(err, ErrClosed) {
						errc <- fmt.Errorf("txn Get: %w", err)
						return
					}
					txn.Put(k, strings.Repeat("y", 50))
					err = txn.Commit()
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, ErrConflict) {
						errc <- fmt.Errorf("Commit: %w", err)
						return
					}
				}
			}()
		}
		for range 4 {
			<-started
		}
		time.Sleep(time.Duration(round%3) * time.Millisecond)
		mustIs(t, "Close", e.Close(), nil)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		e.res.mu.Lock()
		left := len(e.res.open)
		e.res.mu.Unlock()
		if left != 0 {
			t.Fatalf("round %d: %d handles still registered after Close", round, left)
		}
	}
}

// waitClosed runs GCs until rc() reports MANTIS_CLOSED, or fails after a
// few seconds.
func waitClosed(t *testing.T, what string, rc func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if got := rc(); got == cClosed {
			return
		} else if got != cOK {
			t.Fatalf("%s: C code %d (%s)", what, got, cStrerror(got))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the cleanup did not close it", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCCleanupBackstop: an engine, an iterator and a transaction dropped
// without Close have their C handles closed by their cleanups.
func TestCCleanupBackstop(t *testing.T) {
	db, cache, ith, snap := func() (uint64, uint64, uint64, uint64) {
		e := NewCStorageEngine(StorageConfig{CacheSize: testCacheSize})
		mustIs(t, "Init", e.Init(""), nil)
		mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
		it, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		db, cache := handlesOf(e)
		return db, cache, it.(*cIter).h, txn.(*cTxn).snap
	}()
	var ds cStats
	waitClosed(t, "engine", func() int { return cReadStats(db, cache, &ds) })
	mustClosedHandle(t, "db", cDBClose(db))
	mustClosedHandle(t, "cache", cCacheClose(cache))
	mustClosedHandle(t, "iterator", cIterClose(ith))
	mustClosedHandle(t, "snapshot", cSnapshotClose(snap))

	// An iterator dropped unclosed while its engine lives.
	e := openC(t, StorageConfig{})
	mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
	h := func() uint64 {
		it, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		return it.(*cIter).h
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		e.res.mu.Lock()
		_, open := e.res.open[h]
		e.res.mu.Unlock()
		if !open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped iterator's cleanup did not release it")
		}
		time.Sleep(time.Millisecond)
	}
	mustClosedHandle(t, "dropped iterator", cIterClose(h))
	mustGet(t, e, "k", "v")
}

// TestCCleanupNeverDoubleFrees: after an explicit Close, neither the
// engine's cleanup nor stale closes of its handles can touch the objects of
// later engines that reuse the same handle slots: the handle's generation
// differs, so C answers MANTIS_CLOSED.
func TestCCleanupNeverDoubleFrees(t *testing.T) {
	var stale [][2]uint64
	for range 50 {
		func() {
			e := NewCStorageEngine(StorageConfig{CacheSize: testCacheSize})
			mustIs(t, "Init", e.Init(""), nil)
			it, err := e.NewIterator(bg, "")
			mustIs(t, "NewIterator", err, nil)
			_ = it // dropped unclosed: Close closes it, its cleanup finds it gone
			db, cache := handlesOf(e)
			stale = append(stale, [2]uint64{db, cache})
			mustIs(t, "Close", e.Close(), nil)
			e.res.close() // what a late cleanup would run: nothing
		}()
		runtime.GC()
	}
	// New engines reuse the freed slots (the handle table recycles them).
	live := make([]*CStorageEngine, 10)
	for i := range live {
		live[i] = openC(t, StorageConfig{CacheSize: testCacheSize})
		mustIs(t, "Put", live[i].Put(bg, "k", pad(i)), nil)
	}
	for _, h := range stale {
		mustClosedHandle(t, "stale db", cDBClose(h[0]))
		mustClosedHandle(t, "stale cache", cCacheClose(h[1]))
	}
	for range 3 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	for i, e := range live {
		mustGet(t, e, "k", pad(i))
		mustIs(t, "HealthCheck", e.HealthCheck(bg), nil)
	}
}

// TestCNoStaleReadHammer hammers the cache-aside protocol: per key one
// writer puts increasing values, deletes (every 4th step) and writes through
// batches and transactions; readers Get, BatchGet and iterate concurrently,
// with caches so small that inserts are evicted or declined all the time
// (the case where versioned inserts alone would let a stale fill land). A
// Get must return the newest value whose write returned before it began,
// or something newer, never older; a Get after a BatchGet or an iterator
// saw a value must see that value or a newer one.
func TestCNoStaleReadHammer(t *testing.T) {
	for _, capacity := range []int64{1, 300, 4 << 10, 0} {
		t.Run(fmt.Sprintf("cache=%d", capacity), func(t *testing.T) {
			e := openC(t, StorageConfig{CacheSize: capacity})
			const nkeys = 6
			key := func(k int) string { return "h" + pad(k) }
			// For key k: done[k] is the last step whose write returned,
			// began[k] the last step whose write began. Step v writes
			// pad(v), or deletes the key if v%4 == 0.
			var done, began [nkeys]atomic.Int64
			steps := scaled(20000, 1000)
			stop := make(chan struct{})
			errc := make(chan error, 16)
			var writers, readers sync.WaitGroup
			for k := range nkeys {
				writers.Add(1)
				go func() {
					defer writers.Done()
					for v := 1; v <= steps; v++ {
						began[k].Store(int64(v))
						var err error
						switch {
						case v%4 == 0 && v%8 == 0:
							err = e.Delete(bg, key(k))
						case v%4 == 0:
							err = e.BatchDelete(bg, []string{key(k)})
						case v%3 == 0:
							err = e.BatchPut(bg, map[string]string{key(k): pad(v)})
						case v%5 == 0:
							var txn Transaction
							if txn, err = e.BeginTransaction(bg); err == nil {
								txn.Put(key(k), pad(v))
								err = txn.Commit()
							}
						default:
							err = e.Put(bg, key(k), pad(v))
						}
						if err != nil {
							errc <- fmt.Errorf("writer %d step %d: %w", k, v, err)
							return
						}
						done[k].Store(int64(v))
					}
				}()
			}
			// check validates a read of key k: got is the step read (0 for
			// not found), floor the step done before the read began, ceil
			// the step begun after it ended.
			check := func(k, got, floor, ceil int, how string) error {
				if got == 0 {
					// Not found: the key must have been deleted by
					// floor or by a step begun before the read ended.
					d := floor
					if d%4 != 0 {
						d += 4 - d%4
					}
					if floor > 0 && d > ceil {
						return fmt.Errorf("%s of key %d: not found, but step %d (a put) was done and no delete began by step %d", how, k, floor, ceil)
					}
					return nil
				}
				if got%4 == 0 {
					return fmt.Errorf("%s of key %d: value of a delete step %d", how, k, got)
				}
				if got < floor || got > ceil {
					return fmt.Errorf("%s of key %d: step %d, want between %d (done before) and %d (begun after)", how, k, got, floor, ceil)
				}
				return nil
			}
			decode := func(v string, err error) (int, error) {
				if errors.Is(err, ErrNotFound) {
					return 0, nil
				}
				if err != nil {
					return 0, err
				}
				if n := unpad(v); n > 0 {
					return n, nil
				}
				return 0, fmt.Errorf("garbage value %q", v)
			}
			for r := range 3 {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						k := (i + r) % nkeys
						floor := int(done[k].Load())
						var seen int
						var err error
						switch i % 7 {
						case 5:
							var m map[string]string
							if m, err = e.BatchGet(bg, []string{key(k)}); err == nil {
								v, ok := m[key(k)]
								if !ok {
									seen = 0
								} else {
									seen, err = decode(v, nil)
								}
							}
						case 6:
							var it Iterator
							if it, err = e.NewIterator(bg, key(k)); err == nil {
								if it.Next() {
									seen, err = decode(it.Value(), nil)
								}
								if ierr := it.Error(); ierr != nil {
									err = ierr
								}
								it.Close()
							}
						default:
							seen, err = decode(e.Get(bg, key(k)))
						}
						if err != nil {
							errc <- err
							return
						}
						if err := check(k, seen, floor, int(began[k].Load()), "read"); err != nil {
							errc <- err
							return
						}
						// Whatever was seen (by any API), a Get that
						// begins now sees it or something newer.
						floor2 := max(floor, seen)
						if seen == 0 {
							floor2 = floor
						}
						got, err := decode(e.Get(bg, key(k)))
						if err != nil {
							errc <- err
							return
						}
						if err := check(k, got, floor2, int(began[k].Load()), "Get after read"); err != nil {
							errc <- fmt.Errorf("%w (the first read saw step %d)", err, seen)
							return
						}
					}
				}()
			}
			writers.Wait()
			close(stop)
			readers.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			s := e.Stats()
			t.Logf("cache hits %d, misses %d, evictions %d", s.CacheHits, s.CacheMisses, s.CacheEvictions)
		})
	}
}

// TestCValueSizes exercises the size-guessing copy-out: values of changing
// sizes (the buffer guess too small: MANTIS_EBUFSIZE and an exact retry;
// far too large: an exact copy), from the cache and from storage, in Get,
// transactions, BatchGet and iterators with entries larger than a chunk.
func TestCValueSizes(t *testing.T) {
	e := openC(t, StorageConfig{CacheSize: 8 << 20})
	sizes := []int{0, 1, 100, 5000, 0, 64, 3 << 20, 10, 200 << 10, 7, maxChunk + 1, 1}
	val := func(i, n int) string {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		return string(b)
	}
	keys := make([]string, len(sizes))
	for i, n := range sizes {
		keys[i] = "z" + pad(i)
		mustIs(t, "Put", e.Put(bg, keys[i], val(i, n)), nil)
	}
	for round := range 3 {
		for i, n := range sizes {
			mustGet(t, e, keys[i], val(i, n)) // cache hits (or storage, if not admitted)
		}
		for i := len(sizes) - 1; i >= 0; i-- {
			mustGet(t, e, keys[i], val(i, sizes[i]))
		}
		if round == 0 {
			// Through storage: a new engine's reads all miss first.
			e2 := openC(t, StorageConfig{CacheSize: 1})
			for i, n := range sizes {
				mustIs(t, "Put", e2.PutWithTTL(bg, keys[i], val(i, n), time.Hour), nil)
			}
			for i, n := range sizes {
				mustGet(t, e2, keys[i], val(i, n))
			}
		}
	}
	txn, err := e.BeginTransaction(bg)
	mustIs(t, "BeginTransaction", err, nil)
	for i, n := range sizes {
		v, err := txn.Get(keys[i])
		mustIs(t, "txn Get", err, nil)
		if v != val(i, n) {
			t.Fatalf("txn Get(%d): %d bytes, want %d", i, len(v), n)
		}
	}
	mustIs(t, "Rollback", txn.Rollback(), nil)
	m, err := e.BatchGet(bg, append(keys, "absent"))
	mustIs(t, "BatchGet", err, nil)
	if len(m) != len(keys) {
		t.Fatalf("BatchGet: %d keys, want %d", len(m), len(keys))
	}
	for i, n := range sizes {
		if m[keys[i]] != val(i, n) {
			t.Fatalf("BatchGet(%d): %d bytes, want %d", i, len(m[keys[i]]), n)
		}
	}
	got := scan(t, e, "z")
	if len(got) != len(keys) {
		t.Fatalf("iterator: %d entries, want %d", len(got), len(keys))
	}
	for i, kv := range got {
		if kv[0] != keys[i] || kv[1] != val(i, sizes[i]) {
			t.Fatalf("iterator entry %d: key %q, %d bytes; want %q, %d bytes", i, kv[0], len(kv[1]), keys[i], sizes[i])
		}
	}
}

// TestCIteratorManyChunks: a scan over many entries crosses many chunks,
// and the strings of earlier chunks stay intact.
func TestCIteratorManyChunks(t *testing.T) {
	e := openC(t, StorageConfig{})
	n := scaled(50000, 5000)
	batch := make(map[string]string)
	for i := range n {
		batch[pad(i)] = strings.Repeat(string(rune('a'+i%26)), i%300)
		if len(batch) == 1000 || i == n-1 {
			mustIs(t, "BatchPut", e.BatchPut(bg, batch), nil)
			batch = make(map[string]string)
		}
	}
	got := scan(t, e, "")
	if len(got) != n {
		t.Fatalf("%d entries, want %d", len(got), n)
	}
	for i, kv := range got {
		if kv[0] != pad(i) || kv[1] != strings.Repeat(string(rune('a'+i%26)), i%300) {
			t.Fatalf("entry %d: %q = %d bytes", i, kv[0], len(kv[1]))
		}
	}
}

// TestCIteratorCarvedChunksStayIntact: strings kept from many short prefix
// scans, run by several goroutines at once (their chunks carved from shared
// slabs, the first chunk sized by the last scan, byte views reused between
// fills), keep their bytes while later scans fill other chunks.
func TestCIteratorCarvedChunksStayIntact(t *testing.T) {
	e := openC(t, StorageConfig{})
	const groups, per = 40, 60
	val := func(g, i int) string { return strings.Repeat(string(rune('a'+(g+i)%26)), 20+(g*7+i)%150) }
	for g := range groups {
		batch := make(map[string]string)
		for i := range per {
			batch[fmt.Sprintf("g%03d/%03d", g, i)] = val(g, i)
		}
		mustIs(t, "BatchPut", e.BatchPut(bg, batch), nil)
	}
	type kept struct {
		g, i int
		k, v string
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keep []kept
			for r := range scaled(400, 60) {
				g := (r*7 + w*13) % groups
				it, err := e.NewIterator(bg, fmt.Sprintf("g%03d/", g))
				if err != nil {
					errs <- err
					return
				}
				bi := it.(BytesIterator)
				for i := 0; it.Next(); i++ {
					if r%3 == 0 { // byte views only: the chunk may be reused
						if string(bi.KeyBytes()) != fmt.Sprintf("g%03d/%03d", g, i) {
							errs <- fmt.Errorf("view of %d/%d is %q", g, i, bi.KeyBytes())
						}
						continue
					}
					if i%5 == w%5 {
						keep = append(keep, kept{g, i, it.Key(), it.Value()})
					}
				}
				if err := it.Close(); err != nil {
					errs <- err
					return
				}
			}
			for _, k := range keep {
				if k.k != fmt.Sprintf("g%03d/%03d", k.g, k.i) || k.v != val(k.g, k.i) {
					errs <- fmt.Errorf("kept entry %d/%d changed: %q = %d bytes", k.g, k.i, k.k, len(k.v))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestCTTLNotServedFromCache: a key written with a TTL, or read once and
// filled, is never returned by the cache after it expired.
func TestCTTLNotServedFromCache(t *testing.T) {
	e := openC(t, StorageConfig{})
	mustIs(t, "Put", e.Put(bg, "t1", "cached"), nil)
	mustGet(t, e, "t1", "cached")
	put := time.Now()
	mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "t1", "short", 30*time.Millisecond), nil)
	mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "t2", "short", 30*time.Millisecond), nil)
	for range 5 {
		mustGetLive(t, e, "t1", "short", put, 30*time.Millisecond)
		mustGetLive(t, e, "t2", "short", put, 30*time.Millisecond)
	}
	time.Sleep(60 * time.Millisecond)
	mustMissing(t, e, "t1")
	mustMissing(t, e, "t2")
	// A later Put without TTL is cached and never expires.
	mustIs(t, "Put", e.Put(bg, "t1", "forever"), nil)
	time.Sleep(40 * time.Millisecond)
	mustGet(t, e, "t1", "forever")
}

// TestCErrorMapping: every MANTIS_* code maps to its sentinel with the
// "storage: " prefix and says what failed.
func TestCErrorMapping(t *testing.T) {
	cases := []struct {
		rc   int
		want error
	}{
		{cNotFound, ErrNotFound},
		{cEKey, ErrInvalidKey},
		{cETooLarge, ErrTooLarge},
		{cENoMem, ErrTooLarge},
		{cEBadHndl, ErrClosed},
		{cClosed, ErrClosed},
		{cConflict, ErrConflict},
	}
	for _, c := range cases {
		err := cError("some op", c.rc)
		mustIs(t, fmt.Sprintf("code %d", c.rc), err, c.want)
		if !strings.Contains(err.Error(), "some op") || !strings.Contains(err.Error(), cStrerror(c.rc)) {
			t.Fatalf("code %d: message %q lacks the operation or the C description", c.rc, err)
		}
	}
	for _, rc := range []int{cEInval, cEBufSize, cDone, -1} {
		err := cError("some op", rc)
		if err == nil || !strings.HasPrefix(err.Error(), "storage: some op") {
			t.Fatalf("code %d: %v", rc, err)
		}
		for _, s := range []error{ErrNotFound, ErrClosed, ErrInvalidKey, ErrTooLarge, ErrConflict, ErrTxnDone} {
			if errors.Is(err, s) {
				t.Fatalf("code %d maps to %v", rc, s)
			}
		}
	}
}

// TestCStatsCountCache: Stats reports the cache's hits and misses, and
// every Get counts once as a read.
func TestCStatsCountCache(t *testing.T) {
	e := openC(t, StorageConfig{CacheSize: testCacheSize})
	mustIs(t, "Put", e.Put(bg, "a", "1"), nil)
	mustGet(t, e, "a", "1")
	mustGet(t, e, "a", "1")
	mustMissing(t, e, "b")
	s := e.Stats()
	if s.Reads != 3 || s.CacheHits+s.CacheMisses != 3 || s.CacheMisses < 1 || s.CacheHits < 1 {
		t.Fatalf("Stats = %+v; want Reads 3 = hits + misses, a hit and a miss at least", s)
	}
	if want := float64(s.CacheHits) / 3; s.CacheHitRatio != want {
		t.Fatalf("CacheHitRatio = %v, want %v", s.CacheHitRatio, want)
	}
}

// TestCAllocations: a cached Get allocates only its result; Put, Delete and
// a BatchPut (pooled buffer) allocate nothing; a scan allocates per chunk,
// TestCStatsWithoutCache: the default engine has no cache: Stats reports no
// cache traffic, and Reads counts each Get and BatchGet key once, not a
// Get's retry with a bigger buffer nor a transaction's reads.
func TestCStatsWithoutCache(t *testing.T) {
	e := openC(t, StorageConfig{})
	if _, cache := handlesOf(e); cache != 0 {
		t.Fatalf("default engine has cache handle %#x, want none", cache)
	}
	big := strings.Repeat("b", 5000) // larger than the first buffer: one retry
	mustIs(t, "Put", e.Put(bg, "a", "1"), nil)
	mustIs(t, "Put", e.Put(bg, "big", big), nil)
	mustGet(t, e, "a", "1")
	mustGet(t, e, "big", big)
	mustMissing(t, e, "b")
	if _, err := e.BatchGet(bg, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	txn, err := e.BeginTransaction(bg)
	mustIs(t, "BeginTransaction", err, nil)
	_, err = txn.Get("a")
	mustIs(t, "txn Get", err, nil)
	mustIs(t, "Rollback", txn.Rollback(), nil)
	s := e.Stats()
	if s.Reads != 5 || s.CacheHits != 0 || s.CacheMisses != 0 || s.CacheEvictions != 0 || s.CacheHitRatio != 0 {
		t.Fatalf("Stats = %+v; want Reads 5 and no cache traffic", s)
	}
}

// not per entry.
func TestCAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	e := openC(t, StorageConfig{})
	v100 := strings.Repeat("v", 100)
	mustIs(t, "Put", e.Put(bg, "key-0000000001", v100), nil)
	mustGet(t, e, "key-0000000001", v100)
	ctx := context.Background()
	check := func(what string, max float64, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(200, f); n > max {
			t.Errorf("%s: %.1f allocations per call, want at most %.0f", what, n, max)
		}
	}
	check("cached Get", 1, func() { e.Get(ctx, "key-0000000001") })
	check("Put", 0, func() { e.Put(ctx, "key-0000000002", v100) })
	check("Delete", 0, func() { e.Delete(ctx, "key-0000000003") })
	batch := map[string]string{"b1": v100, "b2": v100, "b3": v100}
	check("BatchPut", 0, func() { e.BatchPut(ctx, batch) })
	check("BatchDelete", 0, func() { e.BatchDelete(ctx, []string{"b1", "b2"}) })

	for i := range 10000 {
		mustIs(t, "Put", e.Put(bg, "s"+pad(i), v100), nil)
	}
	n := testing.AllocsPerRun(5, func() {
		it, _ := e.NewIterator(ctx, "s")
		for it.Next() {
		}
		it.Close()
	})
	if n > 10000/50 {
		t.Errorf("a scan of 10000 entries made %.0f allocations, want at most %d", n, 10000/50)
	}
}
