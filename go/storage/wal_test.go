package storage

// The durability contract, both engines: reopen, ErrLocked, the format read
// by the other engine, Backup, TTLs as absolute times, checkpoints removing
// the log, disk use under overwrites, read-only state after a failed write,
// fsync or a full disk.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// openDurableEngine opens te on dir with o (nil: defaults).
func openDurableEngine(t testing.TB, te testEngine, dir string, sync bool, o *durableOptions) durableTestEngine {
	t.Helper()
	e := te.new(StorageConfig{SyncWrites: sync}).(durableTestEngine)
	if o != nil {
		e.setDurableOptions(o)
	}
	if err := e.Init(dir); err != nil {
		t.Fatalf("%s: init %s: %v", te.name, dir, err)
	}
	return e
}

// runOps runs n generated ops on e and returns the model's state.
func runOps(t testing.TB, e Engine, seed uint64, prefix string, n int, m map[string]string) map[string]string {
	t.Helper()
	if m == nil {
		m = map[string]string{}
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for i := range n {
		op := genOp(r, prefix, 40, i)
		if e == nil { // the model alone
			op.apply(m)
			continue
		}
		if err := op.do(context.Background(), e); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		op.apply(m)
	}
	return m
}

func checkState(t testing.TB, e Engine, prefix string, want map[string]string, what string) {
	t.Helper()
	if got := readPrefix(t, e, prefix); !maps.Equal(got, want) {
		t.Fatalf("%s: %s", what, diff(want, got))
	}
}

// TestDurableReopenEveryEngine writes with each engine (segments rotating,
// background checkpoints) and reopens with every engine: one format.
func TestDurableReopenEveryEngine(t *testing.T) {
	for _, w := range testEngines {
		for _, sync := range []bool{false, true} {
			dir := t.TempDir()
			e := openDurableEngine(t, w, dir, sync, &durableOptions{segmentSize: 4 << 10, ckptMin: 16 << 10})
			want := runOps(t, e, 1, "k/", 1500, nil)
			checkState(t, e, "k/", want, "before close")
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			for _, r := range testEngines {
				e := openDurableEngine(t, r, dir, false, nil)
				checkState(t, e, "k/", want, w.name+" -> "+r.name)
				want = runOps(t, e, 2, "k/", 100, want) // and write on
				e.Close()
			}
		}
	}
}

func TestDurableLocked(t *testing.T) {
	for _, te := range testEngines {
		dir := t.TempDir()
		e := openDurableEngine(t, te, dir, true, nil)
		e.Put(context.Background(), "a", "1")
		before, _ := os.ReadDir(dir)
		for _, other := range testEngines {
			e2 := other.new(StorageConfig{})
			if err := e2.Init(dir); !errors.Is(err, ErrLocked) {
				t.Fatalf("%s then %s: second open: %v, want ErrLocked", te.name, other.name, err)
			}
			e2.Close()
		}
		after, _ := os.ReadDir(dir)
		if len(before) != len(after) {
			t.Fatalf("a refused open touched the directory: %d files, then %d", len(before), len(after))
		}
		e.Close()
		e = openDurableEngine(t, te, dir, true, nil) // released by Close
		if v, err := e.Get(context.Background(), "a"); err != nil || v != "1" {
			t.Fatalf("after reopen: %q %v", v, err)
		}
		e.Close()
	}
}

// TestDurableTTLAbsolute: a TTL is an absolute time: it keeps running while
// the database is closed, through the log and through a checkpoint.
func TestDurableTTLAbsolute(t *testing.T) {
	ctx := context.Background()
	for _, te := range testEngines {
		for _, ckpt := range []bool{false, true} {
			dir := t.TempDir()
			e := openDurableEngine(t, te, dir, true, nil)
			put := time.Now()
			e.PutWithTTL(ctx, "short", "s", 150*time.Millisecond)
			e.PutWithTTL(ctx, "long", "l", time.Hour)
			e.Put(ctx, "plain", "p")
			if ckpt {
				if err := e.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			e.Close()
			e = openDurableEngine(t, te, dir, true, nil)
			mustGetLive(t, e, "short", "s", put, 150*time.Millisecond) // right after reopen
			e.Close()
			time.Sleep(200 * time.Millisecond)
			e = openDurableEngine(t, te, dir, true, nil)
			if _, err := e.Get(ctx, "short"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s ckpt %v: expired while closed, still there: %v", te.name, ckpt, err)
			}
			for k, v := range map[string]string{"long": "l", "plain": "p"} {
				if got, err := e.Get(ctx, k); err != nil || got != v {
					t.Fatalf("%s ckpt %v: %s = %q %v", te.name, ckpt, k, got, err)
				}
			}
			e.Close()
		}
	}
}

// TestDurableBackup: Backup of a durable and of an in-memory engine, taken
// while writers run, opens in every engine with exactly the state of one
// moment (the writer's batches are whole).
func TestDurableBackup(t *testing.T) {
	ctx := context.Background()
	for _, te := range testEngines {
		for _, durableSrc := range []bool{false, true} {
			e := te.new(StorageConfig{}).(durableTestEngine)
			src := ""
			if durableSrc {
				src = t.TempDir()
			}
			if err := e.Init(src); err != nil {
				t.Fatal(err)
			}
			want := runOps(t, e, 5, "b/", 500, nil)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // batches of 4 keys with one value each: whole or absent
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					v := string(rune('a' + i%26))
					e.BatchPut(ctx, map[string]string{"z/1": v, "z/2": v, "z/3": v, "z/4": v})
				}
			}()
			dst := filepath.Join(t.TempDir(), "backup")
			err := e.Backup(ctx, dst)
			close(stop)
			<-done
			if err != nil {
				t.Fatalf("%s: backup: %v", te.name, err)
			}
			if err := e.Backup(ctx, dst); err == nil {
				t.Fatalf("backup into a non-empty directory succeeded")
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := e.Backup(cctx, t.TempDir()); !errors.Is(err, context.Canceled) {
				t.Fatalf("backup with a cancelled context: %v", err)
			}
			e.Close()
			for _, r := range testEngines {
				b := openDurableEngine(t, r, dst, true, nil)
				checkState(t, b, "b/", want, "backup of "+te.name+" in "+r.name)
				z := readPrefix(t, b, "z/")
				if len(z) != 0 && len(z) != 4 {
					t.Fatalf("backup holds %d keys of a 4-key batch", len(z))
				}
				for _, v := range z {
					if v != z["z/1"] {
						t.Fatalf("backup mixes two batches: %v", z)
					}
				}
				b.Close()
			}
		}
	}
}

// TestDurableCheckpointBoundsDisk: under a steady overwrite workload the
// directory stays within a small multiple of the live data (checkpoints
// remove the log they cover), and the log is replayed from the checkpoint.
func TestDurableCheckpointBoundsDisk(t *testing.T) {
	ctx := context.Background()
	for _, te := range testEngines {
		dir := t.TempDir()
		e := openDurableEngine(t, te, dir, false, &durableOptions{segmentSize: 64 << 10, ckptMin: 256 << 10})
		val := string(make([]byte, 1000))
		live := int64(0)
		maxRatio := 0.0
		for i := range 20000 {
			k := "key" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%20))
			e.Put(ctx, k, val)
			if i == 520 {
				live = int64(520 * (len(val) + 5))
			}
			if i > 1000 && i%500 == 0 {
				// Between checkpoints (one in flight adds its new file
				// and the log written meanwhile, which depends on speed).
				d := durableOf(e)
				d.ckptMu.Lock()
				r := float64(dirSize(t, dir)) / float64(live)
				d.ckptMu.Unlock()
				maxRatio = max(maxRatio, r)
			}
		}
		e.Close()
		// live data ~0.5 MB; the trigger is max(256 KiB, checkpoint/2):
		// between checkpoints log + checkpoint <= 1.5x live, plus what the
		// writer added while the last checkpoint was written.
		if maxRatio > 4 {
			t.Fatalf("%s: directory reached %.2fx the live data", te.name, maxRatio)
		}
		t.Logf("%s: directory at most %.2fx the live data", te.name, maxRatio)
	}
}

