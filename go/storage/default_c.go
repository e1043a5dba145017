//go:build ccore && cgo

package storage

// NewStorageEngine returns the build's default engine: in this build (with
// the ccore tag and cgo) the C engine. cfg.UseCGO does not change that. The
// engine is usable after Init.
func NewStorageEngine(cfg StorageConfig) StorageEngine {
	return NewCStorageEngine(cfg)
}
