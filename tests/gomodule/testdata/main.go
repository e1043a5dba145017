// Command app is a program in a module of its own that uses MantisDB's C
// engine: tests/gomodule/run.sh builds it with -tags ccore against an
// installed libmantis (pkg-config) and runs it. It refers to
// NewCStorageEngine, which exists only in ccore + cgo builds, so that a
// build that silently fell back to the pure-Go engine does not compile.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mantisdb/mantisdb/go/storage"
)

func main() {
	ctx := context.Background()
	e := storage.NewCStorageEngine(storage.StorageConfig{})
	if err := e.Put(ctx, "k", "v"); !errors.Is(err, storage.ErrNotInitialized) {
		fail("Put before Init: %v", err)
	}
	if err := e.Init(""); err != nil {
		fail("Init: %v", err)
	}
	defer e.Close()
	if err := e.BatchPut(ctx, map[string]string{"user/1": "ada", "user/2": "grace"}); err != nil {
		fail("BatchPut: %v", err)
	}
	v, err := e.Get(ctx, "user/2")
	if err != nil || v != "grace" {
		fail("Get = %q, %v", v, err)
	}
	buf, err := e.GetAppend(ctx, make([]byte, 0, 16), "user/1")
	if err != nil || string(buf) != "ada" {
		fail("GetAppend = %q, %v", buf, err)
	}
	it, err := e.NewIterator(ctx, "user/")
	if err != nil {
		fail("NewIterator: %v", err)
	}
	n := 0
	for it.Next() {
		n++
	}
	it.Close()
	if s := e.Stats(); n != 2 || s.Reads != 2 {
		fail("scan found %d keys; stats %+v", n, e.Stats())
	}
	fmt.Printf("ok: %T from an installed libmantis\n", e)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "app: "+format+"\n", args...)
	os.Exit(1)
}
