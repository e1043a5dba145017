package storage

// Linearizability of concurrent histories, checked with porcupine
// (github.com/anishathalye/porcupine) against a sequential model of the
// contract (docs/architecture/go.md): every operation must appear to take
// effect atomically at one instant between its call and its return.
//
//   - Single-key operations (Put, Delete, Get, GetAppend) on a few keys by
//     many clients: the model is one register per key, and the history is
//     partitioned by key (a history is linearizable iff each key's is).
//   - Multi-key operations over three keys: the point operations plus
//     BatchPut, BatchDelete, BatchGet, a full iterator scan and optimistic
//     transactions (read two keys, write them, Commit: applied atomically
//     with reads equal to the state at the commit, or ErrConflict and no
//     effect with reads equal to some state inside the call). The model is
//     the whole three-key map.
//
// Every write writes a value no other write uses, so that a read names the
// write it saw. Timestamps come from one atomic counter taken just before a
// call and just after its return, which orders every pair of operations
// that did not overlap. GOMAXPROCS is raised above the number of cores so
// that clients are preempted inside calls. Each test engine runs with its
// default configuration (the C engine without a cache, "c-cache" with a
// 64 MiB one); the C engine runs again with a cache of 100 bytes, about one
// entry, so that fills and evictions race every write.
//
// TestLinearizabilityCatchesBrokenEngines shows the check can fail: an
// engine that sometimes serves a stale read, and one that applies a batch
// key by key, are both found illegal.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ---------------------------------------------------------------- single-key

type regKind uint8

const (
	regPut regKind = iota
	regDelete
	regGet
	regGetAppend
)

type regIn struct {
	kind  regKind
	key   string
	value string // regPut
}

// regOut is what a read returned (found or not); writes return nothing.
type regOut struct {
	value string
	found bool
}

// regModel is one register per key, partitioned by key.
var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(regIn).key
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(byKey))
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return regOut{} },
	Step: func(state, input, output any) (bool, any) {
		s, in := state.(regOut), input.(regIn)
		switch in.kind {
		case regPut:
			return true, regOut{in.value, true}
		case regDelete:
			return true, regOut{}
		}
		return output.(regOut) == s, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regIn), output.(regOut)
		switch in.kind {
		case regPut:
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		case regDelete:
			return fmt.Sprintf("delete(%s)", in.key)
		}
		return fmt.Sprintf("get(%s) -> %q %v", in.key, out.value, out.found)
	},
}

// ---------------------------------------------------------------- multi-key

// The multi-key operations work on mKeys; a state is their values.
var mKeys = [3]string{"m/a", "m/b", "m/c"}

type mVal struct {
	value string
	found bool
}

type mState [3]mVal

type mKind uint8

const (
	mPut mKind = iota
	mDelete
	mGet
	mBatchPut
	mBatchDelete
	mBatchGet
	mScan
	mTxn
	mKinds
)

type mIn struct {
	kind mKind
	idx  int    // mPut, mDelete, mGet
	set  mState // mPut (idx), mBatchPut: found = written; mTxn: its writes
	// mBatchPut, mBatchDelete: the keys written or deleted; mTxn: the keys
	// read and then written (set[i].found false: deleted)
	mask [3]bool
	del  [3]bool // mTxn: the keys deleted rather than put
}

type mOut struct {
	got       mState // mGet (idx), mBatchGet, mScan, mTxn (the keys read)
	committed bool   // mTxn
}

var mModel = porcupine.Model{
	Init: func() any { return mState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(mState), input.(mIn), output.(mOut)
		switch in.kind {
		case mPut:
			s[in.idx] = in.set[in.idx]
		case mDelete:
			s[in.idx] = mVal{}
		case mGet:
			return out.got[in.idx] == s[in.idx], s
		case mBatchPut:
			for i := range s {
				if in.mask[i] {
					s[i] = in.set[i]
				}
			}
		case mBatchDelete:
			for i := range s {
				if in.mask[i] {
					s[i] = mVal{}
				}
			}
		case mBatchGet, mScan:
			return out.got == s, s
		case mTxn:
			for i := range s {
				if in.mask[i] && out.got[i] != s[i] {
					return false, s
				}
			}
			if out.committed {
				for i := range s {
					if in.mask[i] {
						s[i] = in.set[i]
					}
				}
			}
		}
		return true, s
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
}

// ---------------------------------------------------------------- clients

// linClock orders calls and returns: a value taken before a call and one
// taken after its return.
type linClock struct{ t atomic.Int64 }

func (c *linClock) now() int64 { return c.t.Add(1) }

// linRun runs clients goroutines of f concurrently with GOMAXPROCS raised
// above the core count, and returns their operations.
func linRun(t *testing.T, clients int, f func(c int, clk *linClock, ops *[]porcupine.Operation)) []porcupine.Operation {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, 4*runtime.NumCPU())))
	var clk linClock
	per := make([][]porcupine.Operation, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c, &clk, &per[c])
		}()
	}
	wg.Wait()
	var all []porcupine.Operation
	for _, ops := range per {
		all = append(all, ops...)
	}
	return all
}

