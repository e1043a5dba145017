// Package peers adapts the Go libraries a user would pick instead of MantisDB
// to the benchmark harness's Store interface, so that the mantisdb command of
// this module (bench/cmd/mantisdb) measures them in the same run as our
// engines. They live in this separate module so that users of
// github.com/mantisdb/mantisdb do not inherit their dependencies.
//
//	xsync      github.com/puzpuzpuz/xsync/v4 Map: a concurrent hash map
//	btree      github.com/tidwall/btree Map behind a sync.RWMutex: ordered,
//	           for the ordered suites (YCSB E, prefix-scan)
//	otter      github.com/maypok86/otter/v2: a bounded cache (S3-FIFO family)
//	ristretto  github.com/dgraph-io/ristretto/v2: a bounded cache (TinyLFU)
//
// The caches may drop entries, so they run only the cache-shaped suites
// (YCSB B and C, zipf-reads), where a miss is counted rather than failed; a
// hit must still return the value written. They are sized to hold every key
// of the suite.
//
// The persistent stores run only the durable suites (a data directory per
// run), each configured as its documentation recommends for the guarantee
// the suite asks for (synced or unsynced writes):
//
//	pebble     github.com/cockroachdb/pebble/v2: an LSM (pebble.Sync / NoSync)
//	badger     github.com/dgraph-io/badger/v4: an LSM with a value log
//	           (SyncWrites true / false)
//	bbolt      go.etcd.io/bbolt: a copy-on-write B+tree (fsync per Update /
//	           NoSync)
package peers

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"
	"github.com/puzpuzpuz/xsync/v4"
	"github.com/tidwall/btree"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

// Registrations returns the peers, in the order the reports list them.
func Registrations() []benchmark.Registration {
	return []benchmark.Registration{
		{
			Name:  "xsync",
			About: "peer: github.com/puzpuzpuz/xsync/v4 Map (concurrent hash map)",
			Peer:  true,
			New:   func(int) (benchmark.Store, error) { return &xsyncStore{m: xsync.NewMap[string, string]()}, nil },
		},
		{
			Name:        "btree",
			About:       "peer: github.com/tidwall/btree Map behind a sync.RWMutex (ordered suites only)",
			Peer:        true,
			Ordered:     true,
			OrderedOnly: true,
			New:         func(int) (benchmark.Store, error) { return &btreeStore{m: btree.NewMap[string, string](0)}, nil },
		},
		{
			Name:  "otter",
			About: "peer: github.com/maypok86/otter/v2 cache sized for every key (cache-shaped suites only)",
			Peer:  true,
			Lossy: true,
			New:   newOtter,
		},
		{
			Name:  "ristretto",
			About: "peer: github.com/dgraph-io/ristretto/v2 cache sized for every key (cache-shaped suites only)",
			Peer:  true,
			Lossy: true,
			New:   newRistretto,
		},
		{
			Name:    "pebble",
			About:   "peer: github.com/cockroachdb/pebble/v2, 128 MiB block cache, pebble.Sync per synced write (durable suites only)",
			Peer:    true,
			Durable: openPebble,
		},
		{
			Name:    "badger",
			About:   "peer: github.com/dgraph-io/badger/v4 DefaultOptions, SyncWrites for synced writes (durable suites only)",
			Peer:    true,
			Durable: openBadger,
		},
		{
			Name:    "bbolt",
			About:   "peer: go.etcd.io/bbolt, default fsync per Update, NoSync for unsynced writes (durable suites only)",
			Peer:    true,
			Durable: openBbolt,
		},
	}
}

// ---------------------------------------------------------------- xsync

type xsyncStore struct{ m *xsync.Map[string, string] }

func (s *xsyncStore) Put(key, value string) error { s.m.Store(key, value); return nil }

func (s *xsyncStore) Get(key string) (string, bool, error) {
	v, ok := s.m.Load(key)
	return v, ok, nil
}

func (s *xsyncStore) Delete(key string) error { s.m.Delete(key); return nil }

