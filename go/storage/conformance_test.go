package storage

// The conformance suite: every test runs unchanged against every engine in
// testEngines (the pure-Go engine; the C engine in -tags ccore builds).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var bg = context.Background()

// ---------------------------------------------------------------- lifecycle

func TestLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := te.new(StorageConfig{})
		// Before Init: not initialised for everything.
		checkAllFail(t, e, "before Init", ErrNotInitialized)

		mustIs(t, "Init", e.Init(""), nil)
		mustIs(t, "second Init", e.Init(""), ErrInitialized)
		mustIs(t, "HealthCheck", e.HealthCheck(bg), nil)
		mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
		mustGet(t, e, "k", "v")

		it, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "txn Put", txn.Put("t", "1"), nil)

		mustIs(t, "Close", e.Close(), nil)
		mustIs(t, "second Close", e.Close(), nil)
		mustIs(t, "Init after Close", e.Init(""), ErrClosed)
		checkAllClosed(t, e)

		// The iterator and the transaction opened before Close fail cleanly.
		if it.Next() {
			t.Fatalf("iterator yielded %q after engine Close", it.Key())
		}
		mustIs(t, "iterator Error after engine Close", it.Error(), ErrClosed)
		mustIs(t, "iterator Close after engine Close", it.Close(), nil)
		mustIs(t, "txn Put after engine Close", txn.Put("a", "b"), ErrClosed)
		_, err = txn.Get("t")
		mustIs(t, "txn Get after engine Close", err, ErrClosed)
		mustIs(t, "txn Delete after engine Close", txn.Delete("t"), ErrClosed)
		mustIs(t, "txn Commit after engine Close", txn.Commit(), ErrClosed)
		mustIs(t, "txn Rollback after Commit", txn.Rollback(), ErrTxnDone)
	})
}

// checkAllClosed checks that every method of e fails with ErrClosed.
func checkAllClosed(t *testing.T, e Engine) {
	t.Helper()
	checkAllFail(t, e, "after Close", ErrClosed)
}

// checkAllFail checks that every method of e fails with want, and that
// Stats is zero ("when" names the state in messages).
func checkAllFail(t *testing.T, e Engine, when string, want error) {
	t.Helper()
	mustIs(t, "Put "+when, e.Put(bg, "k", "v"), want)
	mustIs(t, "PutWithTTL "+when, e.PutWithTTL(bg, "k", "v", time.Hour), want)
	_, err := e.Get(bg, "k")
	mustIs(t, "Get "+when, err, want)
	mustIs(t, "Delete "+when, e.Delete(bg, "k"), want)
	mustIs(t, "BatchPut "+when, e.BatchPut(bg, map[string]string{"a": "b"}), want)
	_, err = e.BatchGet(bg, []string{"a"})
	mustIs(t, "BatchGet "+when, err, want)
	mustIs(t, "BatchDelete "+when, e.BatchDelete(bg, []string{"a"}), want)
	_, err = e.NewIterator(bg, "")
	mustIs(t, "NewIterator "+when, err, want)
	_, err = e.BeginTransaction(bg)
	mustIs(t, "BeginTransaction "+when, err, want)
	mustIs(t, "HealthCheck "+when, e.HealthCheck(bg), want)
	if s := e.Stats(); s != (Stats{}) {
		t.Fatalf("Stats %s = %+v, want zero", when, s)
	}
}

func TestCloseBeforeInit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := te.new(StorageConfig{})
		mustIs(t, "Close before Init", e.Close(), nil)
		mustIs(t, "Init after Close", e.Init(""), ErrClosed)
		checkAllClosed(t, e)
	})
}

func TestInitDataDir(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		e := te.new(StorageConfig{DataDir: dir})
		mustIs(t, "Init(new dir)", e.Init(dir), nil)
		defer e.Close()
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("Init did not create %s: %v", dir, err)
		}
		mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
		mustGet(t, e, "k", "v")

		// A path under a regular file cannot be a directory.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{file, filepath.Join(file, "sub")} {
			e2 := te.new(StorageConfig{})
			err := e2.Init(bad)
			if err == nil {
				t.Fatalf("Init(%q) succeeded, want an error", bad)
			}
			if !strings.HasPrefix(err.Error(), "storage: ") || !strings.Contains(err.Error(), bad) {
				t.Fatalf("Init(%q) error %q does not say what failed", bad, err)
			}
			mustIs(t, "HealthCheck after failed Init", e2.HealthCheck(bg), ErrNotInitialized)
			mustIs(t, "Close after failed Init", e2.Close(), nil)
		}
	})
}

func TestNewStorageEngineDefault(t *testing.T) {
	e := NewStorageEngine(StorageConfig{})
	if _, ok := e.(Engine); !ok {
		t.Fatalf("NewStorageEngine returned %T, which is not an Engine", e)
	}
	mustIs(t, "Init", e.Init(""), nil)
	defer e.Close()
	mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
	mustGet(t, e, "k", "v")
}

// ---------------------------------------------------------------- point ops

func TestPutGetDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustMissing(t, e, "k")
		mustIs(t, "Put", e.Put(bg, "k", "v1"), nil)
		mustGet(t, e, "k", "v1")
		mustIs(t, "Put overwrite", e.Put(bg, "k", "v2"), nil)
		mustGet(t, e, "k", "v2")
		mustIs(t, "Put empty value", e.Put(bg, "empty", ""), nil)
		mustGet(t, e, "empty", "")
		mustIs(t, "Delete", e.Delete(bg, "k"), nil)
		mustMissing(t, e, "k")
		mustIs(t, "Delete absent", e.Delete(bg, "k"), nil)
		mustIs(t, "Delete never written", e.Delete(bg, "never"), nil)
		mustIs(t, "Put after Delete", e.Put(bg, "k", "v3"), nil)
		mustGet(t, e, "k", "v3")
		mustGet(t, e, "empty", "")

		// The returned string is the caller's: later writes do not change it.
		got, err := e.Get(bg, "k")
		mustIs(t, "Get", err, nil)
		mustIs(t, "Put", e.Put(bg, "k", "zzzzzzz"), nil)
		mustIs(t, "Delete", e.Delete(bg, "k"), nil)
		if got != "v3" {
			t.Fatalf("a returned value changed to %q after later writes", got)
		}
	})
}

func TestBinaryKeysAndValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		keys := []string{"a", "a\x00", "a\x00b", "\x00", "\x00\x00", "\xff", "\xff\xfe\xfd", "\xc3\x28", "ab", "b"}
		for i, k := range keys {
			mustIs(t, "Put", e.Put(bg, k, fmt.Sprintf("v\x00%d\xff", i)), nil)
		}
		for i, k := range keys {
			mustGet(t, e, k, fmt.Sprintf("v\x00%d\xff", i))
		}
		mustMissing(t, e, "a\x00c")
		// Ascending bytewise order, the shorter key first on a tie.
		want := slices.Clone(keys)
		slices.Sort(want)
		var got []string
		for _, kv := range scan(t, e, "") {
			got = append(got, kv[0])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration order %q, want %q", got, want)
		}
		// The largest key and a large value are accepted (TestLargestValue
		// in limits_test.go covers a value of MaxValueSize).
		bigKey := strings.Repeat("\x00k", MaxKeySize/2)
		bigVal := strings.Repeat("\xffv\x00", 16<<20/3) + "x"
		if len(bigKey) != MaxKeySize || len(bigVal) != 16<<20 {
			t.Fatal("test sizes")
		}
		mustIs(t, "Put max key and a large value", e.Put(bg, bigKey, bigVal), nil)
		mustGet(t, e, bigKey, bigVal)
		m, err := e.BatchGet(bg, []string{bigKey})
		mustIs(t, "BatchGet max", err, nil)
		if m[bigKey] != bigVal {
			t.Fatal("BatchGet of the largest value differs")
		}
	})
}

// ---------------------------------------------------------------- bad input

func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "keep", "v"), nil)
		longKey := strings.Repeat("k", MaxKeySize+1)
		longVal := hugeString(MaxValueSize + 1)

		cases := []struct {
			name string
			key  string
			val  string
			want error
		}{
			{"empty key", "", "v", ErrInvalidKey},
			{"long key", longKey, "v", ErrTooLarge},
			{"long value", "k", longVal, ErrTooLarge},
		}
		for _, c := range cases {
			mustIs(t, "Put "+c.name, e.Put(bg, c.key, c.val), c.want)
			mustIs(t, "PutWithTTL "+c.name, e.PutWithTTL(bg, c.key, c.val, time.Hour), c.want)
			mustIs(t, "BatchPut "+c.name, e.BatchPut(bg, map[string]string{"b1": "x", c.key: c.val, "b2": "y"}), c.want)
			if c.val == "v" { // key errors on the key-only calls
				_, err := e.Get(bg, c.key)
				mustIs(t, "Get "+c.name, err, c.want)
				mustIs(t, "Delete "+c.name, e.Delete(bg, c.key), c.want)
				_, err = e.BatchGet(bg, []string{"keep", c.key})
				mustIs(t, "BatchGet "+c.name, err, c.want)
				mustIs(t, "BatchDelete "+c.name, e.BatchDelete(bg, []string{"keep", c.key}), c.want)
			}
			txn, err := e.BeginTransaction(bg)
			mustIs(t, "BeginTransaction", err, nil)
			mustIs(t, "txn Put "+c.name, txn.Put(c.key, c.val), c.want)
			if c.val == "v" {
				_, err = txn.Get(c.key)
				mustIs(t, "txn Get "+c.name, err, c.want)
				mustIs(t, "txn Delete "+c.name, txn.Delete(c.key), c.want)
			}
			// The transaction stays usable after rejected input.
			mustIs(t, "txn Put after bad input", txn.Put("t", "1"), nil)
			mustIs(t, "txn Commit", txn.Commit(), nil)
			mustGet(t, e, "t", "1")
		}
		// Nothing of the rejected calls is visible.
		mustGet(t, e, "keep", "v")
		mustMissing(t, e, "b1")
		mustMissing(t, e, "b2")
		mustMissing(t, e, "k")

		_, err := e.NewIterator(bg, longKey)
		mustIs(t, "NewIterator long prefix", err, ErrTooLarge)
		if got := scan(t, e, strings.Repeat("k", MaxKeySize)); len(got) != 0 {
			t.Fatalf("prefix of MaxKeySize bytes matched %d keys", len(got))
		}
		// Error messages say what failed.
		err = e.Put(bg, longKey, "v")
		if !strings.Contains(err.Error(), fmt.Sprint(MaxKeySize+1)) {
			t.Fatalf("error %q does not give the key's size", err)
		}
	})
}

func TestBatchTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds batches over MaxBatchSize")
	}
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		val := hugeString(MaxValueSize) // shared by every pair
		kv := map[string]string{}
		for i := 0; int64(len(kv))*int64(len(val)+20) <= MaxBatchSize; i++ {
			kv[pad(i)] = val
		}
		mustIs(t, "BatchPut over MaxBatchSize", e.BatchPut(bg, kv), ErrTooLarge)
		mustMissing(t, e, pad(0))
		// One pair less fits.
		delete(kv, pad(len(kv)-1))
		mustIs(t, "BatchPut under MaxBatchSize", e.BatchPut(bg, kv), nil)
		mustGet(t, e, pad(0), val)

		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		for i := 0; i <= len(kv); i++ {
			mustIs(t, "txn Put", txn.Put("t"+pad(i), val), nil)
		}
		mustIs(t, "Commit over MaxBatchSize", txn.Commit(), ErrTooLarge)
		mustMissing(t, e, "t"+pad(0))
		mustIs(t, "Rollback after Commit", txn.Rollback(), ErrTxnDone)
	})
}

// ---------------------------------------------------------------- contexts

func TestCancelledContext(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
		cancelled, cancel := context.WithCancel(bg)
		cancel()
		expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
		defer cancel2()
		for _, c := range []struct {
			ctx  context.Context
			want error
		}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			ctx, want := c.ctx, c.want
			mustIs(t, "Put", e.Put(ctx, "k", "changed"), want)
			mustIs(t, "PutWithTTL", e.PutWithTTL(ctx, "k", "changed", time.Hour), want)
			mustIs(t, "Put new", e.Put(ctx, "new", "x"), want)
			_, err := e.Get(ctx, "k")
			mustIs(t, "Get", err, want)
			mustIs(t, "Delete", e.Delete(ctx, "k"), want)
			mustIs(t, "BatchPut", e.BatchPut(ctx, map[string]string{"k": "changed", "b": "x"}), want)
			_, err = e.BatchGet(ctx, []string{"k"})
			mustIs(t, "BatchGet", err, want)
			mustIs(t, "BatchDelete", e.BatchDelete(ctx, []string{"k"}), want)
			_, err = e.NewIterator(ctx, "")
			mustIs(t, "NewIterator", err, want)
			_, err = e.BeginTransaction(ctx)
			mustIs(t, "BeginTransaction", err, want)
			mustIs(t, "HealthCheck", e.HealthCheck(ctx), want)
		}
		mustGet(t, e, "k", "v")
		mustMissing(t, e, "new")
		mustMissing(t, e, "b")
		if got := scan(t, e, ""); len(got) != 1 {
			t.Fatalf("engine holds %d keys after cancelled calls, want 1", len(got))
		}
	})
}