// linErr reports an error that the operation may not return. A client
// goroutine cannot call t.Fatal; the history check then fails too.
func linErr(t *testing.T, what string, err error) {
	t.Errorf("%s: unexpected error %v", what, err)
}

// linReset deletes the keys a history uses, so that it starts from the
// model's initial state (every key absent).
func linReset(t *testing.T, e Engine, nkeys int) {
	keys := append([]string(nil), mKeys[:]...)
	for i := range nkeys {
		keys = append(keys, fmt.Sprintf("r/%d", i))
	}
	if err := e.BatchDelete(bg, keys); err != nil {
		t.Fatalf("BatchDelete: %v", err)
	}
}

// regHistory runs clients doing ops single-key operations each on nkeys
// keys of e.
func regHistory(t *testing.T, e Engine, clients, ops, nkeys int) []porcupine.Operation {
	linReset(t, e, nkeys)
	return linRun(t, clients, func(c int, clk *linClock, out *[]porcupine.Operation) {
		r := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
		buf := make([]byte, 0, 64)
		for i := range ops {
			in := regIn{kind: regKind(r.IntN(4)), key: fmt.Sprintf("r/%d", r.IntN(nkeys))}
			var res regOut
			call := clk.now()
			switch in.kind {
			case regPut:
				in.value = fmt.Sprintf("c%d.%d", c, i)
				if err := e.Put(bg, in.key, in.value); err != nil {
					linErr(t, "Put", err)
				}
			case regDelete:
				if err := e.Delete(bg, in.key); err != nil {
					linErr(t, "Delete", err)
				}
			case regGet:
				v, err := e.Get(bg, in.key)
				res = regOut{v, err == nil}
				if err != nil && !errors.Is(err, ErrNotFound) {
					linErr(t, "Get", err)
				}
			case regGetAppend:
				var err error
				buf, err = e.GetAppend(bg, buf[:0], in.key)
				res = regOut{string(buf), err == nil}
				if err != nil && !errors.Is(err, ErrNotFound) {
					linErr(t, "GetAppend", err)
				}
			}
			ret := clk.now()
			*out = append(*out, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: res, Return: ret})
		}
	})
}

// mHistory runs clients doing ops multi-key operations each on mKeys.
func mHistory(t *testing.T, e Engine, clients, ops int) []porcupine.Operation {
	linReset(t, e, 0)
	return linRun(t, clients, func(c int, clk *linClock, out *[]porcupine.Operation) {
		r := rand.New(rand.NewPCG(uint64(c)+100, uint64(time.Now().UnixNano())))
		for i := range ops {
			in := mIn{kind: mKind(r.IntN(int(mKinds))), idx: r.IntN(len(mKeys))}
			val := func(j int) mVal { return mVal{fmt.Sprintf("c%d.%d.%d", c, i, j), true} }
			for j := range in.mask {
				in.mask[j] = r.IntN(3) != 0
			}
			var res mOut
			var err error
			call := clk.now()
			switch in.kind {
			case mPut:
				in.set[in.idx] = val(in.idx)
				err = e.Put(bg, mKeys[in.idx], in.set[in.idx].value)
			case mDelete:
				err = e.Delete(bg, mKeys[in.idx])
			case mGet:
				var v string
				v, err = e.Get(bg, mKeys[in.idx])
				res.got[in.idx] = mVal{v, err == nil}
				if errors.Is(err, ErrNotFound) {
					err = nil
				}
			case mBatchPut:
				kv := map[string]string{}
				for j := range mKeys {
					if in.mask[j] {
						in.set[j] = val(j)
						kv[mKeys[j]] = in.set[j].value
					}
				}
				err = e.BatchPut(bg, kv)
			case mBatchDelete:
				var keys []string
				for j := range mKeys {
					if in.mask[j] {
						keys = append(keys, mKeys[j])
					}
				}
				err = e.BatchDelete(bg, keys)
			case mBatchGet:
				var m map[string]string
				m, err = e.BatchGet(bg, mKeys[:])
				for j, k := range mKeys {
					v, ok := m[k]
					res.got[j] = mVal{v, ok}
				}
			case mScan:
				var it Iterator
				it, err = e.NewIterator(bg, "m/")
				if err == nil {
					for it.Next() {
						for j, k := range mKeys {
							if it.Key() == k {
								res.got[j] = mVal{it.Value(), true}
							}
						}
					}
					err = it.Error()
					it.Close()
				}
			case mTxn:
				for j := range in.del {
					in.del[j] = r.IntN(4) == 0
				}
				res, err = linTxn(e, &in, val)
			}
			ret := clk.now()
			if err != nil {
				linErr(t, fmt.Sprint("operation ", in.kind), err)
			}
			*out = append(*out, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: res, Return: ret})
		}
	})
}

