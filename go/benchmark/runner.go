package benchmark

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one suite on one engine: one object of results.json.
type Result struct {
	Suite      string `json:"suite"`
	Engine     string `json:"engine"`
	Peer       bool   `json:"peer"`
	Workers    int    `json:"workers"`
	Keys       int    `json:"keys"`
	ValueBytes [2]int `json:"value_bytes"` // min and max value size
	DurationNs int64  `json:"duration_ns"`
	Ops        uint64 `json:"ops"`

	OpsPerSec float64 `json:"ops_per_sec"`
	MeanNs    float64 `json:"mean_ns"`
	P50Ns     int64   `json:"p50_ns"`
	P95Ns     int64   `json:"p95_ns"`
	P99Ns     int64   `json:"p99_ns"`
	P999Ns    int64   `json:"p999_ns"`
	MaxNs     int64   `json:"max_ns"`

	// Errors counts calls that returned an error; CheckFailures counts
	// reads that returned a wrong answer. Either fails the run.
	Errors        uint64 `json:"errors"`
	CheckFailures uint64 `json:"check_failures"`
	// Failure is the first error or failed check, "" if none.
	Failure string `json:"failure,omitempty"`

	// Reads counts point reads and read-modify-writes; Hits those that
	// found the key. HitRatio is Hits/Reads (caches may drop entries;
	// for other stores every miss is of a key not written yet, or
	// deleted).
	Reads    uint64  `json:"reads"`
	Hits     uint64  `json:"hits"`
	HitRatio float64 `json:"hit_ratio"`
	// EngineCacheHitRatio is our engines' own cache's hit ratio (from
	// Stats), -1 when the engine has no cache.
	EngineCacheHitRatio float64 `json:"engine_cache_hit_ratio"`

	// HeapBytes is the live Go heap after the timed phase (after a GC)
	// minus the live heap before the store was made: what the store
	// keeps on the Go heap. HeapTotalBytes is the whole live heap.
	HeapBytes      int64  `json:"heap_bytes"`
	HeapTotalBytes uint64 `json:"heap_total_bytes"`
	// RSSBytes is the process's resident set at the end of the timed
	// phase; RSSDeltaBytes its growth since before the store was made
	// (memory returned to the OS between suites).
	RSSBytes      int64  `json:"rss_bytes"`
	RSSDeltaBytes int64  `json:"rss_delta_bytes"`
	GCPauseNs     uint64 `json:"gc_pause_total_ns"`
	GCCount       uint32 `json:"gc_count"`
	// GCCPUSeconds is the CPU time the Go runtime spent collecting
	// garbage during the timed phase (runtime/metrics
	// /cpu/classes/gc/total:cpu-seconds: the mark workers, assists and
	// pauses, all threads): unlike pauses, it counts the concurrent work
	// a large heap costs; an estimate (the runtime calls it an
	// overestimate), comparable across the engines of one run, that counts
	// the cycles ended by the phase's end. GCCPULoadSeconds is the same
	// over the preload.
	GCCPUSeconds     float64 `json:"gc_cpu_seconds"`
	GCCPULoadSeconds float64 `json:"gc_cpu_load_seconds"`

	// Durable marks the durable suites' results. NotDurable, when not
	// empty, says why the figures are not those of a durable store (a
	// reopen of its data directory lost acknowledged writes): they are
	// then reported as "not durable", never as figures. DiskBytes is the
	// size on disk (allocated blocks) of the data directory after Close;
	// LiveBytes the key and value bytes the reopened store holds;
	// ReopenNs how long opening the closed directory took.
	Durable    bool   `json:"durable,omitempty"`
	NotDurable string `json:"not_durable,omitempty"`
	DiskBytes  int64  `json:"disk_bytes,omitempty"`
	LiveBytes  int64  `json:"live_bytes,omitempty"`
	ReopenNs   int64  `json:"reopen_ns,omitempty"`
}

// OK reports whether the result has no error and no failed check.
func (r *Result) OK() bool { return r.Errors == 0 && r.CheckFailures == 0 && r.Failure == "" }

// run is one suite on one store.
type run struct {
	suite   *Suite
	reg     Registration
	store   Store
	ordered OrderedStore // nil if the store cannot scan
	lossy   bool
	keys    int // the key space (preloaded, when the suite preloads)
	room    int // key indices keys..keys+room-1 are for inserts
	workers int

	// issued[i] is the highest version of key i handed to a writer (0:
	// never written). A writer takes its version from it before it
	// writes, so any version read back is at most issued[i], loaded after
	// the read. concurrent-ops keeps version<<1|deleted there instead.
	issued []atomic.Uint64
	// present[i] is set once a write of key i has returned (suites with
	// inserts and fills): from then on a non-lossy store must find it.
	present []atomic.Bool
	next    atomic.Uint64 // the next index to insert (keys..)

	stop     atomic.Bool
	failMu   sync.Mutex
	failures uint64
	errs     uint64
	first    string
}

