package benchmark

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Suite is one workload. Op runs one operation of one worker (timing it with
// w.record) and returns a checkError for a wrong answer or the engine's error.
type Suite struct {
	Name  string
	Title string
	// Description says, for the docs and the report, what the suite does
	// and how it checks what it reads.
	Description string
	// Ordered suites need scans (ordered stores only).
	Ordered bool
	// CacheShaped suites fit caches that may drop entries.
	CacheShaped bool
	// WorkersMul multiplies the configured workers (default 1).
	WorkersMul int
	// Large suites use the memory-pressure key space (Config.LargeKeys).
	Large bool
	// Inserts reserves as many fresh key indices as the key space for
	// inserts.
	Inserts bool
	// Preload writes every key at version 1 before the timed phase.
	Preload bool
	// PreloadState is what the preload stores in run.issued for each
	// key (default 1: version 1).
	PreloadState uint64
	// Tracks keeps run.present (inserts and fills).
	Tracks bool
	// Zipf gives each worker a Zipf(0.99) generator over the key space.
	Zipf  bool
	Value valueSpec
	// Durable suites run on stores opened with a data directory
	// (Registration.Durable), a fresh temporary one per run, and reopen
	// it to check that every acknowledged write survived (durable.go).
	Durable bool
	// Sync opens the durable store with synced writes.
	Sync bool
	// Writers fixes the number of workers (0: the configured number).
	Writers int
	// MinDuration is the least time the suite is measured at a stress
	// level's duration (synced writes are slow: a few hundred would not
	// make a figure); an explicit --duration applies as given.
	MinDuration time.Duration
	// ExactReopen checks each key after the reopen for exactly its last
	// version (one writer per key) rather than any version written.
	ExactReopen bool
	// Run replaces the standard runner (the recovery suite).
	Run func(cfg Config, s *Suite, reg Registration, onStart progressFunc) *Result
	Op  func(w *worker) error
	// Final checks the store after the timed phase (untimed); nil for
	// none.
	Final func(r *run, cfg Config) error
}

func (s *Suite) keySpace(cfg Config) (keys, room int) {
	keys = cfg.Keys
	if s.Large {
		keys = cfg.LargeKeys
	}
	keys = max(keys, 100)
	if s.Inserts {
		room = keys
	}
	return keys, room
}

var smallValue = valueSpec{Min: 100, Max: 100}

// Suites are every suite, in the order they run.
var Suites = []*Suite{
	{
		Name: "seq-write", Title: "sequential writes",
		Description: "Each worker owns a contiguous range of the key space and writes its keys in " +
			"ascending order, over and over, into an empty store (the first pass inserts, the next " +
			"ones overwrite). Afterwards every key must hold exactly the last version its owner wrote.",
		Value: smallValue, Op: opSeqWrite, Final: finalExact,
	},
	{
		Name: "seq-read", Title: "sequential reads",
		Description: "The key space is loaded; each worker reads its own contiguous range in ascending " +
			"order, over and over. Every read must return exactly the value loaded.",
		Preload: true, Value: smallValue, Op: opSeqRead,
	},
	{
		Name: "random-write", Title: "random writes",
		Description: "Workers write uniformly random keys into an empty store, each write a new version " +
			"(worker j writes the keys i with i mod workers = j, in random order, so that each key has one " +
			"writer). Afterwards every key must hold exactly the last version written, or be absent if " +
			"never written.",
		Value: smallValue, Op: opRandomWrite, Final: finalExact,
	},
	{
		Name: "high-throughput", Title: "high throughput (many writers)",
		Description: "Like random-write with four times as many workers, all writing: contention " +
			"on the write path. Checked like random-write.",
		WorkersMul: 4, Value: smallValue, Op: opRandomWrite, Final: finalExact,
	},
	{
		Name: "memory-pressure", Title: "memory pressure (16-64 KiB values)",
		Description: "A smaller key space of 16-64 KiB values (the size depends on key and version), " +
			"loaded, then half reads of any key and half overwrites of the worker's own keys, uniformly " +
			"random: large allocations and garbage. Every byte of every value read is checked; a read " +
			"of the worker's own key must return its last write.",
		Large: true, Preload: true, Value: valueSpec{Min: 16 << 10, Max: 64 << 10}, Op: opMemoryPressure,
		Final: finalExact,
	},
	{
		Name: "concurrent-ops", Title: "concurrent mixed reads, writes and deletes",
		Description: "The key space is loaded; each worker owns the keys i with i mod workers = its " +
			"number and does 50% reads of any key, 30% writes and 20% deletes of its own keys. A read of " +
			"its own key must return exactly its last write (or nothing after its delete); a read of " +
			"another worker's key must be a version that worker wrote, or nothing.",
		Preload: true, PreloadState: 1 << 1, Value: smallValue, Op: opConcurrent, Final: finalConcurrent,
	},
	{
		Name: "ycsb-a", Title: "YCSB A: update heavy (50% read, 50% update)",
		Description: "YCSB core workload A: Zipf(0.99) requests over the loaded key space (scrambled " +
			"so the hot keys are spread), half reads, half updates.",
		Preload: true, Zipf: true, Value: smallValue, Op: ycsbMix(50), Final: finalBounded,
	},
	{
		Name: "ycsb-b", Title: "YCSB B: read mostly (95% read, 5% update)",
		Description: "YCSB core workload B: Zipf(0.99) requests, 95% reads, 5% updates. Cache-shaped: " +
			"the caches run it too (a miss is counted, not an error, for them).",
		CacheShaped: true, Preload: true, Zipf: true, Value: smallValue, Op: ycsbMix(95), Final: finalBounded,
	},
	{
		Name: "ycsb-c", Title: "YCSB C: read only",
		Description: "YCSB core workload C: Zipf(0.99) reads of the loaded key space. Cache-shaped.",
		CacheShaped: true, Preload: true, Zipf: true, Value: smallValue, Op: ycsbMix(100), Final: finalBounded,
	},
	{
		Name: "ycsb-d", Title: "YCSB D: read latest (95% read, 5% insert)",
		Description: "YCSB core workload D: 5% inserts of new keys, 95% reads of recently inserted keys " +
			"(Zipf(0.99) over recency: the newest key is the most read). A key whose insert returned " +
			"must be found, with the value inserted.",
		Preload: true, Inserts: true, Tracks: true, Zipf: true, Value: smallValue, Op: opYCSBD,
		Final: finalBounded,
	},
	{
		Name: "ycsb-e", Title: "YCSB E: short range scans (95% scan, 5% insert)",
		Description: "YCSB core workload E: 95% scans of 1-100 keys starting at a Zipf(0.99) key, 5% " +
			"inserts of new keys. Ordered stores only. A scan runs over the start key's group of 100 " +
			"keys (a prefix iterator: StorageEngine has no seek) and must return exactly the loaded keys " +
			"from the start key on, in order, with their values.",
		Ordered: true, Preload: true, Inserts: true, Tracks: true, Zipf: true, Value: smallValue,
		Op: opYCSBE, Final: finalBounded,
	},
	{
		Name: "ycsb-f", Title: "YCSB F: read-modify-write (50% read, 50% RMW)",
		Description: "YCSB core workload F: Zipf(0.99) requests, half reads, half read-modify-writes " +
			"(read the key, check it, write the next version; timed as one operation).",
		Preload: true, Zipf: true, Value: smallValue, Op: opYCSBF, Final: finalBounded,
	},
	{
		Name: "prefix-scan", Title: "prefix scans (90% scan of 100 keys, 10% update)",
		Description: "90% scans of a uniformly random prefix naming 100 loaded keys, 10% updates. " +
			"Ordered stores only. Every scan must return exactly those 100 keys in ascending order, " +
			"each with a version written for it.",
		Ordered: true, Preload: true, Value: smallValue, Op: opPrefixScan, Final: finalBounded,
	},
	{
		Name: "zipf-reads", Title: "Zipf reads through a cache (read, fill on miss)",
		Description: "Cache-aside reads: Zipf(0.99) keys from an empty store; a miss builds the value " +
			"and writes it (the fill). Reports the hit ratio. A hit must return the value filled; a " +
			"non-lossy store must find every key whose fill returned.",
		CacheShaped: true, Tracks: true, Zipf: true, Value: smallValue, Op: opZipfReads, Final: finalBounded,
	},
}

// LookupSuite returns the suite called name.
func LookupSuite(name string) *Suite {
	for _, s := range Suites {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ---------------------------------------------------------------- operations

// errIdle ends a worker that has nothing to do (more workers than keys).
var errIdle = errors.New("idle worker")

// put writes key i at its next version.
func (w *worker) put(i uint64) error {
	k := keyOf(i)
	ver := w.r.issued[i].Add(1)
	v := w.codec.value(k, ver)
	t := time.Now()
	err := w.r.store.Put(k, v)
	w.record(t)
	if err != nil {
		return fmt.Errorf("put %q: %w", k, err)
	}
	return nil
}

// insert writes key i at version 1 and marks it present.
func (w *worker) insert(i uint64) error {
	k := keyOf(i)
	w.r.issued[i].Store(1)
	v := w.codec.value(k, 1)
	t := time.Now()
	err := w.r.store.Put(k, v)
	w.record(t)
	if err != nil {
		return fmt.Errorf("insert %q: %w", k, err)
	}
	w.r.present[i].Store(true)
	return nil
}

// get reads key i (timed) and counts the read.
func (w *worker) get(i uint64) (k, v string, found bool, err error) {
	k = keyOf(i)
	t := time.Now()
	v, found, err = w.r.store.Get(k)
	w.record(t)
	w.reads++
	if err != nil {
		return k, "", false, fmt.Errorf("get %q: %w", k, err)
	}
	if found {
		w.hits++
	}
	return k, v, found, nil
}

// checkBounded checks a value read for key i: a value written for the key,
// at a version issued by the time the read returned.
func (w *worker) checkBounded(i uint64, k, v string) (uint64, error) {
	ver, err := w.codec.check(k, v)
	if err != nil {
		return 0, checkError{err}
	}
	if hi := w.r.issued[i].Load(); ver < 1 || ver > hi {
		return 0, checkf("value of %q has version %d, but only versions 1..%d were written", k, ver, hi)
	}
	return ver, nil
}

// readBounded reads key i (timed), which must be there, and checks its
// value with checkBounded.
func (w *worker) readBounded(i uint64) error {
	k, v, found, err := w.get(i)
	if err != nil {
		return err
	}
	if !found {
		return w.missing(k)
	}
	_, err = w.checkBounded(i, k, v)
	return err
}

// checkExact checks that key i holds exactly version want.
func (w *worker) checkExact(k, v string, want uint64) error {
	ver, err := w.codec.check(k, v)
	if err != nil {
		return checkError{err}
	}
	if ver != want {
		return checkf("value of %q has version %d, want %d (the last written)", k, ver, want)
	}
	return nil
}

// missing reports a miss of a key that must be there, except for lossy
// stores, where it only counts.
func (w *worker) missing(k string) error {
	if w.r.lossy {
		return nil
	}
	return checkf("%q is missing: it was written and never deleted", k)
}

// ownRange is worker w's contiguous share of n keys.
func (w *worker) ownRange(n int) (lo, hi uint64) {
	per := (n + w.r.workers - 1) / w.r.workers
	lo = uint64(min(w.id*per, n))
	hi = uint64(min(lo+uint64(per), uint64(n)))
	return lo, hi
}

func opSeqWrite(w *worker) error {
	lo, hi := w.ownRange(w.r.keys)
	if lo == hi {
		return errIdle
	}
	i := lo + w.pos%(hi-lo)
	w.pos++
	return w.put(i)
}

func opSeqRead(w *worker) error {
	lo, hi := w.ownRange(w.r.keys)
	if lo == hi {
		return errIdle
	}
	i := lo + w.pos%(hi-lo)
	w.pos++
	k, v, found, err := w.get(i)
	if err != nil {
		return err
	}
	if !found {
		return w.missing(k)
	}
	return w.checkExact(k, v, 1)
}

// ownRandom returns a uniformly random key of worker w's share: the keys i
// with i mod workers = w.id. Only w writes them, so their final values are
// exactly known.
func (w *worker) ownRandom() (uint64, bool) {
	n, W := uint64(w.r.keys), uint64(w.r.workers)
	owned := (n - min(uint64(w.id), n) + W - 1) / W
	if owned == 0 {
		return 0, false
	}
	return w.rng.Uint64N(owned)*W + uint64(w.id), true
}

// owns reports whether key i is worker w's.
func (w *worker) owns(i uint64) bool { return i%uint64(w.r.workers) == uint64(w.id) }

func opRandomWrite(w *worker) error {
	i, ok := w.ownRandom()
	if !ok {
		return errIdle
	}
	return w.put(i)
}

func opMemoryPressure(w *worker) error {
	if w.rng.IntN(2) == 0 {
		i, ok := w.ownRandom()
		if !ok {
			return errIdle
		}
		return w.put(i)
	}
	i := w.rng.Uint64N(uint64(w.r.keys))
	k, v, found, err := w.get(i)
	if err != nil {
		return err
	}
	if !found {
		return w.missing(k)
	}
	if w.owns(i) {
		return w.checkExact(k, v, w.r.issued[i].Load())
	}
	_, err = w.checkBounded(i, k, v)
	return err
}

// concurrent-ops keeps issued[i] = version<<1 | deleted; only key i's owner
// (i mod workers) changes it.
func opConcurrent(w *worker) error {
	r := w.r
	switch p := w.rng.IntN(10); {
	case p < 5: // read any key
		i := w.rng.Uint64N(uint64(r.keys))
		k, v, found, err := w.get(i)
		if err != nil {
			return err
		}
		st := r.issued[i].Load()
		if w.owns(i) { // own key: exact
			if st&1 == 1 {
				if found {
					return checkf("%q was deleted by its only writer but a read found it", k)
				}
				return nil
			}
			if !found {
				return checkf("%q is missing: its only writer wrote version %d and did not delete it", k, st>>1)
			}
			return w.checkExact(k, v, st>>1)
		}
		if !found {
			return nil // its owner may have deleted it
		}
		ver, err := w.codec.check(k, v)
		if err != nil {
			return checkError{err}
		}
		if ver < 1 || ver > st>>1 {
			return checkf("value of %q has version %d, but only versions 1..%d were written", k, ver, st>>1)
		}
		return nil
	default:
		i, ok := w.ownRandom()
		if !ok {
			return errIdle
		}
		k := keyOf(i)
		st := r.issued[i].Load()
		if p < 8 { // write the next version
			ver := st>>1 + 1
			r.issued[i].Store(ver << 1)
			v := w.codec.value(k, ver)
			t := time.Now()
			err := r.store.Put(k, v)
			w.record(t)
			if err != nil {
				return fmt.Errorf("put %q: %w", k, err)
			}
			return nil
		}
		r.issued[i].Store(st | 1) // delete
		t := time.Now()
		err := r.store.Delete(k)
		w.record(t)
		if err != nil {
			return fmt.Errorf("delete %q: %w", k, err)
		}
		return nil
	}
}

// ycsbMix returns a YCSB operation with readPct% reads, the rest updates.
func ycsbMix(readPct int) func(w *worker) error {
	return func(w *worker) error {
		i := w.zipf.Scrambled()
		if readPct < 100 && w.rng.IntN(100) >= readPct {
			return w.put(i)
		}
		return w.readBounded(i)
	}
}

// tryInsert inserts the next new key; false when the room is used up.
func (w *worker) tryInsert() (bool, error) {
	r := w.r
	i := r.next.Add(1) - 1
	if i >= uint64(r.keys+r.room) {
		return false, nil
	}
	return true, w.insert(i)
}

func opYCSBD(w *worker) error {
	r := w.r
	if w.rng.IntN(100) < 5 {
		if ok, err := w.tryInsert(); ok || err != nil {
			return err
		}
	}
	n := min(r.next.Load(), uint64(r.keys+r.room))
	if n > w.zipf.N() {
		w.zipf.grow(n)
	}
	// The newest keys are the most read.
	rank := w.zipf.Rank()
	i := w.zipf.N() - 1 - rank
	wasPresent := r.present[i].Load()
	k, v, found, err := w.get(i)
	if err != nil {
		return err
	}
	if !found {
		if wasPresent {
			return w.missing(k)
		}
		return nil // its insert is still running
	}
	return w.checkExact(k, v, 1)
}

func opYCSBE(w *worker) error {
	r := w.r
	if w.rng.IntN(100) < 5 {
		if ok, err := w.tryInsert(); ok || err != nil {
			return err
		}
	}
	start := w.zipf.Scrambled()
	length := 1 + w.rng.Uint64N(100)
	end := min(start-start%100+100, start+length) // exclusive
	startKey := keyOf(start)
	next := start
	var bad error
	t := time.Now()
	err := r.ordered.Scan(startKey[:groupPrefix], func(k, v string) bool {
		if k < startKey {
			return true
		}
		if next >= end {
			return false
		}
		if want := keyOf(next); k != want {
			bad = checkf("scan from %q returned %q where %q was expected", startKey, k, want)
			return false
		}
		if e := w.checkExact(k, v, 1); e != nil {
			bad = e
			return false
		}
		next++
		return true
	})
	w.record(t)
	if err != nil {
		return fmt.Errorf("scan %q: %w", startKey[:groupPrefix], err)
	}
	if bad != nil {
		return bad
	}
	if next != end {
		return checkf("scan from %q for %d keys returned %d, want %d", startKey, length, next-start, end-start)
	}
	return nil
}

func opYCSBF(w *worker) error {
	i := w.zipf.Scrambled()
	if w.rng.IntN(2) == 0 {
		return w.readBounded(i)
	}
	// Read-modify-write, timed as one operation.
	r := w.r
	k := keyOf(i)
	t := time.Now()
	v, found, err := r.store.Get(k)
	if err != nil {
		w.record(t)
		return fmt.Errorf("rmw get %q: %w", k, err)
	}
	w.reads++
	if !found {
		w.record(t)
		return w.missing(k)
	}
	w.hits++
	if _, err := w.checkBounded(i, k, v); err != nil {
		w.record(t)
		return err
	}
	ver := r.issued[i].Add(1)
	nv := w.codec.value(k, ver)
	err = r.store.Put(k, nv)
	w.record(t)
	if err != nil {
		return fmt.Errorf("rmw put %q: %w", k, err)
	}
	return nil
}

func opPrefixScan(w *worker) error {
	r := w.r
	if w.rng.IntN(10) == 0 {
		return w.put(w.rng.Uint64N(uint64(r.keys)))
	}
	groups := uint64(r.keys / 100)
	g := w.rng.Uint64N(groups)
	first := g * 100
	prefix := keyOf(first)[:groupPrefix]
	next := first
	var bad error
	t := time.Now()
	err := r.ordered.Scan(prefix, func(k, v string) bool {
		if want := keyOf(next); k != want {
			bad = checkf("scan of prefix %q returned %q where %q was expected", prefix, k, want)
			return false
		}
		if _, e := w.checkBounded(next, k, v); e != nil {
			bad = e
			return false
		}
		next++
		return true
	})
	w.record(t)
	if err != nil {
		return fmt.Errorf("scan %q: %w", prefix, err)
	}
	if bad != nil {
		return bad
	}
	if next != first+100 {
		return checkf("scan of prefix %q returned %d keys, want 100", prefix, next-first)
	}
	return nil
}

func opZipfReads(w *worker) error {
	r := w.r
	i := w.zipf.Scrambled()
	wasPresent := r.present[i].Load()
	k, v, found, err := w.get(i)
	if err != nil {
		return err
	}
	if found {
		return w.checkExact(k, v, 1)
	}
	if wasPresent && !r.lossy {
		return w.missing(k)
	}
	// The fill (timed as its own operation).
	return w.insert(i)
}

// ---------------------------------------------------------------- final checks

// forEachKey calls fn for every key index of the run's key space (and the
// inserted keys) from cfg.Workers goroutines, each with its own codec, and
// returns the first error fn returned (the others stop at their next key).
func forEachKey(r *run, cfg Config, fn func(c *codec, i uint64) error) error {
	n := uint64(r.keys + r.room)
	if r.room > 0 {
		n = min(r.next.Load(), n)
	}
	var next atomic.Uint64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < max(cfg.Workers, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCodec(r.suite.Value)
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := fn(c, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(n)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// finalCheck reads every key of the key space (and the inserted ones) with
// cfg.Workers goroutines and applies check to each.
func finalCheck(r *run, cfg Config, check func(c *codec, i uint64, k, v string, found bool) error) error {
	err := forEachKey(r, cfg, func(c *codec, i uint64) error {
		k := keyOf(i)
		v, found, err := r.store.Get(k)
		if err != nil {
			return fmt.Errorf("final get %q: %w", k, err)
		}
		return check(c, i, k, v, found)
	})
	if err != nil {
		return fmt.Errorf("after the timed phase: %w", err)
	}
	return nil
}

// finalExact: each key holds exactly its last version (a single writer per
// key), or is absent if never written.
func finalExact(r *run, cfg Config) error {
	return finalCheck(r, cfg, func(c *codec, i uint64, k, v string, found bool) error {
		want := r.issued[i].Load()
		if want == 0 {
			if found {
				return checkf("%q was never written but is present", k)
			}
			return nil
		}
		if !found {
			return checkf("%q is missing: version %d was written", k, want)
		}
		ver, err := c.check(k, v)
		if err != nil {
			return checkError{err}
		}
		if ver != want {
			return checkf("%q holds version %d, its only writer last wrote %d", k, ver, want)
		}
		return nil
	})
}

// finalBounded: each written key holds a version written for it (several
// writers may race on a key, so not necessarily the highest); a key never
// written is absent. For lossy stores only what is present is checked.
func finalBounded(r *run, cfg Config) error {
	return finalCheck(r, cfg, func(c *codec, i uint64, k, v string, found bool) error {
		hi := r.issued[i].Load()
		if !found {
			if hi > 0 && !r.lossy {
				return checkf("%q is missing: versions 1..%d were written and none deleted", k, hi)
			}
			return nil
		}
		if hi == 0 {
			return checkf("%q was never written but is present", k)
		}
		ver, err := c.check(k, v)
		if err != nil {
			return checkError{err}
		}
		if ver < 1 || ver > hi {
			return checkf("%q holds version %d, only 1..%d were written", k, ver, hi)
		}
		return nil
	})
}

// finalConcurrent: exact, with deletes (issued = version<<1 | deleted).
func finalConcurrent(r *run, cfg Config) error {
	return finalCheck(r, cfg, func(c *codec, i uint64, k, v string, found bool) error {
		st := r.issued[i].Load()
		if st&1 == 1 {
			if found {
				return checkf("%q was deleted last but is present", k)
			}
			return nil
		}
		if !found {
			return checkf("%q is missing: version %d was written last", k, st>>1)
		}
		ver, err := c.check(k, v)
		if err != nil {
			return checkError{err}
		}
		if ver != st>>1 {
			return checkf("%q holds version %d, its only writer last wrote %d", k, ver, st>>1)
		}
		return nil
	})
}
