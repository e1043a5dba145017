package storage_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func ExampleNewStorageEngine() {
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil { // "" keeps everything in memory
		log.Fatal(err)
	}
	defer e.Close()
	fmt.Println(e.HealthCheck(context.Background()))
	// Output: <nil>
}

func ExampleStorageEngine_Get() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	if err := e.Put(ctx, "user/1", "ada"); err != nil {
		log.Fatal(err)
	}
	v, err := e.Get(ctx, "user/1")
	fmt.Println(v, err)
	_, err = e.Get(ctx, "user/2")
	fmt.Println(errors.Is(err, storage.ErrNotFound))
	// Output:
	// ada <nil>
	// true
}

func ExampleStorageEngine_BatchPut() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	// All or nothing: no reader sees one of these keys without the other.
	if err := e.BatchPut(ctx, map[string]string{"a": "1", "b": "2"}); err != nil {
		log.Fatal(err)
	}
	got, err := e.BatchGet(ctx, []string{"a", "b", "missing"})
	fmt.Println(got, err)
	// Output: map[a:1 b:2] <nil>
}

func ExampleStorageEngine_NewIterator() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	e.BatchPut(ctx, map[string]string{"fruit/pear": "3", "fruit/apple": "1", "veg/leek": "2"})

	it, err := e.NewIterator(ctx, "fruit/")
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close()
	e.Put(ctx, "fruit/fig", "4") // after the snapshot: not seen
	for it.Next() {
		fmt.Println(it.Key(), it.Value())
	}
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// fruit/apple 1
	// fruit/pear 3
}

func ExampleAll() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	e.BatchPut(ctx, map[string]string{"k2": "b", "k1": "a", "k3": "c"})

	it, err := e.NewIterator(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer it.Close() // All does not close the iterator
	for k, v := range storage.All(it) {
		fmt.Println(k, v)
	}
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// k1 a
	// k2 b
	// k3 c
}

func ExampleStorageEngine_BeginTransaction() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{})
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	e.Put(ctx, "balance", "10")

	txn, err := e.BeginTransaction(ctx)
	if err != nil {
		log.Fatal(err)
	}
	v, _ := txn.Get("balance")
	txn.Put("balance", v+"0")
	e.Put(ctx, "balance", "11") // someone else writes a key the transaction read
	err = txn.Commit()
	fmt.Println(errors.Is(err, storage.ErrConflict))
	fmt.Println(errors.Is(txn.Rollback(), storage.ErrTxnDone))

	// Retry: this time nobody interferes.
	txn, _ = e.BeginTransaction(ctx)
	v, _ = txn.Get("balance")
	txn.Put("balance", v+"0")
	fmt.Println(txn.Commit())
	v, _ = e.Get(ctx, "balance")
	fmt.Println(v)
	// Output:
	// true
	// true
	// <nil>
	// 110
}

func ExampleEngine_PutWithTTL() {
	ctx := context.Background()
	e := storage.NewStorageEngine(storage.StorageConfig{}).(storage.Engine)
	if err := e.Init(""); err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	e.PutWithTTL(ctx, "session", "token", time.Second)
	v, err := e.Get(ctx, "session")
	fmt.Println(v, err)
	time.Sleep(1100 * time.Millisecond)
	_, err = e.Get(ctx, "session")
	fmt.Println(errors.Is(err, storage.ErrNotFound))
	fmt.Println(e.Stats().Writes)
	// Output:
	// token <nil>
	// true
	// 1
}
