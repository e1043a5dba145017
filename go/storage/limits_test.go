package storage

// The size limits at their boundaries on every engine and every path, the
// edge cases of upstream MantisDB's suites that concern them (large JSON
// documents; Put right after the constructor, without Init), and a benchmark
// showing that large values cost time linear in their size.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// hugeString returns a string of n zero bytes whose memory is, for a large
// n, fresh pages that nothing touches: a value over a limit, which every
// engine must refuse by its length alone, costs no resident memory.
func hugeString(n int) string {
	b := make([]byte, n)
	return unsafe.String(unsafe.SliceData(b), n)
}

// patterned returns n bytes that differ from page to page (a copy at a wrong
// offset or of a wrong length shows), built without a byte loop.
func patterned(n int) string {
	var sb strings.Builder
	sb.Grow(n)
	page := strings.Repeat("\x00v\xff", 4096/3+1)[:4096]
	for i := 0; sb.Len() < n; i++ {
		chunk := fmt.Sprintf("%08x", i) + page[8:]
		sb.WriteString(chunk[:min(len(chunk), n-sb.Len())])
	}
	return sb.String()
}

func TestLimitConstants(t *testing.T) {
	if MaxValueSize < 512<<20 {
		t.Fatalf("MaxValueSize = %d, want at least 512 MiB", MaxValueSize)
	}
	if one := BatchRecordOverhead + MaxKeySize + MaxValueSize; MaxBatchSize < one {
		t.Fatalf("MaxBatchSize %d cannot hold one largest record (%d bytes)", MaxBatchSize, one)
	}
}

// TestValueOverLimit: one byte over MaxValueSize is refused by every write
// path, with ErrTooLarge and a message that gives the size, changing
// nothing.
func TestValueOverLimit(t *testing.T) {
	over := hugeString(MaxValueSize + 1)
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "k", over), ErrTooLarge)
		if err := e.Put(bg, "k", over); !strings.Contains(err.Error(), fmt.Sprint(MaxValueSize+1)) {
			t.Fatalf("error %q does not give the value's size", err)
		}
		mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "k", over, 0), ErrTooLarge)
		mustIs(t, "BatchPut", e.BatchPut(bg, map[string]string{"a": "1", "k": over}), ErrTooLarge)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "txn Put", txn.Put("k", over), ErrTooLarge)
		mustIs(t, "txn Commit", txn.Commit(), nil)
		mustMissing(t, e, "k")
		mustMissing(t, e, "a")
	})
}

// TestLargestValue: a value of exactly MaxValueSize (with the largest key)
// goes through every path: Put, Get, GetAppend, BatchGet, an iterator
// (strings and bytes), a transaction's Get, a BatchPut and a Commit. Skipped
// under -short: it holds a few copies of 512 MiB.
func TestLargestValue(t *testing.T) {
	if testing.Short() {
		t.Skip("holds several values of MaxValueSize")
	}
	big := patterned(MaxValueSize)
	key := strings.Repeat("K", MaxKeySize)
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, key, big), nil)
		if v, err := e.Get(bg, key); err != nil || v != big {
			t.Fatalf("Get of the largest value: %d bytes, %v", len(v), err)
		}
		buf, err := e.GetAppend(bg, nil, key)
		if err != nil || string(buf) != big {
			t.Fatalf("GetAppend of the largest value: %d bytes, %v", len(buf), err)
		}
		m, err := e.BatchGet(bg, []string{"absent", key})
		if err != nil || len(m) != 1 || m[key] != big {
			t.Fatalf("BatchGet of the largest value: %v", err)
		}
		m = nil
		it, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		if !it.Next() || it.Key() != key || it.Value() != big {
			t.Fatal("iterator strings of the largest value differ")
		}
		if it.Next() {
			t.Fatalf("iterator: a second entry %q", it.Key())
		}
		mustIs(t, "iterator", it.Error(), nil)
		it.Close()
		it, _ = e.NewIterator(bg, "")
		bit := it.(BytesIterator)
		if !bit.Next() || string(bit.KeyBytes()) != key || string(bit.ValueBytes()) != big {
			t.Fatal("iterator bytes of the largest value differ")
		}
		bit.Close()
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		if v, err := txn.Get(key); err != nil || v != big {
			t.Fatalf("txn Get of the largest value: %d bytes, %v", len(v), err)
		}
		mustIs(t, "txn Put", txn.Put("t", big), nil)
		mustIs(t, "Commit of one largest value", txn.Commit(), nil)
		mustIs(t, "Delete", e.Delete(bg, key), nil)
		mustIs(t, "Delete", e.Delete(bg, "t"), nil)
		mustIs(t, "BatchPut of one largest record", e.BatchPut(bg, map[string]string{key: big}), nil)
		if v, err := e.Get(bg, key); err != nil || v != big {
			t.Fatalf("Get after BatchPut: %d bytes, %v", len(v), err)
		}
	})
}

