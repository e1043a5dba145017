package storage

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// forEachEngine runs f as a subtest for every engine in testEngines.
func forEachEngine(t *testing.T, f func(t *testing.T, te testEngine)) {
	t.Helper()
	for _, te := range testEngines {
		t.Run(te.name, func(t *testing.T) { f(t, te) })
	}
}

// openEngine returns an initialised in-memory engine closed at the end of
// the test.
func openEngine(t testing.TB, te testEngine) Engine {
	t.Helper()
	e := te.new(StorageConfig{})
	if err := e.Init(""); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// scaled divides an iteration count by 10 under -short and by
// MANTIS_TEST_SCALE, never below min.
func scaled(n, min int) int {
	if testing.Short() {
		n /= 10
	}
	if s, err := strconv.Atoi(os.Getenv("MANTIS_TEST_SCALE")); err == nil && s > 1 {
		n /= s
	}
	return max(n, min)
}

// mustIs fails the test unless errors.Is(err, want) (want nil: err == nil).
func mustIs(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
	if !strings.HasPrefix(err.Error(), "storage: ") && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: error %q lacks the \"storage: \" prefix", what, err)
	}
}

// mustGet fails unless key holds want.
func mustGet(t testing.TB, e StorageEngine, key, want string) {
	t.Helper()
	got, err := e.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", clip(key), err, clip(want))
	}
	if got != want {
		t.Fatalf("Get(%q) = %q, want %q", clip(key), clip(got), clip(want))
	}
}

// mustGetLive is mustGet for a key written with a TTL at put (a time
// taken before the write): the key must read want as long as the TTL has
// not run out when the Get returns. A test descheduled past it (a loaded
// machine) may find the key expired: that is checked to be ErrNotFound.
func mustGetLive(t testing.TB, e StorageEngine, key, want string, put time.Time, ttl time.Duration) {
	t.Helper()
	got, err := e.Get(context.Background(), key)
	// The engines' clocks tick in milliseconds: a margin of two.
	if time.Since(put) >= ttl-2*time.Millisecond && errors.Is(err, ErrNotFound) {
		return
	}
	if err != nil || got != want {
		t.Fatalf("Get(%q) = %q, %v, want %q (%v after the write, TTL %v)", clip(key), clip(got), err,
			clip(want), time.Since(put), ttl)
	}
}

// mustMissing fails unless key is absent.
func mustMissing(t testing.TB, e StorageEngine, key string) {
	t.Helper()
	got, err := e.Get(context.Background(), key)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", clip(key), clip(got), err)
	}
}

// scan collects an iterator's entries over prefix, closing it.
func scan(t testing.TB, e StorageEngine, prefix string) [][2]string {
	t.Helper()
	it, err := e.NewIterator(context.Background(), prefix)
	if err != nil {
		t.Fatalf("NewIterator(%q): %v", prefix, err)
	}
	defer it.Close()
	var out [][2]string
	for it.Next() {
		out = append(out, [2]string{it.Key(), it.Value()})
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterator over %q: %v", prefix, err)
	}
	return out
}

// pad formats n so that bytewise order is numeric order.
func pad(n int) string { return strconv.FormatUint(uint64(n)+1e12, 10) }

// unpad parses pad's output (-1 if it is not one).
func unpad(s string) int {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1e12 {
		return -1
	}
	return int(n - 1e12)
}