func TestTransactionContext(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "k", "v"), nil)
		ctx, cancel := context.WithCancel(bg)
		txn, err := e.BeginTransaction(ctx)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "txn Put", txn.Put("k", "changed"), nil)
		mustIs(t, "txn Put", txn.Put("n", "new"), nil)
		cancel()
		mustIs(t, "txn Put after cancel", txn.Put("x", "y"), context.Canceled)
		_, err = txn.Get("k")
		mustIs(t, "txn Get after cancel", err, context.Canceled)
		mustIs(t, "txn Delete after cancel", txn.Delete("k"), context.Canceled)
		mustIs(t, "txn Commit after cancel", txn.Commit(), context.Canceled)
		mustGet(t, e, "k", "v")
		mustMissing(t, e, "n")
		mustIs(t, "txn Rollback after Commit", txn.Rollback(), ErrTxnDone)

		// Rollback of a transaction whose context is done succeeds.
		ctx2, cancel2 := context.WithCancel(bg)
		txn2, err := e.BeginTransaction(ctx2)
		mustIs(t, "BeginTransaction", err, nil)
		cancel2()
		mustIs(t, "Rollback after cancel", txn2.Rollback(), nil)
		mustIs(t, "Commit after Rollback", txn2.Commit(), ErrTxnDone)
	})
}

func TestIteratorContext(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		for i := range 10 {
			mustIs(t, "Put", e.Put(bg, pad(i), "v"), nil)
		}
		ctx, cancel := context.WithCancel(bg)
		it, err := e.NewIterator(ctx, "")
		mustIs(t, "NewIterator", err, nil)
		defer it.Close()
		if !it.Next() || it.Key() != pad(0) {
			t.Fatalf("first entry %q", it.Key())
		}
		cancel()
		if it.Next() {
			t.Fatalf("Next after cancel yielded %q", it.Key())
		}
		mustIs(t, "iterator Error after cancel", it.Error(), context.Canceled)
		if it.Key() != "" || it.Value() != "" {
			t.Fatal("Key/Value not empty after Next returned false")
		}
	})
}

// ---------------------------------------------------------------- batches

func TestBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "BatchPut nil", e.BatchPut(bg, nil), nil)
		mustIs(t, "BatchPut empty", e.BatchPut(bg, map[string]string{}), nil)
		mustIs(t, "BatchDelete nil", e.BatchDelete(bg, nil), nil)
		m, err := e.BatchGet(bg, nil)
		mustIs(t, "BatchGet nil", err, nil)
		if m == nil || len(m) != 0 {
			t.Fatalf("BatchGet(nil) = %v, want an empty map", m)
		}

		kv := map[string]string{}
		for i := range 100 {
			kv[pad(i)] = "v" + pad(i)
		}
		kv["nul\x00"] = "\x00"
		mustIs(t, "BatchPut", e.BatchPut(bg, kv), nil)
		for k, v := range kv {
			mustGet(t, e, k, v)
		}
		keys := []string{pad(1), "missing", pad(1), "nul\x00", pad(99), "nul"}
		m, err = e.BatchGet(bg, keys)
		mustIs(t, "BatchGet", err, nil)
		want := map[string]string{pad(1): "v" + pad(1), "nul\x00": "\x00", pad(99): "v" + pad(99)}
		if !mapsEqual(m, want) {
			t.Fatalf("BatchGet = %q, want %q", m, want)
		}
		// The returned map is the caller's.
		m[pad(1)] = "mutated"
		mustGet(t, e, pad(1), "v"+pad(1))

		mustIs(t, "BatchDelete", e.BatchDelete(bg, []string{pad(1), pad(2), pad(1), "never"}), nil)
		mustMissing(t, e, pad(1))
		mustMissing(t, e, pad(2))
		mustGet(t, e, pad(3), "v"+pad(3))
		if n := len(scan(t, e, "")); n != 99 {
			t.Fatalf("%d keys after BatchDelete, want 99", n)
		}
		// BatchPut overwrites.
		mustIs(t, "BatchPut overwrite", e.BatchPut(bg, map[string]string{pad(3): "new", pad(1): "back"}), nil)
		mustGet(t, e, pad(3), "new")
		mustGet(t, e, pad(1), "back")
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- iterators

func TestIterator(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		if got := scan(t, e, ""); len(got) != 0 {
			t.Fatalf("empty engine yields %q", got)
		}
		keys := []string{"p/b", "p/a", "p", "p/", "q", "o", "p/a/x", "p\x00", "p\xff", "pa"}
		for _, k := range keys {
			mustIs(t, "Put", e.Put(bg, k, "v:"+k), nil)
		}
		check := func(prefix string, want ...string) {
			t.Helper()
			got := scan(t, e, prefix)
			var gk []string
			for _, kv := range got {
				gk = append(gk, kv[0])
				if kv[1] != "v:"+kv[0] {
					t.Fatalf("value of %q is %q", kv[0], kv[1])
				}
			}
			if !slices.Equal(gk, want) {
				t.Fatalf("prefix %q: keys %q, want %q", prefix, gk, want)
			}
		}
		check("p/", "p/", "p/a", "p/a/x", "p/b")
		check("p", "p", "p\x00", "p/", "p/a", "p/a/x", "p/b", "pa", "p\xff")
		check("", "o", "p", "p\x00", "p/", "p/a", "p/a/x", "p/b", "pa", "p\xff", "q")
		check("p/a/x", "p/a/x")
		check("p/a/xy")
		check("r")
		check("\xff")

		// Snapshot: writes after creation are invisible.
		it, err := e.NewIterator(bg, "p/")
		mustIs(t, "NewIterator", err, nil)
		if it.Key() != "" || it.Value() != "" {
			t.Fatal("Key/Value not empty before the first Next")
		}
		mustIs(t, "Put", e.Put(bg, "p/0", "new"), nil)
		mustIs(t, "Put", e.Put(bg, "p/a", "changed"), nil)
		mustIs(t, "Delete", e.Delete(bg, "p/b"), nil)
		mustIs(t, "BatchPut", e.BatchPut(bg, map[string]string{"p/c": "x", "p/": "changed"}), nil)
		var got [][2]string
		for it.Next() {
			got = append(got, [2]string{it.Key(), it.Value()})
		}
		mustIs(t, "iterator Error", it.Error(), nil)
		want := [][2]string{{"p/", "v:p/"}, {"p/a", "v:p/a"}, {"p/a/x", "v:p/a/x"}, {"p/b", "v:p/b"}}
		if !slices.Equal(got, want) {
			t.Fatalf("snapshot iteration %q, want %q", got, want)
		}
		if it.Next() || it.Key() != "" || it.Value() != "" {
			t.Fatal("Next after the end")
		}
		mustIs(t, "iterator Close", it.Close(), nil)
		mustIs(t, "iterator second Close", it.Close(), nil)
		if it.Next() {
			t.Fatal("Next after Close")
		}
		mustIs(t, "Error after Close", it.Error(), nil)

		// Close before the end; the engine's later state is visible to new iterators.
		it, err = e.NewIterator(bg, "p/")
		mustIs(t, "NewIterator", err, nil)
		if !it.Next() || it.Key() != "p/" || it.Value() != "changed" {
			t.Fatalf("first entry %q=%q", it.Key(), it.Value())
		}
		k0 := it.Key()
		mustIs(t, "iterator Close early", it.Close(), nil)
		if k0 != "p/" {
			t.Fatal("a returned key changed after Close")
		}
		if got := scan(t, e, "p/c"); !slices.Equal(got, [][2]string{{"p/c", "x"}}) {
			t.Fatalf("a new iterator sees %q, want the later write p/c=x", got)
		}
	})
}

