package benchmark

// The durable suites: the engines opened with a data directory (a fresh
// temporary one per run, under --data-dir), each peer configured as its
// documentation recommends for the same guarantee (Registration.Durable).
//
// A figure is reported as durable only if the data survived: every durable
// suite closes its store, opens a new one on the same directory and reads
// every key back. A key that an acknowledged write put there and the reopen
// lost makes the result "not durable" (Result.NotDurable), and its figures
// are never printed as durable ones; a wrong value fails the run as in every
// suite. YCSB over a durable database reopens before its timed phase (it
// reads a database opened from disk) and again after it.
//
// The floor is the disk's own rate of one writer's fdatasyncs, measured in
// the same directory in the same run (fdatasync_*.go).

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// recoveryValue is the value size of the recovery suite's database.
const recoveryValue = 1000

// durableValue is the durable suites' value: 100 bytes, incompressible.
var durableValue = valueSpec{Min: 100, Max: 100, Incompressible: true}

// durableSuites are appended to Suites (they run after the in-memory ones).
var durableSuites = []*Suite{
	syncWriteSuite(1), syncWriteSuite(4), syncWriteSuite(16),
	{
		Name: "nosync-write", Title: "durable database, unsynced writes (4 writers)",
		Description: "Like sync-write with 4 writers and writes not synced (our SyncWrites false, pebble " +
			"NoSync, badger SyncWrites false, bbolt NoSync): a write survives the process, not " +
			"necessarily a power loss. Checked like sync-write, after a reopen too.",
		Durable: true, Writers: 4, ExactReopen: true, Value: durableValue, Op: opRandomWrite, Final: finalExact,
	},
	{
		Name: "durable-ycsb-a", Title: "durable database, YCSB A (50% read, 50% unsynced update)",
		Description: "YCSB A over a durable database: the key space is loaded, the store closed and " +
			"reopened (every key must be back), then Zipf(0.99) half reads, half updates (unsynced). " +
			"Checked like ycsb-a, and again after a second reopen.",
		Durable: true, Preload: true, Zipf: true, Value: durableValue, Op: ycsbMix(50), Final: finalBounded,
	},
	{
		Name: "durable-ycsb-c", Title: "durable database, YCSB C (read only)",
		Description: "YCSB C over a durable database: the key space is loaded, the store closed and " +
			"reopened (every key must be back), then Zipf(0.99) reads. Every read checked.",
		Durable: true, Preload: true, Zipf: true, Value: durableValue, Op: ycsbMix(100), Final: finalBounded,
	},
	{
		Name: "recovery", Title: "reopen (recovery) of a database of --recovery-bytes",
		Description: "A database of --recovery-bytes of live data (16-byte keys, 1000-byte values; " +
			"16 MiB at light, 128 MiB at medium, 1 GiB at heavy) is loaded in batches, every key " +
			"overwritten once (unsynced), and closed; then the time to open it again is measured, " +
			"and every key must hold its second version. Reports the reopen time, the database's " +
			"bytes on disk per second of reopen, bytes on disk per live byte, and RSS after the " +
			"reopen and a read of every key.",
		Durable: true, Value: valueSpec{Min: recoveryValue, Max: recoveryValue, Incompressible: true}, Run: runRecovery,
	},
}

func syncWriteSuite(writers int) *Suite {
	return &Suite{
		Name:  fmt.Sprintf("sync-write-%d", writers),
		Title: fmt.Sprintf("durable database, synced writes (%d writers)", writers),
		Description: fmt.Sprintf("%d writers put random keys of their own (one writer per key) into an "+
			"empty durable database, every write synced before it returns (our SyncWrites, pebble Sync, "+
			"badger SyncWrites, bbolt's fsync per Update): concurrent writers can share fsyncs (group "+
			"commit). Afterwards every key must hold exactly its last version, and again after the "+
			"store is closed and reopened.", writers),
		Durable: true, Sync: true, Writers: writers, MinDuration: time.Second, ExactReopen: true, Value: durableValue,
		Op: opRandomWrite, Final: finalExact,
	}
}

func init() { Suites = append(Suites, durableSuites...) }