func dirSize(t testing.TB, dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, de := range ents {
		if fi, err := de.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestDurableReadOnlyAfterFailure: a failed write, a failed fsync and a full
// disk each put the engine read-only: the failing write, every later one and
// HealthCheck return ErrReadOnly wrapping the cause, reads keep working, and reopening
// finds every acknowledged write.
func TestDurableReadOnlyAfterFailure(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		set   func(fs *faultFS)
		cause error
	}{
		{"write", func(fs *faultFS) { fs.failWrite = 3 }, errInjected},
		{"fsync", func(fs *faultFS) { fs.failSync = 3 }, errInjected},
		{"enospc", func(fs *faultFS) { fs.budget = 2000 }, syscall.ENOSPC},
	}
	for _, te := range testEngines {
		for _, c := range cases {
			dir := t.TempDir()
			fs := newFaultFS(1)
			e := openDurableEngine(t, te, dir, true, &durableOptions{fs: fs, ckptMin: -1})
			mustIs(t, te.name+" "+c.name+" HealthCheck before the failure", e.HealthCheck(ctx), nil)
			c.set(fs)
			acked := map[string]string{}
			var failed error
			for i := 0; i < 100 && failed == nil; i++ {
				k, v := "k"+string(rune('a'+i%26)), string(make([]byte, 100+i))
				if failed = e.Put(ctx, k, v); failed == nil {
					acked[k] = v
				}
			}
			if !errors.Is(failed, ErrReadOnly) || !errors.Is(failed, c.cause) {
				t.Fatalf("%s %s: failing write returned %v, want ErrReadOnly wrapping %v", te.name, c.name, failed, c.cause)
			}
			if err := e.Put(ctx, "later", "x"); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("%s %s: write after the failure: %v", te.name, c.name, err)
			}
			if err := e.BatchDelete(ctx, []string{"ka"}); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("%s %s: batch delete after the failure: %v", te.name, c.name, err)
			}
			if err := e.HealthCheck(ctx); !errors.Is(err, ErrReadOnly) || !errors.Is(err, c.cause) {
				t.Fatalf("%s %s: HealthCheck after the failure returned %v, want ErrReadOnly wrapping %v", te.name, c.name, err, c.cause)
			}
			for k, v := range acked {
				if got, err := e.Get(ctx, k); err != nil || got != v {
					t.Fatalf("%s %s: read after the failure: %v", te.name, c.name, err)
				}
			}
			fs.powerLoss()
			e.Close()
			e = openDurableEngine(t, te, dir, true, nil)
			for k, v := range acked {
				if got, err := e.Get(ctx, k); err != nil || got != v {
					t.Fatalf("%s %s: acknowledged %s lost: %v", te.name, c.name, k, err)
				}
			}
			e.Close()
		}
	}
}