func TestIteratorAll(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		for i := range 20 {
			mustIs(t, "Put", e.Put(bg, pad(i), fmt.Sprint(i)), nil)
		}
		it, err := e.NewIterator(bg, "")
		mustIs(t, "NewIterator", err, nil)
		defer it.Close()
		n := 0
		for k, v := range All(it) {
			if k != pad(n) || v != fmt.Sprint(n) {
				t.Fatalf("entry %d: %q=%q", n, k, v)
			}
			n++
			if n == 5 {
				break
			}
		}
		// The sequence continues where the iterator stands.
		for k := range All(it) {
			if k != pad(n) {
				t.Fatalf("entry %d: %q", n, k)
			}
			n++
		}
		if n != 20 {
			t.Fatalf("All yielded %d entries, want 20", n)
		}
		mustIs(t, "Error", it.Error(), nil)
	})
}

// ---------------------------------------------------------------- TTL

func TestTTL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "PutWithTTL long", e.PutWithTTL(bg, "long", "l", time.Hour), nil)
		mustIs(t, "PutWithTTL zero", e.PutWithTTL(bg, "zero", "z", 0), nil)
		mustIs(t, "PutWithTTL negative", e.PutWithTTL(bg, "neg", "n", -time.Second), nil)
		mustIs(t, "PutWithTTL short", e.PutWithTTL(bg, "short", "s", 30*time.Millisecond), nil)
		mustIs(t, "PutWithTTL 1ns", e.PutWithTTL(bg, "ns", "x", time.Nanosecond), nil)
		mustIs(t, "PutWithTTL then Put", e.PutWithTTL(bg, "cleared", "c", 30*time.Millisecond), nil)
		mustIs(t, "Put clears the TTL", e.Put(bg, "cleared", "c2"), nil)
		mustIs(t, "PutWithTTL replaced", e.PutWithTTL(bg, "renewed", "r", 30*time.Millisecond), nil)
		mustIs(t, "PutWithTTL renew", e.PutWithTTL(bg, "renewed", "r2", time.Hour), nil)
		mustGet(t, e, "long", "l")

		time.Sleep(150 * time.Millisecond)
		mustMissing(t, e, "short")
		mustMissing(t, e, "ns")
		mustGet(t, e, "long", "l")
		mustGet(t, e, "zero", "z")
		mustGet(t, e, "neg", "n")
		mustGet(t, e, "cleared", "c2")
		mustGet(t, e, "renewed", "r2")
		m, err := e.BatchGet(bg, []string{"short", "long", "ns"})
		mustIs(t, "BatchGet", err, nil)
		if !mapsEqual(m, map[string]string{"long": "l"}) {
			t.Fatalf("BatchGet with expired keys = %q", m)
		}
		var keys []string
		for _, kv := range scan(t, e, "") {
			keys = append(keys, kv[0])
		}
		if want := []string{"cleared", "long", "neg", "renewed", "zero"}; !slices.Equal(keys, want) {
			t.Fatalf("iteration after expiry: %q, want %q", keys, want)
		}
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		_, err = txn.Get("short")
		mustIs(t, "txn Get expired", err, ErrNotFound)
		mustIs(t, "Rollback", txn.Rollback(), nil)

		// A key that expires after a transaction began: the transaction
		// still reads its snapshot's value, and the expiring write is a
		// write for its conflict check, even once the key is reclaimed.
		mustIs(t, "Put", e.Put(bg, "snap", "old"), nil)
		txn, err = e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "snap", "new", time.Millisecond), nil)
		time.Sleep(20 * time.Millisecond)
		for i := range 50 { // writes give engines a chance to reclaim
			mustIs(t, "Put", e.Put(bg, "other"+pad(i), "x"), nil)
		}
		mustMissing(t, e, "snap")
		if v, err := txn.Get("snap"); err != nil || v != "old" {
			t.Fatalf("txn Get of a key that expired after begin = %q, %v; want the snapshot's \"old\"", v, err)
		}
		mustIs(t, "txn Put", txn.Put("fromtxn", "x"), nil)
		mustIs(t, "Commit", txn.Commit(), ErrConflict)
		mustMissing(t, e, "fromtxn")

		// An expired key can be written again.
		mustIs(t, "Put expired key", e.Put(bg, "short", "again"), nil)
		mustGet(t, e, "short", "again")
		// Many expired keys are reclaimed by later writes without error.
		for i := range 100 {
			mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "e"+pad(i), "x", time.Millisecond), nil)
		}
		time.Sleep(20 * time.Millisecond)
		for i := range 100 {
			mustIs(t, "Put", e.Put(bg, "w"+pad(i), "x"), nil)
		}
		if got := scan(t, e, "e"); len(got) != 0 {
			t.Fatalf("%d expired keys still iterate", len(got))
		}
	})
}

// ---------------------------------------------------------------- transactions

func TestTransactionBasics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "a", "1"), nil)
		mustIs(t, "Put", e.Put(bg, "b", "2"), nil)

		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		v, err := txn.Get("a")
		if err != nil || v != "1" {
			t.Fatalf("txn Get(a) = %q, %v", v, err)
		}
		_, err = txn.Get("c")
		mustIs(t, "txn Get missing", err, ErrNotFound)
		mustIs(t, "txn Put", txn.Put("c", "3"), nil)
		mustIs(t, "txn Put", txn.Put("a", "10"), nil)
		mustIs(t, "txn Delete", txn.Delete("b"), nil)
		mustIs(t, "txn Put binary", txn.Put("\x00\xff", "\x00"), nil)
		// Read-your-own-writes.
		for k, want := range map[string]string{"a": "10", "c": "3", "\x00\xff": "\x00"} {
			if v, err := txn.Get(k); err != nil || v != want {
				t.Fatalf("txn Get(%q) = %q, %v, want %q", k, v, err, want)
			}
		}
		_, err = txn.Get("b")
		mustIs(t, "txn Get own delete", err, ErrNotFound)
		mustIs(t, "txn Put after own delete", txn.Put("b", "20"), nil)
		mustIs(t, "txn Delete", txn.Delete("b"), nil)
		// Nothing is visible before Commit.
		mustGet(t, e, "a", "1")
		mustGet(t, e, "b", "2")
		mustMissing(t, e, "c")
		if n := len(scan(t, e, "")); n != 2 {
			t.Fatalf("%d keys visible before Commit", n)
		}
		mustIs(t, "Commit", txn.Commit(), nil)
		mustGet(t, e, "a", "10")
		mustMissing(t, e, "b")
		mustGet(t, e, "c", "3")
		mustGet(t, e, "\x00\xff", "\x00")
		checkTxnDone(t, txn)

		// Rollback discards.
		txn, err = e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "txn Put", txn.Put("a", "rolled back"), nil)
		mustIs(t, "txn Delete", txn.Delete("c"), nil)
		mustIs(t, "Rollback", txn.Rollback(), nil)
		mustGet(t, e, "a", "10")
		mustGet(t, e, "c", "3")
		checkTxnDone(t, txn)

		// An empty transaction commits.
		txn, err = e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		mustIs(t, "empty Commit", txn.Commit(), nil)
		checkTxnDone(t, txn)
	})
}