// fail records a failed check (check true) or an engine error and stops the
// suite: measuring a store that gives wrong answers is pointless.
func (r *run) fail(check bool, err error) {
	r.failMu.Lock()
	if check {
		r.failures++
	} else {
		r.errs++
	}
	if r.first == "" {
		kind := "error"
		if check {
			kind = "check failed"
		}
		r.first = fmt.Sprintf("%s on %s: %s: %v", r.suite.Name, r.reg.Name, kind, err)
	}
	r.failMu.Unlock()
	r.stop.Store(true)
}

// checkError marks errors that are failed checks, not engine errors.
type checkError struct{ err error }

func (e checkError) Error() string { return e.err.Error() }
func (e checkError) Unwrap() error { return e.err }

func checkf(format string, args ...any) error {
	return checkError{fmt.Errorf(format, args...)}
}

// worker is one goroutine of a suite.
type worker struct {
	id    int
	r     *run
	rng   *rand.Rand
	zipf  *Zipf
	codec *codec
	hist  *histogram

	ops, reads, hits uint64
	pos              uint64 // sequential position (sequential suites)
}

const histMaxNs = int64(60 * time.Second)

// record adds the latency of one operation that started at t.
func (w *worker) record(t time.Time) {
	ns := time.Since(t).Nanoseconds()
	if ns < 1 {
		ns = 1
	} else if ns > histMaxNs {
		ns = histMaxNs
	}
	w.hist.record(ns)
	w.ops++
}

// progressFunc is told when a suite's timed phase starts.
type progressFunc func(suite, engine string, started time.Time, d time.Duration)

// runOne runs suite s on the store made by reg and returns its result.
func runOne(cfg Config, s *Suite, reg Registration, onStart progressFunc) *Result {
	if s.Run != nil {
		return s.Run(cfg, s, reg, onStart)
	}
	keys, room := s.keySpace(cfg)
	workers := cfg.Workers * max(s.WorkersMul, 1)
	if s.Writers > 0 {
		workers = s.Writers
	}
	res := &Result{
		Suite: s.Name, Engine: reg.Name, Peer: reg.Peer, Workers: workers, Keys: keys,
		ValueBytes: [2]int{s.Value.Min, s.Value.Max}, EngineCacheHitRatio: -1, Durable: s.Durable,
	}
	r := &run{suite: s, reg: reg, lossy: reg.Lossy, keys: keys, room: room, workers: workers}
	r.issued = make([]atomic.Uint64, keys+room)
	if s.Tracks {
		r.present = make([]atomic.Bool, keys+room)
	}
	r.next.Store(uint64(keys))
	ws := make([]*worker, workers)
	for i := range ws {
		rng := rand.New(rand.NewPCG(cfg.Seed+uint64(i), uint64(i)*0x9e3779b97f4a7c15+1))
		ws[i] = &worker{
			id: i, r: r, rng: rng, codec: newCodec(s.Value),
			hist: newHistogram(histMaxNs),
		}
		if s.Zipf {
			ws[i].zipf = NewZipf(rng, uint64(keys), 0.99)
		}
	}

	// The baseline: everything the harness needs is allocated; the store
	// is not made yet.
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBase := ms.HeapAlloc
	rssBase := readRSS()

	open := func() (Store, error) { return reg.New(keys + room) }
	var dir string
	if s.Durable {
		d, err := os.MkdirTemp(cfg.DataDir, "mantisdb-"+s.Name+"-"+reg.Name+"-")
		if err != nil {
			res.Errors = 1
			res.Failure = fmt.Sprintf("%s on %s: cannot make a data directory: %v", s.Name, reg.Name, err)
			return res
		}
		dir = d
		defer os.RemoveAll(dir)
		open = func() (Store, error) { return reg.Durable(dir, s.Sync) }
	}
	store, err := open()
	if err != nil {
		res.Errors = 1
		res.Failure = fmt.Sprintf("%s on %s: cannot make the store: %v", s.Name, reg.Name, err)
		return res
	}
	r.setStore(store)
	defer func() {
		if r.store != nil {
			if err := r.store.Close(); err != nil && res.Failure == "" {
				res.Errors++
				res.Failure = fmt.Sprintf("%s on %s: close: %v", s.Name, reg.Name, err)
			}
		}
		r.store, r.ordered = nil, nil
		runtime.GC()
		debug.FreeOSMemory()
	}()
	if s.Ordered && r.ordered == nil {
		r.fail(false, errors.New("the suite needs ordered scans and the store has none"))
	}
	gcLoad := gcCPUSeconds()
	if s.Preload && !r.stop.Load() {
		r.preload(cfg)
	}
	res.GCCPULoadSeconds = gcCPUSeconds() - gcLoad
	// A durable suite reads a database that was closed and reopened: the
	// timed phase runs only if the reopen kept the preloaded data.
	if s.Durable && s.Preload && !r.stop.Load() && !r.reopen(cfg, dir, open, res, s.ExactReopen) {
		r.stop.Store(true)
	}

	runtime.GC()
	runtime.ReadMemStats(&ms)
	gcBefore, pauseBefore := ms.NumGC, ms.PauseTotalNs
	gcCPUBefore := gcCPUSeconds()
	d := cfg.Duration
	if !cfg.DurationSet {
		d = max(d, s.MinDuration)
	}
	if onStart != nil {
		onStart(s.Name, reg.Name, time.Now(), d)
	}
	var wg sync.WaitGroup
	start := time.Now()
	if !r.stop.Load() {
		timer := time.AfterFunc(d, func() { r.stop.Store(true) })
		for _, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !r.stop.Load() {
					if err := s.Op(w); err == errIdle {
						return
					} else if err != nil {
						var ce checkError
						r.fail(errors.As(err, &ce), err)
						return
					}
				}
			}()
		}
		wg.Wait()
		timer.Stop()
	}
	elapsed := time.Since(start)
	res.RSSBytes = readRSS()
	res.RSSDeltaBytes = res.RSSBytes - rssBase
	runtime.ReadMemStats(&ms)
	res.GCCount = ms.NumGC - gcBefore
	res.GCPauseNs = ms.PauseTotalNs - pauseBefore
	res.GCCPUSeconds = gcCPUSeconds() - gcCPUBefore
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapTotalBytes = ms.HeapAlloc
	res.HeapBytes = int64(ms.HeapAlloc) - int64(heapBase)
	if st, ok := r.store.(StatsStore); ok {
		if hr, ok := st.CacheHitRatio(); ok {
			res.EngineCacheHitRatio = hr
		}
	}

	// After the timed phase: every key's final value, untimed; for a
	// durable suite, again after a reopen of the closed directory.
	if r.first == "" && res.NotDurable == "" && s.Final != nil {
		if err := s.Final(r, cfg); err != nil {
			var ce checkError
			r.fail(errors.As(err, &ce), err)
		}
	}
	if s.Durable && r.first == "" && res.NotDurable == "" {
		r.reopen(cfg, dir, open, res, s.ExactReopen)
	}

	h := newHistogram(histMaxNs)
	for _, w := range ws {
		h.merge(w.hist)
		res.Ops += w.ops
		res.Reads += w.reads
		res.Hits += w.hits
	}
	res.DurationNs = elapsed.Nanoseconds()
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	}
	if h.count() > 0 {
		res.MeanNs = h.mean()
		res.P50Ns = h.quantile(50)
		res.P95Ns = h.quantile(95)
		res.P99Ns = h.quantile(99)
		res.P999Ns = h.quantile(99.9)
		res.MaxNs = h.quantile(100)
	}
	if res.Reads > 0 {
		res.HitRatio = float64(res.Hits) / float64(res.Reads)
	}
	res.Errors += r.errs
	res.CheckFailures += r.failures
	if res.Failure == "" {
		res.Failure = r.first
	}
	withholdIfNotDurable(res)
	return res
}

