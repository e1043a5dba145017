package benchmark

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Store is what a suite drives: one adapter per engine or peer. Every method
// is called concurrently by the suite's workers.
type Store interface {
	// Put writes key -> value.
	Put(key, value string) error
	// Get returns the value of key and whether it was found; a missing
	// key is not an error.
	Get(key string) (value string, found bool, err error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(key string) error
	// Close releases the store.
	Close() error
}

// BatchStore is a Store with atomic multi-key writes. The suites load their
// data set through it when a store has it.
type BatchStore interface {
	Store
	BatchPut(kv map[string]string) error
}

// OrderedStore is a Store that can scan keys in ascending bytewise order.
type OrderedStore interface {
	Store
	// Scan calls fn for each key with the prefix, in ascending order,
	// until fn returns false.
	Scan(prefix string, fn func(key, value string) bool) error
}

// StatsStore is a Store that reports its own cache hit ratio (our engines).
type StatsStore interface {
	Store
	// CacheHitRatio returns the engine's own cache hit ratio, and false if
	// the engine has no cache.
	CacheHitRatio() (float64, bool)
}

// Registration declares an engine or a peer: how to make one and which suites
// it fits.
type Registration struct {
	// Name is what --engines and the reports call it.
	Name string
	// About is one line for --help and the report.
	About string
	// Peer is true for the libraries we are compared with, false for our
	// engines.
	Peer bool
	// Ordered declares that New returns an OrderedStore: the store runs
	// the ordered suites (YCSB E, prefix-scan).
	Ordered bool
	// OrderedOnly restricts the store to the ordered suites.
	OrderedOnly bool
	// Lossy declares a cache that may drop entries: it runs only the
	// cache-shaped suites, where a read miss is counted and is not an
	// error (a hit must still return the value written).
	Lossy bool
	// New makes an empty in-memory store sized for capacity keys; nil for
	// stores that only run the durable suites.
	New func(capacity int) (Store, error)
	// Durable opens a store that keeps its data in dir (created if
	// missing), reopening what a store closed there before; with sync,
	// every write is on stable storage when it returns (the store's own
	// recommended setting for that guarantee), else it may be lost by a
	// power failure but not by a clean Close. nil for stores without a
	// durable mode. The durable suites close it and open a second one on
	// the same dir to check that acknowledged writes survived.
	Durable func(dir string, sync bool) (Store, error)
}

// Fits reports whether the store runs suite s.
func (r Registration) Fits(s *Suite) bool {
	switch {
	case s.Durable && r.Durable == nil:
		return false
	case !s.Durable && r.New == nil:
		return false
	case s.Ordered && !r.Ordered:
		return false
	case r.OrderedOnly && !s.Ordered:
		return false
	case r.Lossy && !s.CacheShaped:
		return false
	}
	return true
}

var (
	registryMu sync.Mutex
	registry   []Registration
)

// Register adds an engine to the built-in registry (used by the files that
// exist only in some builds, like the C engine's).
func Register(r Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry = append(registry, r)
}

// Registered returns the built-in engines of this build followed by extra,
// our engines first.
func Registered(extra ...Registration) ([]Registration, error) {
	registryMu.Lock()
	all := append([]Registration(nil), registry...)
	registryMu.Unlock()
	all = append(all, extra...)
	seen := map[string]bool{}
	for _, r := range all {
		if r.Name == "" || (r.New == nil && r.Durable == nil) {
			return nil, fmt.Errorf("benchmark: registration %q has no name or no constructor", r.Name)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("benchmark: engine %q registered twice", r.Name)
		}
		seen[r.Name] = true
	}
	ours := make([]Registration, 0, len(all))
	var peers []Registration
	for _, r := range all {
		if r.Peer {
			peers = append(peers, r)
		} else {
			ours = append(ours, r)
		}
	}
	return append(ours, peers...), nil
}

func init() {
	Register(Registration{
		Name:    "purego",
		About:   "MantisDB pure-Go engine (go/storage: a map behind a RWMutex, the default build)",
		Ordered: true,
		New: func(int) (Store, error) {
			return OpenEngine(storage.NewPureGoStorageEngine(storage.StorageConfig{}))
		},
		Durable: func(dir string, sync bool) (Store, error) {
			return OpenEngineDir(storage.NewPureGoStorageEngine(
				storage.StorageConfig{DataDir: dir, SyncWrites: sync}), dir)
		},
	})
	Register(Registration{
		Name:  "syncmap",
		About: "peer: the standard library's sync.Map",
		Peer:  true,
		New:   func(int) (Store, error) { return &syncMapStore{}, nil },
	})
}

// EngineStore adapts a storage.StorageEngine (our engines) to Store,
// OrderedStore, BatchStore and, when the engine is a storage.Engine,
// StatsStore.
type EngineStore struct {
	e   storage.StorageEngine
	ctx context.Context
}

// OpenEngine initialises e in memory and adapts it.
func OpenEngine(e storage.StorageEngine) (*EngineStore, error) { return OpenEngineDir(e, "") }

// OpenEngineDir initialises e with the data directory dir ("": in memory)
// and adapts it.
func OpenEngineDir(e storage.StorageEngine, dir string) (*EngineStore, error) {
	if err := e.Init(dir); err != nil {
		return nil, err
	}
	return &EngineStore{e: e, ctx: context.Background()}, nil
}

func (s *EngineStore) Put(key, value string) error { return s.e.Put(s.ctx, key, value) }

func (s *EngineStore) Get(key string) (string, bool, error) {
	v, err := s.e.Get(s.ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	return v, err == nil, err
}

func (s *EngineStore) Delete(key string) error { return s.e.Delete(s.ctx, key) }

func (s *EngineStore) BatchPut(kv map[string]string) error { return s.e.BatchPut(s.ctx, kv) }

func (s *EngineStore) Scan(prefix string, fn func(key, value string) bool) error {
	it, err := s.e.NewIterator(s.ctx, prefix)
	if err != nil {
		return err
	}
	for it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *EngineStore) CacheHitRatio() (float64, bool) {
	e, ok := s.e.(storage.Engine)
	if !ok {
		return 0, false
	}
	st := e.Stats()
	if st.CacheHits+st.CacheMisses == 0 {
		return 0, false
	}
	return st.CacheHitRatio, true
}

func (s *EngineStore) Close() error { return s.e.Close() }

// syncMapStore is the standard library's sync.Map.
type syncMapStore struct{ m sync.Map }

func (s *syncMapStore) Put(key, value string) error { s.m.Store(key, value); return nil }

func (s *syncMapStore) Get(key string) (string, bool, error) {
	v, ok := s.m.Load(key)
	if !ok {
		return "", false, nil
	}
	return v.(string), true, nil
}

func (s *syncMapStore) Delete(key string) error { s.m.Delete(key); return nil }

func (s *syncMapStore) Close() error { s.m.Clear(); return nil }

// filterRegs keeps the registrations named in names (all when names is nil).
func filterRegs(regs []Registration, names []string) ([]Registration, error) {
	if names == nil {
		return regs, nil
	}
	byName := map[string]Registration{}
	var known []string
	for _, r := range regs {
		byName[r.Name] = r
		known = append(known, r.Name)
	}
	var out []Registration
	seen := map[string]bool{}
	for _, n := range names {
		r, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%w: unknown engine %q (this build has: %s)", errUsage, n, strings.Join(known, ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, r)
		}
	}
	return out, nil
}
