package peers

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

// pebbleCacheBytes is pebble's block cache: its documentation asks callers
// to size one (the default is 8 MiB); 128 MiB holds the durable suites' data
// set at every level up to heavy, as our engines hold theirs in memory.
const pebbleCacheBytes = 128 << 20

// pebbleStore is github.com/cockroachdb/pebble/v2 with its default options
// but the block cache, and a write option per store: pebble.Sync (the WAL is
// synced before a write returns, pebble's documented way to make a write
// durable) or pebble.NoSync.
type pebbleStore struct {
	db *pebble.DB
	wo *pebble.WriteOptions
}

func openPebble(dir string, sync bool) (benchmark.Store, error) {
	cache := pebble.NewCache(pebbleCacheBytes)
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(dir, &pebble.Options{Cache: cache, Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("pebble: %w", err)
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	return &pebbleStore{db: db, wo: wo}, nil
}

func (s *pebbleStore) Put(key, value string) error {
	return s.db.Set([]byte(key), []byte(value), s.wo)
}

func (s *pebbleStore) Get(key string) (string, bool, error) {
	v, closer, err := s.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	out := string(v) // v is valid until closer.Close
	return out, true, closer.Close()
}

func (s *pebbleStore) Delete(key string) error { return s.db.Delete([]byte(key), s.wo) }

// BatchPut commits every pair in one pebble batch (atomic).
func (s *pebbleStore) BatchPut(kv map[string]string) error {
	b := s.db.NewBatch()
	for k, v := range kv {
		if err := b.Set([]byte(k), []byte(v), nil); err != nil {
			b.Close()
			return err
		}
	}
	return b.Commit(s.wo) // Commit closes the batch
}

func (s *pebbleStore) Close() error { return s.db.Close() }

// quietLogger drops pebble's informational messages and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }

func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }
