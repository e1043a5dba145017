//go:build ccore && cgo

package benchmark

import "github.com/mantisdb/mantisdb/go/storage"

func init() {
	Register(Registration{
		Name:    "c",
		About:   "MantisDB C engine (go/storage over the C core: MVCC B+tree with a point index, off the Go heap; no cache, the default)",
		Ordered: true,
		New: func(int) (Store, error) {
			return OpenEngine(storage.NewCStorageEngine(storage.StorageConfig{}))
		},
		Durable: func(dir string, sync bool) (Store, error) {
			return OpenEngineDir(storage.NewCStorageEngine(storage.StorageConfig{DataDir: dir, SyncWrites: sync}), dir)
		},
	})
	// The same engine with its optional coherent cache (64 MiB, the size
	// the C engine used by default before the cache became optional), so
	// that one run shows what the cache costs or saves (in memory only).
	Register(Registration{
		Name:    "c-cache",
		About:   "MantisDB C engine with a 64 MiB coherent cache in front of its database (StorageConfig.CacheSize)",
		Ordered: true,
		New: func(int) (Store, error) {
			return OpenEngine(storage.NewCStorageEngine(storage.StorageConfig{CacheSize: 64 << 20}))
		},
	})
}
