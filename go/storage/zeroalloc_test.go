package storage

// Reads without allocation, on every engine: GetAppend (Engine) and the
// byte views of BytesIterator. Their contracts (errors, lifetimes, no stale
// read, strings from Key and Value surviving chunk reuse) and their
// allocation counts, checked exactly; benchmarks report allocs/op.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestGetAppend(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		fresh := te.new(StorageConfig{})
		if _, err := fresh.GetAppend(bg, nil, "k"); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("GetAppend before Init: %v, want ErrNotInitialized", err)
		}
		e := openEngine(t, te)
		mustIs(t, "Put", e.Put(bg, "k", "value"), nil)
		mustIs(t, "Put empty", e.Put(bg, "empty", ""), nil)

		dst := append(make([]byte, 0, 64), "prefix:"...)
		got, err := e.GetAppend(bg, dst, "k")
		mustIs(t, "GetAppend", err, nil)
		if string(got) != "prefix:value" || &got[0] != &dst[0] {
			t.Fatalf("GetAppend = %q (same array %v), want prefix:value in dst's array", got, &got[0] == &dst[0])
		}
		got, err = e.GetAppend(bg, dst, "empty")
		mustIs(t, "GetAppend empty value", err, nil)
		if string(got) != "prefix:" {
			t.Fatalf("GetAppend of an empty value = %q", got)
		}
		for _, c := range []struct {
			key  string
			want error
		}{{"missing", ErrNotFound}, {"", ErrInvalidKey}, {strings.Repeat("k", MaxKeySize+1), ErrTooLarge}} {
			got, err = e.GetAppend(bg, dst, c.key)
			mustIs(t, "GetAppend "+c.key, err, c.want)
			if string(got) != "prefix:" {
				t.Fatalf("GetAppend(%q) failed but returned %q, want dst unchanged", c.key, got)
			}
		}
		cancelled, cancel := context.WithCancel(bg)
		cancel()
		if _, err := e.GetAppend(cancelled, dst, "k"); err != context.Canceled {
			t.Fatalf("GetAppend with a cancelled context: %v", err)
		}

		// A value larger than dst's room grows it; dst's bytes are kept.
		big := strings.Repeat("0123456789", 10_000)
		mustIs(t, "Put big", e.Put(bg, "big", big), nil)
		got, err = e.GetAppend(bg, dst[:3:3], "big")
		mustIs(t, "GetAppend big", err, nil)
		if string(got) != "pre"+big {
			t.Fatalf("GetAppend of a 100 KB value into a full slice: wrong bytes (len %d)", len(got))
		}

		// Every write that returned is seen (the C engine serves the
		// second read from its cache).
		for i := range 50 {
			v := fmt.Sprint("v", i)
			mustIs(t, "Put", e.Put(bg, "k", v), nil)
			for range 2 {
				got, err = e.GetAppend(bg, dst[:0], "k")
				if err != nil || string(got) != v {
					t.Fatalf("GetAppend after Put %q = %q, %v", v, got, err)
				}
			}
		}
		mustIs(t, "Delete", e.Delete(bg, "k"), nil)
		_, err = e.GetAppend(bg, dst, "k")
		mustIs(t, "GetAppend after Delete", err, ErrNotFound)

		before := e.Stats().Reads
		_, _ = e.GetAppend(bg, nil, "big")
		if r := e.Stats().Reads; r != before+1 {
			t.Fatalf("GetAppend counted %d reads, want 1", r-before)
		}
		mustIs(t, "Close", e.Close(), nil)
		_, err = e.GetAppend(bg, dst, "big")
		mustIs(t, "GetAppend after Close", err, ErrClosed)
	})
}

func TestBytesIterator(t *testing.T) {
	forEachEngine(t, func(t *testing.T, te testEngine) {
		e := openEngine(t, te)
		// Enough data for many chunks of the C engine (64 KiB at most),
		// with empty values, binary bytes and one entry larger than a chunk.
		want := map[string]string{}
		for i := range 3000 {
			k := fmt.Sprintf("p/%05d\x00\xff", i)
			v := strings.Repeat(string(rune('a'+i%26)), i%97)
			if i == 1500 {
				v = strings.Repeat("L", 200_000)
			}
			want[k] = v
		}
		mustIs(t, "BatchPut", e.BatchPut(bg, want), nil)

		it, err := e.NewIterator(bg, "p/")
		mustIs(t, "NewIterator", err, nil)
		bit, ok := it.(BytesIterator)
		if !ok {
			t.Fatalf("%T does not implement BytesIterator", it)
		}
		if bit.KeyBytes() != nil || bit.ValueBytes() != nil {
			t.Fatal("KeyBytes or ValueBytes not nil before the first Next")
		}
		type kept struct{ k, v string }
		var strs []kept // strings taken from some entries, checked at the end
		n, prev := 0, ""
		for bit.Next() {
			k, v := bit.KeyBytes(), bit.ValueBytes()
			if v == nil {
				t.Fatalf("ValueBytes of %q is nil", k)
			}
			if w, ok := want[string(k)]; !ok || w != string(v) {
				t.Fatalf("entry %d: key %q value of %d bytes, want %d bytes", n, k, len(v), len(w))
			}
			if string(k) <= prev {
				t.Fatalf("key %q after %q: out of order", k, prev)
			}
			prev = string(k)
			if n%7 == 0 {
				strs = append(strs, kept{bit.Key(), bit.Value()})
				if !bytes.Equal(bit.KeyBytes(), k) {
					t.Fatal("KeyBytes changed after Key")
				}
			}
			n++
		}
		mustIs(t, "Error", bit.Error(), nil)
		if n != len(want) {
			t.Fatalf("scanned %d entries, want %d", n, len(want))
		}
		if bit.KeyBytes() != nil || bit.ValueBytes() != nil {
			t.Fatal("KeyBytes or ValueBytes not nil after the end")
		}
		mustIs(t, "Close", bit.Close(), nil)
		runtime.GC()
		// Strings from Key and Value stay valid and unchanged forever,
		// even though later chunks reused memory where they could.
		for _, s := range strs {
			if want[s.k] != s.v {
				t.Fatalf("a kept Key/Value string changed: key %q", s.k)
			}
		}
	})
}