func checkTxnDone(t *testing.T, txn Transaction) {
	t.Helper()
	mustIs(t, "Put after finish", txn.Put("x", "y"), ErrTxnDone)
	_, err := txn.Get("a")
	mustIs(t, "Get after finish", err, ErrTxnDone)
	mustIs(t, "Delete after finish", txn.Delete("a"), ErrTxnDone)
	mustIs(t, "Commit after finish", txn.Commit(), ErrTxnDone)
	mustIs(t, "Rollback after finish", txn.Rollback(), ErrTxnDone)
}

func TestTransactionSnapshot(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "a", "1"), nil)
		mustIs(t, "Put", e.Put(bg, "d", "4"), nil)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		defer txn.Rollback()
		// Writes after BeginTransaction are invisible to the transaction.
		mustIs(t, "Put", e.Put(bg, "a", "changed"), nil)
		mustIs(t, "Put", e.Put(bg, "a", "changed twice"), nil)
		mustIs(t, "Put new", e.Put(bg, "n", "new"), nil)
		mustIs(t, "Delete", e.Delete(bg, "d"), nil)
		mustIs(t, "BatchPut", e.BatchPut(bg, map[string]string{"d": "again", "m": "m"}), nil)
		for _, c := range []struct{ k, v string }{{"a", "1"}, {"d", "4"}} {
			if v, err := txn.Get(c.k); err != nil || v != c.v {
				t.Fatalf("txn Get(%q) = %q, %v; want the snapshot's %q", c.k, v, err, c.v)
			}
		}
		for _, k := range []string{"n", "m"} {
			_, err := txn.Get(k)
			mustIs(t, "txn Get of a key created after begin", err, ErrNotFound)
		}
		mustGet(t, e, "a", "changed twice")
		// A second transaction begun now sees the new state.
		txn2, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		if v, err := txn2.Get("a"); err != nil || v != "changed twice" {
			t.Fatalf("txn2 Get(a) = %q, %v", v, err)
		}
		mustIs(t, "Rollback", txn2.Rollback(), nil)
		// The first still sees its snapshot after the second ends.
		if v, err := txn.Get("d"); err != nil || v != "4" {
			t.Fatalf("txn Get(d) = %q, %v after another transaction ended", v, err)
		}
	})
}

func TestTransactionConflicts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		reset := func() {
			t.Helper()
			mustIs(t, "BatchDelete", e.BatchDelete(bg, []string{"x", "y", "z", "out"}), nil)
			mustIs(t, "BatchPut", e.BatchPut(bg, map[string]string{"x": "x0", "y": "y0"}), nil)
		}
		cases := []struct {
			name     string
			txn      func(txn Transaction) // the transaction's own calls
			outside  func() error          // the concurrent writer, after begin
			conflict bool
		}{
			{"read then overwritten", func(x Transaction) { x.Get("x"); x.Put("out", "1") },
				func() error { return e.Put(bg, "x", "x1") }, true},
			{"read then deleted", func(x Transaction) { x.Get("x"); x.Put("out", "1") },
				func() error { return e.Delete(bg, "x") }, true},
			{"read absent then created", func(x Transaction) { x.Get("z"); x.Put("out", "1") },
				func() error { return e.Put(bg, "z", "z1") }, true},
			{"read absent then deleted", func(x Transaction) { x.Get("z"); x.Put("out", "1") },
				func() error { return e.Delete(bg, "z") }, true},
			{"read then batch", func(x Transaction) { x.Get("y"); x.Put("out", "1") },
				func() error { return e.BatchPut(bg, map[string]string{"y": "y1", "q": "q"}) }, true},
			{"read then batch delete", func(x Transaction) { x.Get("y"); x.Put("out", "1") },
				func() error { return e.BatchDelete(bg, []string{"y"}) }, true},
			{"read then ttl put", func(x Transaction) { x.Get("y"); x.Put("out", "1") },
				func() error { return e.PutWithTTL(bg, "y", "y1", time.Hour) }, true},
			{"blind write then overwritten", func(x Transaction) { x.Put("x", "mine"); x.Put("out", "1") },
				func() error { return e.Put(bg, "x", "theirs") }, true},
			{"delete then overwritten", func(x Transaction) { x.Delete("x"); x.Put("out", "1") },
				func() error { return e.Put(bg, "x", "theirs") }, true},
			{"read-only then overwritten", func(x Transaction) { x.Get("x") },
				func() error { return e.Put(bg, "x", "x1") }, true},
			{"own write then read then overwritten", func(x Transaction) { x.Put("x", "m"); x.Get("x"); x.Put("out", "1") },
				func() error { return e.Put(bg, "x", "x1") }, true},
			{"unrelated write", func(x Transaction) { x.Get("x"); x.Put("y", "mine"); x.Put("out", "1") },
				func() error { return e.Put(bg, "z", "z1") }, false},
			{"write to a key only read by others", func(x Transaction) { x.Put("out", "1") },
				func() error { return e.Put(bg, "x", "x1") }, false},
		}
		for _, c := range cases {
			reset()
			txn, err := e.BeginTransaction(bg)
			mustIs(t, "BeginTransaction", err, nil)
			c.txn(txn)
			mustIs(t, c.name+": the outside write", c.outside(), nil)
			before := scan(t, e, "")
			err = txn.Commit()
			if c.conflict {
				mustIs(t, c.name, err, ErrConflict)
				if after := scan(t, e, ""); !slices.Equal(before, after) {
					t.Fatalf("%s: a conflicting Commit changed the engine: %q -> %q", c.name, before, after)
				}
			} else {
				mustIs(t, c.name, err, nil)
				mustGet(t, e, "out", "1")
			}
			checkTxnDone(t, txn)
		}

		// Writes before BeginTransaction never conflict.
		reset()
		mustIs(t, "Put", e.Put(bg, "x", "before"), nil)
		txn, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		if v, _ := txn.Get("x"); v != "before" {
			t.Fatalf("txn Get(x) = %q", v)
		}
		mustIs(t, "txn Put", txn.Put("x", "after"), nil)
		mustIs(t, "Commit", txn.Commit(), nil)
		mustGet(t, e, "x", "after")

		// Two read-modify-write transactions on one key: the second loses.
		reset()
		t1, _ := e.BeginTransaction(bg)
		t2, _ := e.BeginTransaction(bg)
		for _, txn := range []Transaction{t1, t2} {
			v, err := txn.Get("x")
			mustIs(t, "txn Get", err, nil)
			mustIs(t, "txn Put", txn.Put("x", v+"+1"), nil)
		}
		mustIs(t, "first Commit", t1.Commit(), nil)
		mustIs(t, "second Commit", t2.Commit(), ErrConflict)
		mustGet(t, e, "x", "x0+1")

		// A committed transaction's writes conflict with older transactions.
		reset()
		t1, _ = e.BeginTransaction(bg)
		t1.Get("y")
		t2, _ = e.BeginTransaction(bg)
		mustIs(t, "t2 Put", t2.Put("y", "t2"), nil)
		mustIs(t, "t2 Commit", t2.Commit(), nil)
		mustIs(t, "t1 Put", t1.Put("out", "t1"), nil)
		mustIs(t, "t1 Commit", t1.Commit(), ErrConflict)
		mustMissing(t, e, "out")
		mustGet(t, e, "y", "t2")
	})
}