// withholdIfNotDurable zeroes the rates and latencies of a durable result
// whose reopen lost writes: they are an in-memory store's, and results.json
// must not offer them as durable figures (Ops still says what ran).
func withholdIfNotDurable(res *Result) {
	if res.NotDurable == "" {
		return
	}
	res.OpsPerSec, res.MeanNs, res.ReopenNs = 0, 0, 0
	res.P50Ns, res.P95Ns, res.P99Ns, res.P999Ns, res.MaxNs = 0, 0, 0, 0, 0
}

// setStore makes st the store the suite drives.
func (r *run) setStore(st Store) {
	r.store, r.ordered = st, nil
	if o, ok := st.(OrderedStore); ok {
		r.ordered = o
	}
}

// preload writes keys 0..keys-1 at version 1, in batches of 1000 where the
// store has batches, with cfg.Workers goroutines.
func (r *run) preload(cfg Config) {
	state := r.suite.PreloadState
	if state == 0 {
		state = 1
	}
	r.load(cfg, state, 1)
}

// load writes keys 0..keys-1 at version ver, recording state in issued.
func (r *run) load(cfg Config, state, ver uint64) {
	const chunk = 1000
	var nextChunk atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < max(cfg.Workers, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCodec(r.suite.Value)
			bs, batched := r.store.(BatchStore)
			for !r.stop.Load() {
				lo := int(nextChunk.Add(chunk)) - chunk
				if lo >= r.keys {
					return
				}
				hi := min(lo+chunk, r.keys)
				var batch map[string]string
				if batched {
					batch = make(map[string]string, hi-lo)
				}
				for i := lo; i < hi; i++ {
					r.issued[i].Store(state)
					k := keyOf(uint64(i))
					v := c.value(k, ver)
					if batched {
						batch[k] = v
					} else if err := r.store.Put(k, v); err != nil {
						r.fail(false, fmt.Errorf("preload put %q: %w", k, err))
						return
					}
				}
				if batched {
					if err := bs.BatchPut(batch); err != nil {
						r.fail(false, fmt.Errorf("preload batch put of %d keys: %w", len(batch), err))
						return
					}
				}
				if r.present != nil {
					for i := lo; i < hi; i++ {
						r.present[i].Store(true)
					}
				}
			}
		}()
	}
	wg.Wait()
}