// TestZeroAllocReads checks the allocation counts exactly: GetAppend into a
// slice with room allocates nothing (cached and uncached in the C engine),
// and a byte scan's allocations do not grow with its number of entries.
func TestZeroAllocReads(t *testing.T) {
	if raceBuild {
		t.Skip("allocation counts are not exact under the race detector")
	}
	forEachEngine(t, func(t *testing.T, te testEngine) {
		for _, cache := range []int64{0, 1} { // default, and one that holds nothing
			e := te.new(StorageConfig{CacheSize: cache})
			mustIs(t, "Init", e.Init(""), nil)
			defer e.Close()
			v := strings.Repeat("v", 100)
			mustIs(t, "Put", e.Put(bg, "key", v), nil)
			buf := make([]byte, 0, 128)
			if n := testing.AllocsPerRun(200, func() {
				buf, _ = e.GetAppend(bg, buf[:0], "key")
			}); n != 0 || string(buf) != v {
				t.Fatalf("GetAppend (cache %d): %.2f allocations per call, want 0", cache, n)
			}
			if n := testing.AllocsPerRun(200, func() {
				_, _ = e.GetAppend(bg, buf[:0], "missing")
			}); n != 0 {
				t.Fatalf("GetAppend of a missing key (cache %d): %.2f allocations, want 0", cache, n)
			}
		}

		e := openEngine(t, te)
		for i := range 20_000 {
			p := "a/"
			if i%10 == 0 {
				p = "b/"
			}
			mustIs(t, "Put", e.Put(bg, p+pad(i), strings.Repeat("v", 100)), nil)
		}
		// Allocations a scan adds to NewIterator and Close: the C engine's
		// chunks grow to their full size, then are reused.
		scanAllocs := func(prefix string) (float64, int) {
			entries := 0
			open := testing.AllocsPerRun(5, func() {
				it, _ := e.NewIterator(bg, prefix)
				it.Close()
			})
			return testing.AllocsPerRun(5, func() {
				it, _ := e.NewIterator(bg, prefix)
				bit := it.(BytesIterator)
				entries = 0
				for bit.Next() {
					_, _ = bit.KeyBytes(), bit.ValueBytes()
					entries++
				}
				bit.Close()
			}) - open, entries
		}
		small, ns := scanAllocs("b/")
		large, nl := scanAllocs("a/")
		if ns != 2000 || nl != 18000 {
			t.Fatalf("scanned %d and %d entries", ns, nl)
		}
		if large != small {
			t.Fatalf("a byte scan of %d entries made %.0f allocations, of %d entries %.0f: want no allocation per entry",
				nl, large, ns, small)
		}
		// Past its first chunks, a byte scan's Next allocates nothing.
		it, err := e.NewIterator(bg, "a/")
		mustIs(t, "NewIterator", err, nil)
		defer it.Close()
		bit := it.(BytesIterator)
		for range 2000 {
			bit.Next()
		}
		if n := testing.AllocsPerRun(5000, func() {
			if !bit.Next() || len(bit.KeyBytes()) == 0 || len(bit.ValueBytes()) != 100 {
				panic("scan ended early")
			}
		}); n != 0 {
			t.Fatalf("Next, KeyBytes, ValueBytes: %.4f allocations per entry, want 0", n)
		}
	})
}

// BenchmarkGetAppend: reading a 100-byte value into a reused slice
// (allocs/op must be 0), next to Get for comparison.
func BenchmarkGetAppend(b *testing.B) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			e := openEngine(b, te)
			const n = 1000
			keys := make([]string, n)
			for i := range keys {
				keys[i] = "key:" + pad(i)
				if err := e.Put(bg, keys[i], strings.Repeat("v", benchValLen)); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("GetAppend", func(b *testing.B) {
				buf := make([]byte, 0, 256)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					var err error
					if buf, err = e.GetAppend(bg, buf[:0], keys[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("Get", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := e.Get(bg, keys[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkIterateBytes: one op is one entry of a scan (Next, KeyBytes,
// ValueBytes) over 100,000 entries; reopening the iterator at the end runs
// with the timer stopped, so ns/op, B/op and allocs/op are the scan's own.
func BenchmarkIterateBytes(b *testing.B) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			e := openEngine(b, te)
			for i := range 100_000 {
				if err := e.Put(bg, "key:"+pad(i), strings.Repeat("v", benchValLen)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var it BytesIterator
			sum := 0
			for b.Loop() {
				if it == nil || !it.Next() {
					b.StopTimer()
					if it != nil {
						it.Close()
					}
					x, err := e.NewIterator(bg, "key:")
					if err != nil {
						b.Fatal(err)
					}
					it = x.(BytesIterator)
					b.StartTimer()
					it.Next()
				}
				sum += len(it.KeyBytes()) + len(it.ValueBytes())
			}
			it.Close()
			if sum == 0 {
				b.Fatal("nothing scanned")
			}
		})
	}
}