// TestDurableTornSegmentCreation: a crash while the newest segment was being
// created leaves it shorter than a header, with an unwritten (zero) header,
// with its preallocated length but zeros (a size made durable before the
// data), or with garbage where the header was; recovery removes it and keeps
// everything before it.
func TestDurableTornSegmentCreation(t *testing.T) {
	garbage := make([]byte, 64)
	for i := range garbage {
		garbage[i] = byte(i*37 + 11)
	}
	for _, te := range testEngines {
		for _, content := range [][]byte{nil, make([]byte, 10), make([]byte, fileHeaderSize),
			make([]byte, fileHeaderSize+4096), make([]byte, 1<<20), garbage} {
			dir := t.TempDir()
			e := openDurableEngine(t, te, dir, true, nil)
			want := runOps(t, e, 31, "k/", 30, nil)
			e.Close()
			next := durableNext(t, dir)
			os.WriteFile(filepath.Join(dir, segmentName(next)), content, 0o640)
			e = openDurableEngine(t, te, dir, true, nil)
			checkState(t, e, "k/", want, "after a torn segment creation")
			e.Close()
		}
	}
}

// TestDurablePreallocatedSegment: the log keeps zeros preallocated after its
// last record; a copy of the directory taken while the engine is open (what
// a crash leaves) opens with every acknowledged write, and check does not
// call the zeros a torn tail; Close trims the segment to its last record.
func TestDurablePreallocatedSegment(t *testing.T) {
	for _, te := range testEngines {
		t.Run(te.name, func(t *testing.T) {
			dir, crashed := t.TempDir(), t.TempDir()
			e := openDurableEngine(t, te, dir, true, &durableOptions{ckptMin: -1, prealloc: 4096})
			want := runOps(t, e, 41, "p/", 200, nil)
			seg := filepath.Join(dir, segmentName(1))
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)%4096 != 0 || b[len(b)-1] != 0 {
				t.Fatalf("open segment of %d bytes: want a multiple of 4096 ending in zeros", len(b))
			}
			if err := os.WriteFile(filepath.Join(crashed, segmentName(1)), b, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			closed, _ := os.ReadFile(seg)
			if st, err := recoverDir(osFS{}, dir, false, func([]walOp) error { return nil },
				func(uint64, []walOp) error { return nil }); err != nil || st.tornAt >= 0 || len(closed) >= len(b) {
				t.Fatalf("closed segment of %d bytes (open: %d): cut at %d, %v; want it trimmed to its last record",
					len(closed), len(b), st.tornAt, err)
			}
			r, err := CheckDir(crashed)
			if err != nil || r.TornTail != "" || r.Keys != uint64(len(want)) {
				t.Fatalf("check of the crashed copy: %+v, %v", r, err)
			}
			e = openDurableEngine(t, te, crashed, true, nil)
			checkState(t, e, "p/", want, "after a crash with a preallocated tail")
			runOps(t, e, 42, "q/", 20, nil) // the next segment starts after the cut
			e.Close()
			e = openDurableEngine(t, te, crashed, true, nil)
			checkState(t, e, "p/", want, "after a second reopen")
			e.Close()
		})
	}
}

