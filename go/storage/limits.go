package storage

import (
	"context"
	"fmt"
	"time"
)

// The limits of keys, values and batches. They are the C core's
// (bindings/mantis.h: MANTIS_KEY_MAX, MANTIS_VALUE_MAX, MANTIS_BATCH_MAX) and
// both engines enforce them identically.
const (
	// MaxKeySize is the largest key, in bytes. The empty key is invalid.
	MaxKeySize = 4096
	// MaxValueSize is the largest value, in bytes. The empty value is fine.
	MaxValueSize = 512 << 20
	// MaxBatchSize bounds the encoded size of one BatchPut, BatchDelete or
	// transaction Commit: the sum over its records of BatchRecordOverhead
	// plus the key's length plus (for writes) the value's length. A
	// transaction's records are its buffered writes plus the keys it only
	// read. It holds at least one value of MaxValueSize with its record.
	MaxBatchSize = 1 << 30
	// BatchRecordOverhead is the fixed size of one record of a batch
	// (MANTIS_BATCH_HDR).
	BatchRecordOverhead = 17
)

// The helpers below are shared by both engines so that they reject the same
// input with the same errors.

// checkCtx returns ctx's error if ctx is done, else nil. It is cheap for
// contexts that can never be cancelled (Done() == nil). A nil ctx is treated
// as context.Background().
func checkCtx(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	done := ctx.Done()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return ctx.Err()
	default:
		return nil
	}
}

// checkKey validates a key for operation op ("put", "get", ...).
func checkKey(op, key string) error {
	if len(key) == 0 {
		return fmt.Errorf("%w (%s: empty key)", ErrInvalidKey, op)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w (%s: key of %d bytes, limit %d)", ErrTooLarge, op, len(key), MaxKeySize)
	}
	return nil
}

// checkValue validates a value for operation op.
func checkValue(op, value string) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w (%s: value of %d bytes, limit %d)", ErrTooLarge, op, len(value), MaxValueSize)
	}
	return nil
}

// checkKV validates a key and its value.
func checkKV(op, key, value string) error {
	if err := checkKey(op, key); err != nil {
		return err
	}
	return checkValue(op, value)
}

// checkPrefix validates an iterator prefix: any length up to MaxKeySize,
// the empty prefix included.
func checkPrefix(prefix string) error {
	if len(prefix) > MaxKeySize {
		return fmt.Errorf("%w (iterator: prefix of %d bytes, limit %d)", ErrTooLarge, len(prefix), MaxKeySize)
	}
	return nil
}

// recordSize is the encoded size of one batch record.
func recordSize(key, value string) int64 {
	return BatchRecordOverhead + int64(len(key)) + int64(len(value))
}

// checkBatchPut validates every pair of a BatchPut and its encoded size.
func checkBatchPut(kv map[string]string) error {
	var size int64
	for k, v := range kv {
		if err := checkKV("batch put", k, v); err != nil {
			return err
		}
		size += recordSize(k, v)
	}
	return checkBatchSize("batch put", size)
}

// checkBatchKeys validates the keys of a BatchGet or BatchDelete and, for
// BatchDelete (sized true), its encoded size.
func checkBatchKeys(op string, keys []string, sized bool) error {
	var size int64
	for _, k := range keys {
		if err := checkKey(op, k); err != nil {
			return err
		}
		size += recordSize(k, "")
	}
	if sized {
		return checkBatchSize(op, size)
	}
	return nil
}

// checkBatchSize fails with ErrTooLarge if size exceeds MaxBatchSize.
func checkBatchSize(op string, size int64) error {
	if size > MaxBatchSize {
		return fmt.Errorf("%w (%s: %d encoded bytes, limit %d)", ErrTooLarge, op, size, MaxBatchSize)
	}
	return nil
}

// ttlMillis converts a PutWithTTL duration to whole milliseconds, rounding
// up; 0 means no expiry (ttl <= 0).
func ttlMillis(ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	ms := uint64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms
}
