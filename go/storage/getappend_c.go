//go:build ccore && cgo

package storage

import "context"

// GetAppend appends key's value to dst. See Engine.GetAppend. It is the C
// engine's read path itself (getAppend in engine_c.go: the coherence
// protocol's cache-aside read into the caller's spare capacity), so a value
// that fits in cap(dst)-len(dst) costs one cgo call and no allocation.
func (e *CStorageEngine) GetAppend(ctx context.Context, dst []byte, key string) ([]byte, error) {
	return e.getAppend(ctx, dst, key)
}