// TestDurableLargeCheckpoint: a checkpoint of many chunks, written by each
// engine, opens whole in every engine.
func TestDurableLargeCheckpoint(t *testing.T) {
	ctx := context.Background()
	for _, writer := range testEngines {
		dir := t.TempDir()
		e := openDurableEngine(t, writer, dir, false, &durableOptions{ckptMin: -1})
		want := map[string]string{}
		for i := range 4000 {
			k := fmt.Sprintf("big/%05d", i)
			want[k] = fmt.Sprintf("%0900d", i*7)
			if err := e.Put(ctx, k, want[k]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		e.Close()
		for _, reader := range testEngines {
			r := openDurableEngine(t, reader, dir, false, nil)
			checkState(t, r, "big/", want, writer.name+" -> "+reader.name)
			r.Close()
		}
	}
}

// durableNext returns the seq the next record of the closed database in dir
// would get.
func durableNext(t *testing.T, dir string) uint64 {
	st, err := recoverDir(osFS{}, dir, false, func([]walOp) error { return nil }, func(uint64, []walOp) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return st.next
}

// TestDurableCloseError: Close returns the log's failure to make it durable
// (a failed final fdatasync, or the sticky failure of an earlier write), a
// second Close returns nil, and the engine is closed either way.
func TestDurableCloseError(t *testing.T) {
	ctx := context.Background()
	for _, te := range testEngines {
		for _, c := range []string{"final fsync", "earlier write"} {
			dir := t.TempDir()
			fs := newFaultFS(2)
			e := openDurableEngine(t, te, dir, false, &durableOptions{fs: fs, ckptMin: -1, syncInterval: time.Hour})
			want := runOps(t, e, 5, "k/", 50, nil)
			if c == "final fsync" {
				fs.mu.Lock()
				fs.failSync = 1
				fs.mu.Unlock()
			} else {
				fs.mu.Lock()
				fs.failWrite = 1
				fs.mu.Unlock()
				if err := e.Put(ctx, "x", "y"); !errors.Is(err, ErrReadOnly) {
					t.Fatalf("%s: failing put returned %v", te.name, err)
				}
			}
			err := e.Close()
			if !errors.Is(err, errInjected) {
				t.Fatalf("%s %s: Close returned %v, want the injected error", te.name, c, err)
			}
			mustIs(t, te.name+" "+c+" second Close", e.Close(), nil)
			mustIs(t, te.name+" "+c+" Get after Close", getErr(e, "k/1"), ErrClosed)
			// Every write reached the kernel before Close (SyncWrites
			// false acknowledges there): the process lives on, so a
			// reopen finds them.
			e = openDurableEngine(t, te, dir, true, nil)
			checkState(t, e, "k/", want, te.name+" "+c+": after reopen")
			mustIs(t, te.name+" "+c+" Close", e.Close(), nil)
		}
	}
}

func getErr(e Engine, key string) error {
	_, err := e.Get(context.Background(), key)
	return err
}

// TestDurableBackpressure: writers faster than the checkpointer park once the
// log since the last completed checkpoint passes its limit, so the log and
// the directory stay bounded. First the checkpointer is held inside its
// snapshot: every writer must park with the log within the limit plus two
// records per writer, and stay parked. Then it is released and the writers
// overwrite in a loop as fast as they can while a sampler watches the log
// and the directory; at the end every writer's last values survive a reopen.
func TestDurableBackpressure(t *testing.T) {
	ctx := context.Background()
	const writers, keys = 8, 25
	val := string(make([]byte, 1000))
	live := int64(writers * keys * (len(val) + 8))
	for _, te := range testEngines {
		dir := t.TempDir()
		e := openDurableEngine(t, te, dir, false, &durableOptions{segmentSize: 64 << 10, ckptMin: 128 << 10})
		d := durableOf(e)
		limit := d.logMax.Load()
		// Past the limit: per writer, one record that passed the check
		// before another crossed the limit, and the parked one (appended
		// before commit parks; the background flush writes it).
		slop := int64(2 * writers * (len(val) + 64))
		release, entered := make(chan struct{}), make(chan struct{}, 1)
		var once sync.Once
		releaseCkpt := func() { once.Do(func() { close(release) }) }
		d.ckptMu.Lock()
		snap := d.snap
		d.snap = func(emit func(key, value string, expiry int64) error) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			return snap(emit)
		}
		d.ckptMu.Unlock()

		var acked [writers]atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		defer func() { // a failure below stops the writers before the cleanup
			stop.Store(true)
			releaseCkpt()
			wg.Wait()
			e.Close()
		}()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int64(0); !stop.Load(); i++ {
					k := fmt.Sprintf("w%d/%02d", w, i%keys)
					if err := e.Put(ctx, k, fmt.Sprintf("%d:", i)+val); err != nil {
						errs <- err
						return
					}
					acked[w].Store(i + 1)
				}
			}()
		}
		count := func() (n int64) {
			for w := range writers {
				n += acked[w].Load()
			}
			return n
		}
		deadline := time.Now().Add(30 * time.Second)
		for d.parked.Load() < writers {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d writers parked after 30 s with the checkpoint held (log %d bytes, limit %d)",
					te.name, d.parked.Load(), writers, d.log.totalWritten.Load()-d.doneBase.Load(), limit)
			}
			time.Sleep(time.Millisecond)
		}
		<-entered
		before := count()
		time.Sleep(50 * time.Millisecond)
		if n := count(); n != before {
			t.Fatalf("%s: %d writes acknowledged while every writer was parked", te.name, n-before)
		}
		if lb := d.log.totalWritten.Load() - d.doneBase.Load(); lb > limit+slop {
			t.Fatalf("%s: log reached %d bytes with the checkpoint held, limit %d", te.name, lb, limit)
		}

		// Released: a fast overwrite loop against the real checkpointer.
		releaseCkpt()
		var maxLog, maxDir int64
		target := before + 20000
		for count() < target && len(errs) == 0 {
			maxLog = max(maxLog, d.log.totalWritten.Load()-d.doneBase.Load())
			maxDir = max(maxDir, dirSize(t, dir))
			time.Sleep(200 * time.Microsecond)
		}
		stop.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: writer: %v", te.name, err)
		}
		if maxLog > limit+slop {
			t.Fatalf("%s: log since the last checkpoint reached %d bytes, limit %d", te.name, maxLog, limit)
		}
		t.Logf("%s: %d writes, %d stalls, %d checkpoints; log at most %d bytes (limit %d), directory at most %.2fx the live data",
			te.name, count(), d.stalls.Load(), d.ckpts.Load(), maxLog, limit, float64(maxDir)/float64(live))
		// Two checkpoint files (old and new) and the log: 2x live + limit.
		if bound := 2*live + limit + slop + 64<<10; maxDir > 2*bound {
			t.Fatalf("%s: directory reached %d bytes, live %d", te.name, maxDir, live)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e = openDurableEngine(t, te, dir, false, nil)
		for w := range writers {
			n := acked[w].Load()
			for i := max(n-keys, 0); i < n; i++ {
				k, want := fmt.Sprintf("w%d/%02d", w, i%keys), fmt.Sprintf("%d:", i)
				if got, err := e.Get(ctx, k); err != nil || got[:len(want)] != want {
					t.Fatalf("%s: %s after reopen: %.12q, %v; want %s...", te.name, k, got, err, want)
				}
			}
		}
		e.Close()
	}
}