// TestUpstreamLargeDocuments ports the edge case of upstream MantisDB's
// suites: its 5 MB and 10 MB documents, JSON-encoded (here as arrays of
// numbers, the encoding that made them 20-40 MB), stored and read back
// intact by point reads, batches and iterators.
func TestUpstreamLargeDocuments(t *testing.T) {
	// {"id":N,"payload":[...]} with N Mi numbers: what encoding/json makes
	// of a document holding N MB as numbers, built directly (faster).
	doc := func(mb int) string {
		b := fmt.Appendf(nil, `{"id":%d,"payload":[`, mb)
		for i := range mb << 20 {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(i*7919%1000), 10)
		}
		return string(append(b, "]}"...))
	}
	d5, d10 := doc(5), doc(10)
	if len(d10) < 20<<20 || len(d10) > MaxValueSize || !json.Valid([]byte(d10)) {
		t.Fatalf("a 10 MB document encodes to %d bytes", len(d10))
	}
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put 10 MB document", e.Put(bg, "doc/10", d10), nil)
		mustIs(t, "BatchPut 5 MB documents", e.BatchPut(bg, map[string]string{"doc/5a": d5, "doc/5b": d5}), nil)
		for k, want := range map[string]string{"doc/10": d10, "doc/5a": d5, "doc/5b": d5} {
			mustGet(t, e, k, want)
		}
		m, err := e.BatchGet(bg, []string{"doc/10", "doc/5a"})
		if err != nil || m["doc/10"] != d10 || m["doc/5a"] != d5 {
			t.Fatalf("BatchGet of the documents differs: %v", err)
		}
		got := scan(t, e, "doc/")
		if len(got) != 3 || got[0][1] != d10 || got[1][1] != d5 || got[2][1] != d5 {
			t.Fatalf("iteration over the documents differs (%d entries)", len(got))
		}
	})
}

// TestUpstreamPutWithoutInit ports the other edge case: upstream's runners
// call Put right after the constructor. That fails with ErrNotInitialized,
// which is not ErrClosed, and leaves the engine usable once Init is called.
func TestUpstreamPutWithoutInit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := te.new(StorageConfig{})
		err := e.Put(bg, "user:1", `{"name":"a"}`)
		mustIs(t, "Put before Init", err, ErrNotInitialized)
		if errors.Is(err, ErrClosed) {
			t.Fatalf("Put before Init: %v also matches ErrClosed", err)
		}
		if err.Error() != "storage: engine not initialized" {
			t.Fatalf("Put before Init: message %q", err)
		}
		mustIs(t, "Init", e.Init(""), nil)
		defer e.Close()
		mustIs(t, "Put after Init", e.Put(bg, "user:1", `{"name":"a"}`), nil)
		mustGet(t, e, "user:1", `{"name":"a"}`)
		mustIs(t, "Close", e.Close(), nil)
		err = e.Put(bg, "user:1", "x")
		mustIs(t, "Put after Close", err, ErrClosed)
		if errors.Is(err, ErrNotInitialized) {
			t.Fatal("Put after Close matches ErrNotInitialized")
		}
	})
}

// BenchmarkLargeValue: Put then Get (GetAppend into a reused buffer) of one
// value of each size. MB/s should stay about flat from 1 MiB to 256 MiB:
// the cost of a large value is linear (a fixed number of copies).
func BenchmarkLargeValue(b *testing.B) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			e := openEngine(b, te)
			for _, size := range []int{1 << 20, 16 << 20, 256 << 20} {
				v := patterned(size)
				b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
					b.SetBytes(int64(size))
					buf := make([]byte, 0, size)
					for b.Loop() {
						if err := e.Put(bg, "big", v); err != nil {
							b.Fatal(err)
						}
						var err error
						if buf, err = e.GetAppend(bg, buf[:0], "big"); err != nil || len(buf) != size {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
