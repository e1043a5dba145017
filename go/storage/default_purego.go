//go:build !ccore || !cgo

package storage

// NewStorageEngine returns the build's default engine: in this build (without
// the ccore tag, or without cgo) the pure-Go engine. cfg.UseCGO does not
// change that. The engine is usable after Init.
func NewStorageEngine(cfg StorageConfig) StorageEngine {
	return NewPureGoStorageEngine(cfg)
}