// TestTransactionHistory: long-lived transactions keep their snapshots
// while many writes, deletes and other transactions come and go, and the
// engine's counters are right once they end.
func TestTransactionHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		const nkeys = 300
		for i := range nkeys {
			mustIs(t, "Put", e.Put(bg, pad(i), "v0"), nil)
		}
		t0, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		// Round 1: overwrite everything, delete a third.
		for i := range nkeys {
			mustIs(t, "Put", e.Put(bg, pad(i), "v1"), nil)
			if i%3 == 0 {
				mustIs(t, "Delete", e.Delete(bg, pad(i)), nil)
			}
		}
		t1, err := e.BeginTransaction(bg)
		mustIs(t, "BeginTransaction", err, nil)
		// Round 2: overwrite again, with short transactions in between, and
		// delete a fifth (tombstones newer than t1's snapshot).
		for i := range nkeys {
			mustIs(t, "Put", e.Put(bg, pad(i), "v2"), nil)
			if i%10 == 0 {
				x, err := e.BeginTransaction(bg)
				mustIs(t, "BeginTransaction", err, nil)
				mustIs(t, "Put", x.Put(pad(i), "v2x"), nil)
				mustIs(t, "Commit", x.Commit(), nil)
			}
			if i%5 == 1 {
				mustIs(t, "Delete", e.Delete(bg, pad(i)), nil)
			}
		}
		read := func(txn Transaction, i int) string {
			v, err := txn.Get(pad(i))
			if errors.Is(err, ErrNotFound) {
				return "-"
			}
			mustIs(t, "txn Get", err, nil)
			return v
		}
		for i := range nkeys {
			if v := read(t0, i); v != "v0" {
				t.Fatalf("t0 reads %q=%q, want its snapshot's v0", pad(i), v)
			}
		}
		// The oldest snapshot goes: what only t0 needed may be reclaimed,
		// never what t1 needs.
		mustIs(t, "t0 Rollback", t0.Rollback(), nil)
		checkT1 := func() {
			t.Helper()
			for i := range nkeys {
				want := "v1"
				if i%3 == 0 {
					want = "-"
				}
				if v := read(t1, i); v != want {
					t.Fatalf("t1 reads %q=%q, want its snapshot's %q", pad(i), v, want)
				}
			}
		}
		checkT1()
		// Round 3, with only t1 open.
		for i := range nkeys {
			mustIs(t, "Delete", e.Delete(bg, pad(i)), nil)
			if i%2 == 0 {
				mustIs(t, "PutWithTTL", e.PutWithTTL(bg, pad(i), "v3", time.Hour), nil)
			}
		}
		checkT1()
		// t1 read keys that were deleted after it began.
		mustIs(t, "t1 Put", t1.Put("t1", "x"), nil)
		mustIs(t, "t1 Commit", t1.Commit(), ErrConflict)
		mustMissing(t, e, "t1")
		if s := e.Stats(); s.Entries != nkeys/2 {
			t.Fatalf("Stats.Entries = %d, want %d", s.Entries, nkeys/2)
		}
		if got := len(scan(t, e, "")); got != nkeys/2 {
			t.Fatalf("%d keys iterate, want %d", got, nkeys/2)
		}
		// Many TTL rewrites of one key.
		for i := range scaled(5000, 2000) {
			mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "ttl", fmt.Sprint(i), time.Hour), nil)
		}
		mustGet(t, e, "ttl", fmt.Sprint(scaled(5000, 2000)-1))
		if s := e.Stats(); s.Entries != nkeys/2+1 {
			t.Fatalf("Stats.Entries = %d, want %d", s.Entries, nkeys/2+1)
		}
	})
}

// ---------------------------------------------------------------- stats, health

func TestStats(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		if s := e.Stats(); s.Reads != 0 || s.Writes != 0 || s.Deletes != 0 || s.Entries != 0 || s.Bytes != 0 {
			t.Fatalf("fresh Stats = %+v", s)
		}
		mustIs(t, "Put", e.Put(bg, "k1", "12345"), nil)                                    // W1
		mustIs(t, "PutWithTTL", e.PutWithTTL(bg, "k2", "1", time.Hour), nil)               // W2
		mustIs(t, "BatchPut", e.BatchPut(bg, map[string]string{"k3": "", "k4": "4"}), nil) // W4
		mustIs(t, "Put overwrite", e.Put(bg, "k1", "1"), nil)                              // W5
		e.Get(bg, "k1")                                                                    // R1
		e.Get(bg, "missing")                                                               // R2
		e.BatchGet(bg, []string{"k1", "k2", "nope"})                                       // R5
		mustIs(t, "Delete", e.Delete(bg, "k4"), nil)                                       // D1
		mustIs(t, "BatchDelete", e.BatchDelete(bg, []string{"k3", "absent"}), nil)         // D3
		txn, _ := e.BeginTransaction(bg)
		txn.Put("k5", "55") // W6
		txn.Delete("k2")    // D4
		txn.Get("k1")       // not counted
		mustIs(t, "Commit", txn.Commit(), nil)
		// Failed calls are not counted.
		e.Put(bg, "", "x")
		e.Get(bg, "")
		e.BatchDelete(bg, []string{""})
		s := e.Stats()
		if s.Reads != 5 || s.Writes != 6 || s.Deletes != 4 {
			t.Fatalf("Stats counters = %+v, want Reads 5, Writes 6, Deletes 4", s)
		}
		// k1=1, k5=55.
		if s.Entries != 2 {
			t.Fatalf("Stats.Entries = %d, want 2", s.Entries)
		}
		if s.Bytes < 2+1+2+2 {
			t.Fatalf("Stats.Bytes = %d, want at least 7", s.Bytes)
		}
		if s.CacheHits+s.CacheMisses > s.Reads+s.Writes {
			t.Fatalf("cache counters exceed the operations: %+v", s)
		}
		var ratio float64
		if s.CacheHits+s.CacheMisses > 0 {
			ratio = float64(s.CacheHits) / float64(s.CacheHits+s.CacheMisses)
		}
		if s.CacheHitRatio != ratio {
			t.Fatalf("CacheHitRatio = %v, want %v", s.CacheHitRatio, ratio)
		}
		// Bytes and Entries follow the data.
		big := strings.Repeat("b", 1<<20)
		mustIs(t, "Put big", e.Put(bg, "big", big), nil)
		if s2 := e.Stats(); s2.Bytes < s.Bytes+1<<20 || s2.Entries != 3 {
			t.Fatalf("after a 1 MiB Put: Stats = %+v (before %+v)", s2, s)
		}
		mustIs(t, "Delete big", e.Delete(bg, "big"), nil)
		mustIs(t, "BatchDelete", e.BatchDelete(bg, []string{"k1", "k5"}), nil)
		if s3 := e.Stats(); s3.Entries != 0 {
			t.Fatalf("after deleting everything: Stats = %+v", s3)
		}
	})
}