// reopen closes the store, measures its directory, opens a new store on it
// and reads back every key. A key that an acknowledged write left there and
// the reopen lost is counted, and res.NotDurable says how many; a wrong
// value, or a key present that was never written, fails the run. It returns
// whether every acknowledged write survived.
func (r *run) reopen(cfg Config, dir string, open func() (Store, error), res *Result, exact bool) bool {
	err := r.store.Close()
	r.store, r.ordered = nil, nil
	if err != nil {
		r.fail(false, fmt.Errorf("close before the reopen: %w", err))
		return false
	}
	res.DiskBytes = diskUsage(dir)
	t := time.Now()
	st, err := open()
	res.ReopenNs = time.Since(t).Nanoseconds()
	if err != nil {
		r.fail(false, fmt.Errorf("reopen of %s: %w", dir, err))
		return false
	}
	r.setStore(st)
	lost, acked, live, err := r.verifyAll(cfg, exact)
	res.LiveBytes = live
	if err != nil {
		var ce checkError
		r.fail(errors.As(err, &ce), fmt.Errorf("after the reopen: %w", err))
		return false
	}
	if lost > 0 {
		res.NotDurable = fmt.Sprintf("a reopen of its data directory lost %d of %d acknowledged keys", lost, acked)
		return false
	}
	return true
}

// verifyAll reads every key of the run with cfg.Workers goroutines: it
// returns how many acknowledged keys are missing, how many there are, and
// the live bytes found; the error is a wrong value (a checkError) or an
// engine error.
func (r *run) verifyAll(cfg Config, exact bool) (lost, acked uint64, live int64, err error) {
	var nLost, nAcked atomic.Uint64
	var nLive atomic.Int64
	err = forEachKey(r, cfg, func(c *codec, i uint64) error {
		return r.verifyKey(c, i, exact, &nLost, &nAcked, &nLive)
	})
	return nLost.Load(), nAcked.Load(), nLive.Load(), err
}

func (r *run) verifyKey(c *codec, i uint64, exact bool, lost, acked *atomic.Uint64, live *atomic.Int64) error {
	k := keyOf(i)
	v, found, err := r.store.Get(k)
	if err != nil {
		return fmt.Errorf("get %q: %w", k, err)
	}
	hi := r.issued[i].Load()
	if hi > 0 {
		acked.Add(1)
	}
	switch {
	case !found && hi > 0:
		lost.Add(1)
		return nil
	case !found:
		return nil
	case hi == 0:
		return checkf("%q was never written but is present", k)
	}
	live.Add(int64(len(k) + len(v)))
	ver, err := c.check(k, v)
	if err != nil {
		return checkError{err}
	}
	if exact && ver != hi {
		return checkf("%q holds version %d, its only writer last wrote %d", k, ver, hi)
	}
	if ver < 1 || ver > hi {
		return checkf("%q holds version %d, only 1..%d were written", k, ver, hi)
	}
	return nil
}

// runRecovery is the recovery suite: load, overwrite, close, then time the
// reopen and check every key.
func runRecovery(cfg Config, s *Suite, reg Registration, onStart progressFunc) *Result {
	keys := int(max(cfg.RecoveryBytes/int64(keyLen+recoveryValue), 1000))
	res := &Result{
		Suite: s.Name, Engine: reg.Name, Peer: reg.Peer, Workers: cfg.Workers, Keys: keys,
		ValueBytes: [2]int{recoveryValue, recoveryValue}, EngineCacheHitRatio: -1, Durable: true,
	}
	failed := func(what string, err error) *Result {
		res.Errors++
		if res.Failure == "" {
			res.Failure = fmt.Sprintf("%s on %s: %s: %v", s.Name, reg.Name, what, err)
		}
		return res
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "mantisdb-recovery-"+reg.Name+"-")
	if err != nil {
		return failed("cannot make a data directory", err)
	}
	defer os.RemoveAll(dir)
	open := func() (Store, error) { return reg.Durable(dir, false) }
	r := &run{suite: s, reg: reg, keys: keys, workers: cfg.Workers}
	r.issued = make([]atomic.Uint64, keys)
	st, err := open()
	if err != nil {
		return failed("cannot make the store", err)
	}
	r.setStore(st)
	if onStart != nil {
		onStart(s.Name, reg.Name, time.Now(), cfg.Duration)
	}
	r.load(cfg, 1, 1)
	if !r.stop.Load() {
		r.load(cfg, 2, 2)
	}
	if !r.stop.Load() && r.reopen(cfg, dir, open, res, true) {
		res.Ops = uint64(keys)
		res.DurationNs = res.ReopenNs
		res.OpsPerSec = float64(keys) / (float64(max(res.ReopenNs, 1)) / 1e9)
		res.MeanNs, res.P50Ns, res.P95Ns, res.P99Ns, res.P999Ns, res.MaxNs =
			float64(res.ReopenNs), res.ReopenNs, res.ReopenNs, res.ReopenNs, res.ReopenNs, res.ReopenNs
	}
	res.RSSBytes = readRSS()
	if r.store != nil {
		if err := r.store.Close(); err != nil {
			r.fail(false, fmt.Errorf("close: %w", err))
		}
	}
	res.Errors += r.errs
	res.CheckFailures += r.failures
	if res.Failure == "" {
		res.Failure = r.first
	}
	withholdIfNotDurable(res)
	return res
}
