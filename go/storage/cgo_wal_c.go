//go:build ccore && cgo

package storage

// The cgo call the durable layer needs beyond cgo_c.go: an iterator step that
// reports the entry's remaining TTL (mantis_iter_next_ttl), for checkpoints
// and backups of the C engine.

/*
#cgo CFLAGS: -I${SRCDIR}/../../bindings -O2 -Wall
#cgo noescape mantis_iter_next_ttl
#cgo nocallback mantis_iter_next_ttl
#include <mantis.h>
*/
import "C"

import "unsafe"

// cIterNextTTL advances the iterator and returns copies of the entry's key
// and value and its remaining TTL in milliseconds (0: none).
func cIterNextTTL(it uint64) (key, value string, ttlMs uint64, rc int) {
	var k, v unsafe.Pointer
	var kl, vl C.size_t
	var ttl C.uint64_t
	rc = int(C.mantis_iter_next_ttl(C.uint64_t(it), &k, &kl, &v, &vl, &ttl))
	if rc != cOK {
		return "", "", 0, rc
	}
	key = C.GoStringN((*C.char)(k), C.int(kl))
	if vl > 0 {
		value = C.GoStringN((*C.char)(v), C.int(vl))
	}
	return key, value, uint64(ttl), rc
}