func TestHealthCheck(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		mustIs(t, "HealthCheck", e.HealthCheck(bg), nil)
		mustIs(t, "HealthCheck nil ctx", e.HealthCheck(nil), nil) //nolint:staticcheck // nil ctx is documented
		mustIs(t, "Put nil ctx", e.Put(nil, "k", "v"), nil)       //nolint:staticcheck
		mustGet(t, e, "k", "v")
	})
}

// errorsIsAny reports whether err is nil or one of the allowed errors.
func errorsIsAny(err error, allowed ...error) bool {
	if err == nil {
		return true
	}
	for _, a := range allowed {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- concurrency

// TestConcurrentAtomicity: writers replace a group of keys all at once by
// BatchPut, BatchDelete and transaction commits; readers must never see a
// mix of generations, whether they read by BatchGet, by an iterator, or in
// a transaction.
func TestConcurrentAtomicity(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		const group = 16
		keys := make([]string, group)
		for i := range keys {
			keys[i] = "g/" + pad(i)
		}
		rounds := scaled(2000, 50)
		done := make(chan struct{})
		errc := make(chan error, 8)
		var writers, readers sync.WaitGroup

		// Writer 1: BatchPut of a whole generation, sometimes BatchDelete.
		writers.Add(1)
		go func() {
			defer writers.Done()
			for gen := 1; gen <= rounds; gen++ {
				var err error
				if gen%7 == 0 {
					err = e.BatchDelete(bg, keys)
				} else {
					kv := make(map[string]string, group)
					for _, k := range keys {
						kv[k] = "b" + pad(gen)
					}
					err = e.BatchPut(bg, kv)
				}
				if err != nil {
					errc <- fmt.Errorf("batch writer: %w", err)
					return
				}
			}
		}()
		// Writer 2: transactions that write (or delete) the whole group.
		writers.Add(1)
		go func() {
			defer writers.Done()
			for gen := 1; gen <= rounds/4; gen++ {
				txn, err := e.BeginTransaction(bg)
				if err != nil {
					errc <- fmt.Errorf("txn writer: %w", err)
					return
				}
				for _, k := range keys {
					if gen%5 == 0 {
						err = txn.Delete(k)
					} else {
						err = txn.Put(k, "t"+pad(gen))
					}
					if err != nil {
						errc <- fmt.Errorf("txn writer: %w", err)
						return
					}
				}
				if err := txn.Commit(); err != nil && !errors.Is(err, ErrConflict) {
					errc <- fmt.Errorf("txn writer commit: %w", err)
					return
				}
			}
		}()
		// consistent checks that a view of the group is all of one value or empty.
		consistent := func(how string, view map[string]string) error {
			if len(view) == 0 {
				return nil
			}
			if len(view) != group {
				return fmt.Errorf("%s saw %d of %d keys of a batch: %q", how, len(view), group, view)
			}
			first := view[keys[0]]
			for k, v := range view {
				if v != first {
					return fmt.Errorf("%s saw a mix of generations: %q=%q and %q=%q", how, keys[0], first, k, v)
				}
			}
			return nil
		}
		reader := func(kind int) {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				view := map[string]string{}
				var how string
				switch kind {
				case 0:
					how = "BatchGet"
					m, err := e.BatchGet(bg, keys)
					if err != nil {
						errc <- err
						return
					}
					view = m
				case 1:
					how = "an iterator"
					it, err := e.NewIterator(bg, "g/")
					if err != nil {
						errc <- err
						return
					}
					for it.Next() {
						view[it.Key()] = it.Value()
					}
					err = it.Error()
					it.Close()
					if err != nil {
						errc <- err
						return
					}
				case 2:
					how = "a transaction"
					txn, err := e.BeginTransaction(bg)
					if err != nil {
						errc <- err
						return
					}
					for _, k := range keys {
						v, err := txn.Get(k)
						if err == nil {
							view[k] = v
						} else if !errors.Is(err, ErrNotFound) {
							errc <- err
							return
						}
						if k == keys[group/2] {
							runtime.Gosched() // let writers run mid-snapshot
						}
					}
					txn.Rollback()
				}
				if err := consistent(how, view); err != nil {
					errc <- err
					return
				}
			}
		}
		for kind := range 3 {
			readers.Add(1)
			go reader(kind)
		}
		writers.Wait()
		close(done)
		readers.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
	})
}

// TestNoStaleReads: writers write increasing values to a few keys; a Get
// that begins after a write returned must see that value or a newer one,
// and no reader ever sees a value older than one it already saw.
func TestNoStaleReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		const nkeys = 4
		var published [nkeys]atomic.Int64 // the newest value whose write returned
		rounds := scaled(20000, 500)
		for k := range nkeys {
			mustIs(t, "Put", e.Put(bg, "s"+pad(k), pad(0)), nil)
		}
		done := make(chan struct{})
		errc := make(chan error, 8)
		var writers, readers sync.WaitGroup
		// One writer per key pair, so each key's values increase.
		for w := range 2 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for v := 1; v <= rounds; v++ {
					k := 2*w + v%2
					var err error
					switch v % 3 {
					case 0:
						err = e.Put(bg, "s"+pad(k), pad(v))
					case 1:
						err = e.BatchPut(bg, map[string]string{"s" + pad(k): pad(v)})
					case 2:
						var txn Transaction
						if txn, err = e.BeginTransaction(bg); err == nil {
							txn.Put("s"+pad(k), pad(v))
							err = txn.Commit()
						}
					}
					if err != nil {
						errc <- fmt.Errorf("writer: %w", err)
						return
					}
					published[k].Store(int64(v))
				}
			}()
		}
		for range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				var seen [nkeys]int
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					k := i % nkeys
					floor := int(published[k].Load())
					var got int
					if i%5 == 4 {
						m, err := e.BatchGet(bg, []string{"s" + pad(k)})
						if err != nil {
							errc <- err
							return
						}
						got = unpad(m["s"+pad(k)])
					} else {
						v, err := e.Get(bg, "s"+pad(k))
						if err != nil {
							errc <- fmt.Errorf("Get: %w", err)
							return
						}
						got = unpad(v)
					}
					if got < floor {
						errc <- fmt.Errorf("stale read of key %d: got %d after the write of %d returned", k, got, floor)
						return
					}
					if got < seen[k] {
						errc <- fmt.Errorf("read of key %d went back in time: %d after %d", k, got, seen[k])
						return
					}
					seen[k] = got
				}
			}()
		}
		writers.Wait()
		close(done)
		readers.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		for k := range nkeys {
			mustGet(t, e, "s"+pad(k), pad(int(published[k].Load())))
		}
	})
}