func (s *xsyncStore) Close() error { s.m.Clear(); return nil }

// ---------------------------------------------------------------- btree

// btreeStore is a B-tree map behind a RWMutex: what a Go program that needs
// ordered keys and concurrency would write first. A scan holds the read lock
// for its whole length (a consistent snapshot, as our engines' iterators).
type btreeStore struct {
	mu sync.RWMutex
	m  *btree.Map[string, string]
}

func (s *btreeStore) Put(key, value string) error {
	s.mu.Lock()
	s.m.Set(key, value)
	s.mu.Unlock()
	return nil
}

func (s *btreeStore) Get(key string) (string, bool, error) {
	s.mu.RLock()
	v, ok := s.m.Get(key)
	s.mu.RUnlock()
	return v, ok, nil
}

func (s *btreeStore) Delete(key string) error {
	s.mu.Lock()
	s.m.Delete(key)
	s.mu.Unlock()
	return nil
}

// BatchPut writes every pair under one write lock (atomic for readers).
func (s *btreeStore) BatchPut(kv map[string]string) error {
	s.mu.Lock()
	for k, v := range kv {
		s.m.Set(k, v)
	}
	s.mu.Unlock()
	return nil
}

func (s *btreeStore) Scan(prefix string, fn func(key, value string) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.m.Ascend(prefix, func(k, v string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		return fn(k, v)
	})
	return nil
}

func (s *btreeStore) Close() error {
	s.mu.Lock()
	s.m.Clear()
	s.mu.Unlock()
	return nil
}

// ---------------------------------------------------------------- otter

type otterStore struct{ c *otter.Cache[string, string] }

func newOtter(capacity int) (benchmark.Store, error) {
	c, err := otter.New(&otter.Options[string, string]{
		MaximumSize:     max(capacity, 1),
		InitialCapacity: max(capacity, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("otter: %w", err)
	}
	return &otterStore{c: c}, nil
}

func (s *otterStore) Put(key, value string) error { s.c.Set(key, value); return nil }

func (s *otterStore) Get(key string) (string, bool, error) {
	v, ok := s.c.GetIfPresent(key)
	return v, ok, nil
}

func (s *otterStore) Delete(key string) error { s.c.Invalidate(key); return nil }

func (s *otterStore) Close() error {
	s.c.InvalidateAll()
	s.c.CleanUp()
	return nil
}

// ---------------------------------------------------------------- ristretto

// ristrettoStore is a ristretto cache counting every entry as cost 1, so its
// capacity is in entries like otter's. Ristretto applies writes
// asynchronously and its admission policy may refuse them: both show as
// misses, which is what its users get.
type ristrettoStore struct {
	c *ristretto.Cache[string, string]
}

func newRistretto(capacity int) (benchmark.Store, error) {
	capacity = max(capacity, 1)
	c, err := ristretto.NewCache(&ristretto.Config[string, string]{
		NumCounters:        10 * int64(capacity), // ristretto's advice: 10x the entries
		MaxCost:            int64(capacity),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("ristretto: %w", err)
	}
	return &ristrettoStore{c: c}, nil
}

func (s *ristrettoStore) Put(key, value string) error {
	s.c.Set(key, value, 1) // false: dropped by the buffers or the policy, as for any user
	return nil
}

func (s *ristrettoStore) Get(key string) (string, bool, error) {
	v, ok := s.c.Get(key)
	return v, ok, nil
}

func (s *ristrettoStore) Delete(key string) error { s.c.Del(key); return nil }

// BatchPut sets every pair and waits until ristretto has applied them (the
// harness loads the data set through it).
func (s *ristrettoStore) BatchPut(kv map[string]string) error {
	for k, v := range kv {
		s.c.Set(k, v, 1)
	}
	s.c.Wait()
	return nil
}

func (s *ristrettoStore) Close() error {
	if s.c == nil {
		return errors.New("ristretto: closed twice")
	}
	s.c.Close()
	s.c = nil
	return nil
}
