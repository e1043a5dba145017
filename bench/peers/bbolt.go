package peers

import (
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

// bboltStore is go.etcd.io/bbolt with its default options: every Update
// commits with an fsync of the file before it returns (bbolt's durability),
// or with NoSync set when the run asks for unsynced writes. Each write is
// one Update (one writer at a time: bbolt has a single writer), each read one
// View; all keys in one bucket.
type bboltStore struct{ db *bolt.DB }

var bboltBucket = []byte("kv")

func openBbolt(dir string, sync bool) (benchmark.Store, error) {
	db, err := bolt.Open(filepath.Join(dir, "bbolt.db"), 0o600,
		&bolt.Options{Timeout: 10 * time.Second, NoSync: !sync})
	if err != nil {
		return nil, fmt.Errorf("bbolt: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bboltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("bbolt: %w", err)
	}
	return &bboltStore{db: db}, nil
}

func (s *bboltStore) Put(key, value string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bboltBucket).Put([]byte(key), []byte(value)) })
}

func (s *bboltStore) Get(key string) (string, bool, error) {
	var out string
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bboltBucket).Get([]byte(key)); v != nil {
			out, found = string(v), true // v is valid only inside the transaction
		}
		return nil
	})
	return out, found, err
}

func (s *bboltStore) Delete(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bboltBucket).Delete([]byte(key)) })
}

// BatchPut writes every pair in one Update (atomic).
func (s *bboltStore) BatchPut(kv map[string]string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bboltBucket)
		for k, v := range kv {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *bboltStore) Close() error { return s.db.Close() }