// TestBankTransfers: concurrent transactions move money between accounts,
// retrying on ErrConflict. Lost updates or non-atomic commits would change
// the total, which concurrent snapshot readers and the end state check.
func TestBankTransfers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		const accounts, initial = 8, 1000
		keys := make([]string, accounts)
		kv := map[string]string{}
		for i := range keys {
			keys[i] = "acct/" + pad(i)
			kv[keys[i]] = fmt.Sprint(initial)
		}
		mustIs(t, "BatchPut", e.BatchPut(bg, kv), nil)
		transfers := scaled(3000, 150)
		errc := make(chan error, 8)
		var committed, conflicts atomic.Int64
		var workers, readers sync.WaitGroup
		done := make(chan struct{})
		total := func(vals func(k string) (string, bool)) (int, error) {
			sum := 0
			for _, k := range keys {
				v, ok := vals(k)
				if !ok {
					return 0, fmt.Errorf("account %s missing", k)
				}
				var n int
				if _, err := fmt.Sscan(v, &n); err != nil {
					return 0, err
				}
				sum += n
			}
			return sum, nil
		}
		for w := range 3 {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for i := 0; i < transfers; i++ {
					from, to := keys[(i*7+w)%accounts], keys[(i*3+w+1)%accounts]
					if from == to {
						continue
					}
					for attempt := 0; ; attempt++ {
						txn, err := e.BeginTransaction(bg)
						if err != nil {
							errc <- err
							return
						}
						var a, b int
						va, err1 := txn.Get(from)
						vb, err2 := txn.Get(to)
						if err1 != nil || err2 != nil {
							errc <- fmt.Errorf("txn Get: %v, %v", err1, err2)
							return
						}
						fmt.Sscan(va, &a)
						fmt.Sscan(vb, &b)
						runtime.Gosched() // invite other transfers in between
						txn.Put(from, fmt.Sprint(a-1))
						txn.Put(to, fmt.Sprint(b+1))
						err = txn.Commit()
						if err == nil {
							committed.Add(1)
							break
						}
						if !errors.Is(err, ErrConflict) {
							errc <- fmt.Errorf("Commit: %w", err)
							return
						}
						conflicts.Add(1)
					}
				}
			}()
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var sum int
				var err error
				if i%2 == 0 {
					var m map[string]string
					if m, err = e.BatchGet(bg, keys); err == nil {
						sum, err = total(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
					}
				} else {
					m := map[string]string{}
					for _, kv := range scan(t, e, "acct/") {
						m[kv[0]] = kv[1]
					}
					sum, err = total(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
				}
				if err != nil {
					errc <- err
					return
				}
				if sum != accounts*initial {
					errc <- fmt.Errorf("a snapshot's total is %d, want %d", sum, accounts*initial)
					return
				}
			}
		}()
		workers.Wait()
		close(done)
		readers.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		m, err := e.BatchGet(bg, keys)
		mustIs(t, "BatchGet", err, nil)
		sum, err := total(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
		mustIs(t, "total", err, nil)
		if sum != accounts*initial {
			t.Fatalf("final total %d, want %d", sum, accounts*initial)
		}
		if committed.Load() == 0 {
			t.Fatal("no transfer committed")
		}
		t.Logf("%d transfers committed, %d conflicts retried", committed.Load(), conflicts.Load())
	})
}

// TestCloseConcurrent: Close while every kind of call is in flight. Calls
// must succeed or fail with an allowed error, never crash; after Close
// returns everything fails with ErrClosed; concurrent Closes all return nil.
func TestCloseConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		for round := range scaled(20, 3) {
			e := te.new(StorageConfig{})
			mustIs(t, "Init", e.Init(""), nil)
			for i := range 100 {
				mustIs(t, "Put", e.Put(bg, pad(i), "v"), nil)
			}
			allowed := []error{ErrClosed, ErrNotFound, ErrConflict}
			errc := make(chan error, 16)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := 0; ; i++ {
						k := pad((i*31 + g) % 100)
						var err error
						switch (i + g) % 9 {
						case 0:
							err = e.Put(bg, k, "w")
						case 1:
							_, err = e.Get(bg, k)
						case 2:
							err = e.Delete(bg, k)
						case 3:
							err = e.BatchPut(bg, map[string]string{k: "b", pad(i % 100): "c"})
						case 4:
							_, err = e.BatchGet(bg, []string{k, pad(i % 100)})
						case 5:
							err = e.BatchDelete(bg, []string{k})
						case 6:
							var it Iterator
							if it, err = e.NewIterator(bg, ""); err == nil {
								for it.Next() {
									_ = it.Key() + it.Value()
								}
								err = it.Error()
								if cerr := it.Close(); cerr != nil {
									err = cerr
								}
							}
						case 7:
							var txn Transaction
							if txn, err = e.BeginTransaction(bg); err == nil {
								txn.Get(k)
								txn.Put(k, "t")
								err = txn.Commit()
								if !errorsIsAny(err, allowed...) {
									break
								}
								if rerr := txn.Rollback(); !errors.Is(rerr, ErrTxnDone) {
									err = fmt.Errorf("Rollback after Commit: %v", rerr)
								}
							}
						case 8:
							err = e.PutWithTTL(bg, k, "ttl", time.Hour)
							e.Stats()
							e.HealthCheck(bg)
						}
						if !errorsIsAny(err, allowed...) {
							errc <- fmt.Errorf("round %d, op %d: %w", round, (i+g)%9, err)
							return
						}
						if errors.Is(err, ErrClosed) {
							return
						}
					}
				}()
			}
			close(start)
			time.Sleep(time.Duration(round%4) * time.Millisecond)
			var closers sync.WaitGroup
			for range 2 {
				closers.Add(1)
				go func() {
					defer closers.Done()
					if err := e.Close(); err != nil {
						errc <- fmt.Errorf("concurrent Close: %w", err)
					}
				}()
			}
			closers.Wait()
			checkAllClosed(t, e)
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
		}
	})
}
