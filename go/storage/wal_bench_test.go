package storage

// Durability benchmarks (make bench-wal), every figure a ratio against an
// anchor measured in the same run:
//
//   - BenchmarkWALSyncPut: Puts with SyncWrites by 1, 4 and 16 writers,
//     against the disk's single-writer rate of "write 100 bytes, fdatasync"
//     on a file in the same directory (the floor a log without group commit
//     meets). Reported: ops/s and x-fdatasync (targets: >= 0.9 with 1
//     writer, >= 10 with 16).
//   - BenchmarkWALUnsyncedPut: the same with SyncWrites false.
//   - BenchmarkWALReplay: reopening a database of a ~64 MiB log of 1 KiB
//     values (no checkpoint): MB/s of log replayed (target >= 500).
//   - BenchmarkWALInMemoryPut: Put in memory, for the "Init("") unchanged"
//     comparison against the tree before the log (docs/performance/wal.md).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fdatasyncRate measures n rounds of write(100 bytes) + fdatasync by one
// writer on a new file in dir, per second.
func fdatasyncRate(b *testing.B, dir string, n int) float64 {
	f, err := os.Create(filepath.Join(dir, "anchor"))
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, 100)
	start := time.Now()
	for range n {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func benchDurablePut(b *testing.B, syncWrites bool) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			for _, w := range []int{1, 4, 16} {
				b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
					dir := b.TempDir()
					e := te.new(StorageConfig{SyncWrites: syncWrites}).(durableTestEngine)
					if err := e.Init(dir); err != nil {
						b.Fatal(err)
					}
					defer e.Close()
					val := string(make([]byte, 100))
					// Rounds alternate the anchor (100 fdatasyncs) and a
					// slice of the engine's ops, so that both see the same
					// disk (it is shared and its rate drifts).
					const rounds = 8
					var anchorN int
					var anchorT, engT time.Duration
					done := 0
					b.ResetTimer()
					for r := range rounds {
						t0 := time.Now()
						fdatasyncRate(b, dir, 100)
						anchorT += time.Since(t0)
						anchorN += 100
						n := (b.N*(r+1))/rounds - done
						var wg sync.WaitGroup
						t0 = time.Now()
						for g := range w {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for i := g; i < n; i += w {
									k := "key" + strconv.Itoa((done+i)%100000)
									if err := e.Put(context.Background(), k, val); err != nil {
										b.Error(err)
										return
									}
								}
							}()
						}
						wg.Wait()
						engT += time.Since(t0)
						done += n
					}
					b.StopTimer()
					rate := float64(done) / engT.Seconds()
					anchor := float64(anchorN) / anchorT.Seconds()
					b.ReportMetric(rate, "ops/s")
					b.ReportMetric(anchor, "fdatasync/s")
					b.ReportMetric(rate/anchor, "x-fdatasync")
					if syncWrites {
						l := durableOf(e).log
						b.ReportMetric(float64(done)/float64(l.syncs.Load()), "writes/fdatasync")
						b.ReportMetric(float64(l.syncNanos.Load())/float64(l.syncs.Load())/1e3, "us/fdatasync")
						b.ReportMetric(anchorT.Seconds()*1e6/float64(anchorN), "us/anchor")
					}
				})
			}
		})
	}
}

func BenchmarkWALSyncPut(b *testing.B)     { benchDurablePut(b, true) }
func BenchmarkWALUnsyncedPut(b *testing.B) { benchDurablePut(b, false) }

func BenchmarkWALReplay(b *testing.B) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			dir := b.TempDir()
			e := te.new(StorageConfig{}).(durableTestEngine)
			e.setDurableOptions(&durableOptions{ckptMin: -1})
			if err := e.Init(dir); err != nil {
				b.Fatal(err)
			}
			val := string(make([]byte, 1024))
			batch := map[string]string{}
			for i := range 64 << 10 { // 64 Ki puts of 1 KiB, in batches of 16
				batch[fmt.Sprintf("key%08d", i%(32<<10))] = val
				if len(batch) == 16 {
					if err := e.BatchPut(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					clear(batch)
				}
			}
			e.Close()
			var logBytes int64
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			for range b.N {
				e := te.new(StorageConfig{}).(durableTestEngine)
				e.setDurableOptions(&durableOptions{ckptMin: -1})
				if err := e.Init(dir); err != nil {
					b.Fatal(err)
				}
				logBytes += durableOf(e).rec.logBytes
				b.StopTimer()
				e.Close()
				b.StartTimer()
			}
			el := time.Since(start)
			cpu := cpuTime() - cpu0 // the machine is shared: CPU time too
			b.ReportMetric(float64(logBytes)/1e6/el.Seconds(), "MB/s")
			b.ReportMetric(float64(logBytes)/1e6/cpu.Seconds(), "MB/cpu-s")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkWALInMemoryPut(b *testing.B) {
	for _, te := range testEngines {
		b.Run(te.name, func(b *testing.B) {
			e := te.new(StorageConfig{})
			if err := e.Init(""); err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			val := string(make([]byte, 100))
			keys := make([]string, 1<<16)
			for i := range keys {
				keys[i] = "key" + strconv.Itoa(i)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := e.Put(context.Background(), keys[i&(1<<16-1)], val); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
