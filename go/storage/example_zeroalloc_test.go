package storage_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/mantisdb/mantisdb/go/storage"
)

// GetAppend reads into a buffer the caller reuses: no allocation per read.
func ExampleEngine_GetAppend() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{}).(storage.Engine)
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if err := e.BatchPut(ctx, map[string]string{"user/1": "ada", "user/2": "grace"}); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	for _, k := range []string{"user/1", "user/2", "user/3"} {
		var err error
		buf, err = e.GetAppend(ctx, buf[:0], k)
		fmt.Printf("%s: %q %v\n", k, buf, errors.Is(err, storage.ErrNotFound))
	}
	// Output:
	// user/1: "ada" false
	// user/2: "grace" false
	// user/3: "" true
}

// A scan through BytesIterator allocates nothing per entry; the slices are
// valid until the next Next.
func ExampleBytesIterator() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if err := e.BatchPut(ctx, map[string]string{"user/1": "ada", "user/2": "grace", "x": "y"}); err != nil {
		log.Fatal(err)
	}
	it, err := e.NewIterator(ctx, "user/")
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	bit := it.(storage.BytesIterator)
	total := 0
	for bit.Next() {
		total += len(bit.KeyBytes()) + len(bit.ValueBytes())
	}
	fmt.Println(total, bit.Error())
	// Output: 20 <nil>
}