// TestDurableCheckpointNothingNew: a checkpoint with nothing logged since the
// last one (a trigger left over from the rotation of the last, or writers
// parked by backpressure asking again) neither starts the current, empty
// segment again (a truncation of a live file) nor rewrites the checkpoint
// (a rename over it): nothing is written. After one write it checkpoints.
func TestDurableCheckpointNothingNew(t *testing.T) {
	for _, te := range testEngines {
		dir := t.TempDir()
		fs := newFaultFS(1)
		e := openDurableEngine(t, te, dir, true, &durableOptions{fs: fs, segmentSize: 4 << 10, ckptMin: -1})
		want := runOps(t, e, 5, "k/", 100, nil)
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		ckpts, segs, _, _ := scanDir(fs, dir)
		ckpt := filepath.Join(dir, checkpointName(ckpts[0]))
		before, _ := os.Stat(ckpt)
		writes := fs.writes
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		after, err := os.Stat(ckpt)
		ckpts2, segs2, _, _ := scanDir(fs, dir)
		if err != nil || !os.SameFile(before, after) || fs.writes != writes || !slices.Equal(ckpts, ckpts2) || !slices.Equal(segs, segs2) {
			t.Fatalf("%s: a checkpoint with nothing new wrote %d times (checkpoints %v -> %v, segments %v -> %v, %v)",
				te.name, fs.writes-writes, ckpts, ckpts2, segs, segs2, err)
		}
		want = runOps(t, e, 6, "k/", 1, want)
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if ckpts2, _, _, _ = scanDir(fs, dir); len(ckpts2) != 1 || ckpts2[0] != ckpts[0]+1 {
			t.Fatalf("%s: after one write, checkpoints %v, want one at %d", te.name, ckpts2, ckpts[0]+1)
		}
		e.Close()
		e = openDurableEngine(t, te, dir, true, nil)
		checkState(t, e, "k/", want, te.name+": reopened")
		e.Close()
	}
}

// TestForwardCopy: the mapped log's copy (wal_log.go) copies like copy for
// every length and offset, and stops at the shorter slice.
func TestForwardCopy(t *testing.T) {
	src := make([]byte, 300)
	for i := range src {
		src[i] = byte(i*7 + 1)
	}
	for n := range 140 {
		for off := range 9 {
			dst := make([]byte, n+off+3)
			want := make([]byte, len(dst))
			got := forwardCopy(dst[off:off+n], src[off:])
			copy(want[off:off+n], src[off:])
			if got != n || !slices.Equal(dst, want) {
				t.Fatalf("n %d off %d: copied %d, %v want %v", n, off, got, dst, want)
			}
		}
	}
	if got := forwardCopy(make([]byte, 10), src[:4]); got != 4 {
		t.Fatalf("shorter source: copied %d, want 4", got)
	}
}
