//go:build ccore && cgo

package benchmark

import "github.com/mantisdb/mantisdb/go/storage"

func init() {
	Register(Registration{
		Name:    "c",
		About:   "MantisDB C engine (go/storage over the C core: lock-free skiplist and cache, off the Go heap)",
		Ordered: true,
		New: func(int) (Store, error) {
			return OpenEngine(storage.NewCStorageEngine(storage.StorageConfig{}))
		},
		Durable: func(dir string, sync bool) (Store, error) {
			return OpenEngineDir(storage.NewCStorageEngine(storage.StorageConfig{DataDir: dir, SyncWrites: sync}), dir)
		},
	})
}
