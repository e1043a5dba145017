package storage

// Simulated power loss (faultFS) at random points of random concurrent
// workloads, both engines: every write acknowledged with SyncWrites
// survives, batches and commits are whole, nothing unacknowledged and later
// overwritten comes back. Each writer owns its keys, so the recovered state
// of a writer's keys must be the model's state after a prefix of its
// operations at least as long as what was acknowledged (matchPrefix).
// Segments and the checkpoint trigger are tiny, so rotations, background
// checkpoints and segment removal all race with the power loss.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWALPowerLoss(t *testing.T) {
	rounds := 25
	if testing.Short() {
		rounds = 8
	}
	if s := os.Getenv("MANTIS_CRASH_CYCLES"); s != "" { // make crash
		n, _ := strconv.Atoi(s)
		rounds = max(rounds, n/4)
	}
	for _, te := range testEngines {
		t.Run(te.name, func(t *testing.T) {
			const writers, nkeys = 4, 40
			dir := t.TempDir()
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			base := make([]map[string]string, writers)
			for g := range base {
				base[g] = map[string]string{}
			}
			var ops [][]wOp
			acked := make([]int, writers)
			for round := 0; round <= rounds; round++ {
				fs := newFaultFS(rng.Uint64())
				fs.mapping = round%2 == 0 // the log's mapped stores, or its writes
				e := te.new(StorageConfig{SyncWrites: true}).(durableTestEngine)
				e.setDurableOptions(&durableOptions{fs: fs, segmentSize: 4 << 10, ckptMin: 12 << 10})
				if err := e.Init(dir); err != nil {
					t.Fatalf("round %d: reopen after power loss: %v", round, err)
				}
				for g := 0; g < writers && ops != nil; g++ {
					got := readPrefix(t, e, fmt.Sprintf("w%d/", g))
					if p := matchPrefix(base[g], ops[g], acked[g], got); p < 0 {
						t.Fatalf("round %d writer %d: recovered state is no prefix of its %d ops with at least the %d acknowledged: %s",
							round, g, len(ops[g]), acked[g], diff(afterOps(base[g], ops[g][:acked[g]]), got)+keyHistory(ops[g], afterOps(base[g], ops[g][:acked[g]]), got))
					}
					base[g] = got
				}
				if round == rounds {
					e.Close()
					break
				}
				ops = make([][]wOp, writers)
				var wg sync.WaitGroup
				for g := range writers {
					wg.Add(1)
					seed := rng.Uint64()
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(seed, uint64(g)))
						acked[g] = 0
						for i := 0; ; i++ {
							op := genOp(r, fmt.Sprintf("w%d/", g), nkeys, i)
							ops[g] = append(ops[g], op)
							if err := op.do(ctx, e); err != nil {
								if !errors.Is(err, ErrReadOnly) && !errors.Is(err, errInjected) {
									t.Errorf("writer %d op %d: %v", g, i, err)
								}
								return
							}
							acked[g] = i + 1
						}
					}()
				}
				time.Sleep(time.Duration(2+rng.IntN(25)) * time.Millisecond)
				fs.powerLoss()
				wg.Wait()
				e.Close()
				if testing.Verbose() {
					t.Logf("round %d: acknowledged %v, %d writes, %d syncs", round, acked, fs.writes, fs.syncs)
				}
			}
		})
	}
}

// TestWALPowerLossCheckpointRename: the power fails right after a
// checkpoint's rename, before the directory sync that makes it durable. The
// second checkpoint has nothing new to hold, so its rotation starts the same
// segment again and its rename replaces the checkpoint of the same seq: a
// rename over an existing file is atomic (POSIX), so after the power loss
// the old checkpoint is still there, with the segments after it. This is
// the point where TestWALPowerLoss once failed with "log starts at record
// N, records from 1 are missing" (the fault layer lost the replaced file).
// Also the first checkpoint's rename (nothing replaced: the log it would
// make obsolete is still there).
func TestWALPowerLossCheckpointRename(t *testing.T) {
	for _, te := range testEngines {
		for _, crashAt := range []int{1, 2} { // which checkpoint's rename
			dir := t.TempDir()
			fs := newFaultFS(uint64(crashAt))
			renames := 0
			fs.crashAfter = func(op, name string) bool {
				if op == "rename" && strings.HasSuffix(name, ".ckpt") {
					renames++
					return renames == crashAt
				}
				return false
			}
			o := &durableOptions{fs: fs, segmentSize: 4 << 10, ckptMin: -1}
			e := openDurableEngine(t, te, dir, true, o)
			want := runOps(t, e, 7, "k/", 200, nil)
			for i := 1; i <= crashAt; i++ {
				err := e.Checkpoint()
				if (i == crashAt) != (err != nil) {
					t.Fatalf("%s crash at %d: checkpoint %d returned %v", te.name, crashAt, i, err)
				}
			}
			e.Close()
			e = openDurableEngine(t, te, dir, true, nil)
			checkState(t, e, "k/", want, fmt.Sprintf("%s, power loss after checkpoint %d's rename", te.name, crashAt))
			e.Close()
		}
	}
}
