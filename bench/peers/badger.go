package peers

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

// badgerStore is github.com/dgraph-io/badger/v4 with DefaultOptions and
// SyncWrites as asked: badger's documented switch for syncing the write-ahead
// (value) log before a write returns. Each write is its own transaction
// (db.Update), each read a read-only one (db.View), as badger's README does.
type badgerStore struct{ db *badger.DB }

func openBadger(dir string, sync bool) (benchmark.Store, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(sync).WithLogger(nil))
	if err != nil {
		return nil, fmt.Errorf("badger: %w", err)
	}
	return &badgerStore{db: db}, nil
}

func (s *badgerStore) Put(key, value string) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), []byte(value)) })
}

func (s *badgerStore) Get(key string) (string, bool, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(key))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(out), true, nil
}

func (s *badgerStore) Delete(key string) error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(key)) })
}

// BatchPut writes every pair in one transaction (atomic).
func (s *badgerStore) BatchPut(kv map[string]string) error {
	return s.db.Update(func(txn *badger.Txn) error {
		for k, v := range kv {
			if err := txn.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *badgerStore) Close() error { return s.db.Close() }