// linTxn runs one transaction: read the keys of in.mask, then put a fresh
// value in each (or delete it, for the keys of in.del), and commit.
func linTxn(e Engine, in *mIn, val func(int) mVal) (mOut, error) {
	var res mOut
	txn, err := e.BeginTransaction(bg)
	if err != nil {
		return res, err
	}
	for j, k := range mKeys {
		if !in.mask[j] {
			continue
		}
		v, err := txn.Get(k)
		if err != nil && !errors.Is(err, ErrNotFound) {
			txn.Rollback()
			return res, err
		}
		res.got[j] = mVal{v, err == nil}
	}
	for j, k := range mKeys {
		if !in.mask[j] {
			continue
		}
		if in.del[j] {
			err = txn.Delete(k)
		} else {
			in.set[j] = val(j)
			err = txn.Put(k, in.set[j].value)
		}
		if err != nil {
			txn.Rollback()
			return res, err
		}
	}
	switch err := txn.Commit(); {
	case err == nil:
		res.committed = true
	case !errors.Is(err, ErrConflict):
		return res, err
	}
	return res, nil
}

// linCheck checks h against model and fails the test unless it is
// linearizable.
func linCheck(t *testing.T, what string, model porcupine.Model, h []porcupine.Operation) {
	t.Helper()
	res, _ := porcupine.CheckOperationsVerbose(model, h, 20*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("%s: %d operations: %s", what, len(h), res)
	}
}

// linConfigs are the cache sizes the engines run with (the tiny cache only
// for the C engine: the pure-Go engine has no cache, and "c-cache" would
// repeat it).
var linConfigs = []struct {
	name  string
	cache int64
}{{"default", 0}, {"tiny-cache", 100}} // 100 bytes: about one entry

func TestLinearizability(t *testing.T) {
	rounds, ops := scaled(40, 8), scaled(400, 100)
	forEachEngine(t, func(t *testing.T, te testEngine) {
		for _, cfg := range linConfigs {
			if te.name != "c" && cfg.cache != 0 {
				continue
			}
			t.Run(cfg.name, func(t *testing.T) {
				e := te.new(StorageConfig{CacheSize: cfg.cache})
				mustIs(t, "Init", e.Init(""), nil)
				defer e.Close()
				for round := range rounds {
					linCheck(t, fmt.Sprint("single-key round ", round), regModel, regHistory(t, e, 8, ops, 4))
					linCheck(t, fmt.Sprint("multi-key round ", round), mModel, mHistory(t, e, 6, ops/8))
				}
				// The tiny cache did serve reads and evict: its races ran.
				if s := e.Stats(); cfg.cache != 0 && (s.CacheHits == 0 || s.CacheEvictions == 0) {
					t.Fatalf("tiny cache: %d hits, %d evictions: the cache took no part", s.CacheHits, s.CacheEvictions)
				} else {
					t.Logf("cache: %d hits, %d misses, %d evictions", s.CacheHits, s.CacheMisses, s.CacheEvictions)
				}
			})
		}
	})
}

// ---------------------------------------------------------------- broken engines

// staleEngine serves, one read in three, the value it returned last time
// for the key: a cache that misses an invalidation.
type staleEngine struct {
	Engine
	mu   sync.Mutex
	last map[string]string
}

func (s *staleEngine) Get(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	v, ok := s.last[key]
	s.mu.Unlock()
	if ok && rand.IntN(3) == 0 {
		return v, nil
	}
	v, err := s.Engine.Get(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.last[key] = v
		s.mu.Unlock()
	}
	return v, err
}

func (s *staleEngine) GetAppend(ctx context.Context, dst []byte, key string) ([]byte, error) {
	v, err := s.Get(ctx, key)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// keyByKeyEngine applies a batch one key at a time, yielding in between.
type keyByKeyEngine struct{ Engine }

func (k keyByKeyEngine) BatchPut(ctx context.Context, kv map[string]string) error {
	for key, v := range kv {
		if err := k.Engine.Put(ctx, key, v); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return nil
}

func (k keyByKeyEngine) BatchDelete(ctx context.Context, keys []string) error {
	for _, key := range keys {
		if err := k.Engine.Delete(ctx, key); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return nil
}

func TestLinearizabilityCatchesBrokenEngines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		check := func(t *testing.T, history func(e Engine) []porcupine.Operation, model porcupine.Model, wrap func(Engine) Engine) {
			for round := range 50 {
				e := te.new(StorageConfig{})
				mustIs(t, "Init", e.Init(""), nil)
				h := history(wrap(e))
				e.Close()
				if res, _ := porcupine.CheckOperationsVerbose(model, h, 20*time.Second); res == porcupine.Illegal {
					t.Logf("found illegal in round %d (%d operations)", round, len(h))
					return
				}
			}
			t.Fatal("the broken engine passed 50 rounds of the check")
		}
		t.Run("stale-reads", func(t *testing.T) {
			check(t, func(e Engine) []porcupine.Operation { return regHistory(t, e, 8, 100, 2) }, regModel,
				func(e Engine) Engine { return &staleEngine{Engine: e, last: map[string]string{}} })
		})
		t.Run("batch-key-by-key", func(t *testing.T) {
			check(t, func(e Engine) []porcupine.Operation { return mHistory(t, e, 6, 60) }, mModel,
				func(e Engine) Engine { return keyByKeyEngine{e} })
		})
	})
}
