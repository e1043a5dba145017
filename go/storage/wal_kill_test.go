package storage

// The kill -9 loop, both engines: a child process (this test binary, running
// TestWALKillChild) opens the database and runs four writers of generated
// operations (puts, TTL puts, deletes, batches, transactions), each
// appending the number of every acknowledged operation to its own file; the
// parent kills it with SIGKILL at a random moment, reopens the database and
// checks, writer by writer, that the state is the model's after a prefix of
// its operations no shorter than what was acknowledged (so every
// acknowledged write survived and every batch is whole). Cycles alternate
// SyncWrites true and false: both promise survival of a process kill.
// 100 cycles per engine (20 with -short); MANTIS_CRASH_CYCLES overrides
// (make crash runs 1,000).

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

const killWriters, killKeys = 4, 30

func TestWALKillChild(t *testing.T) {
	dir := os.Getenv("MANTIS_WAL_CHILD")
	if dir == "" {
		t.Skip("the child of TestWALKill")
	}
	name := os.Getenv("MANTIS_WAL_ENGINE")
	seed, _ := strconv.ParseUint(os.Getenv("MANTIS_WAL_SEED"), 10, 64)
	syncWrites := os.Getenv("MANTIS_WAL_SYNC") == "1"
	var te testEngine
	for _, x := range testEngines {
		if x.name == name {
			te = x
		}
	}
	e := te.new(StorageConfig{SyncWrites: syncWrites}).(durableTestEngine)
	e.setDurableOptions(&durableOptions{segmentSize: 16 << 10, ckptMin: 48 << 10})
	if err := e.Init(dir); err != nil {
		fmt.Fprintln(os.Stderr, "child init:", err)
		os.Exit(3)
	}
	os.WriteFile(filepath.Join(dir, "acks-ready"), nil, 0o640)
	var wg sync.WaitGroup
	for g := range killWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("acks-%d", g)))
			if err != nil {
				os.Exit(4)
			}
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := 0; ; i++ {
				op := genOp(r, fmt.Sprintf("w%d/", g), killKeys, i)
				if err := op.do(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, "child op:", err)
					os.Exit(5)
				}
				fmt.Fprintf(f, "%d\n", i+1) // one write(2): in the kernel, survives the kill
			}
		}()
	}
	wg.Wait()
}

func TestWALKill(t *testing.T) {
	cycles := 100
	if testing.Short() {
		cycles = 20
	}
	if s := os.Getenv("MANTIS_CRASH_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	for _, te := range testEngines {
		t.Run(te.name, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
			base := make([]map[string]string, killWriters)
			for g := range base {
				base[g] = map[string]string{}
			}
			total := 0
			for cycle := range cycles {
				seed := rng.Uint64()
				for _, n := range []string{"acks-ready", "acks-0", "acks-1", "acks-2", "acks-3"} {
					os.Remove(filepath.Join(dir, n))
				}
				cmd := exec.Command(os.Args[0], "-test.run=^TestWALKillChild$")
				cmd.Env = append(os.Environ(), "MANTIS_WAL_CHILD="+dir, "MANTIS_WAL_ENGINE="+te.name,
					fmt.Sprintf("MANTIS_WAL_SEED=%d", seed), fmt.Sprintf("MANTIS_WAL_SYNC=%d", cycle%2))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(20 * time.Second)
				for {
					if _, err := os.Stat(filepath.Join(dir, "acks-ready")); err == nil {
						break
					}
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("cycle %d: the child did not open the database: %s", cycle, stderr.String())
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
				cmd.Process.Kill() // SIGKILL
				cmd.Wait()
				if bytes.Contains(stderr.Bytes(), []byte("child ")) {
					t.Fatalf("cycle %d: the child failed: %s", cycle, stderr.String())
				}
				e := te.new(StorageConfig{}).(durableTestEngine)
				if err := e.Init(dir); err != nil {
					t.Fatalf("cycle %d: reopen after kill -9: %v", cycle, err)
				}
				for g := range killWriters {
					acked := readAcks(t, filepath.Join(dir, fmt.Sprintf("acks-%d", g)))
					r := rand.New(rand.NewPCG(seed, uint64(g)))
					ops := make([]wOp, acked+1) // at most one more in flight
					for i := range ops {
						ops[i] = genOp(r, fmt.Sprintf("w%d/", g), killKeys, i)
					}
					got := readPrefix(t, e, fmt.Sprintf("w%d/", g))
					if p := matchPrefix(base[g], ops, acked, got); p < 0 {
						e.Close()
						t.Fatalf("cycle %d (sync %v) writer %d: state is no prefix of its ops with the %d acknowledged: %s%s",
							cycle, cycle%2 == 1, g, acked, diff(afterOps(base[g], ops[:acked]), got),
							keyHistory(ops, afterOps(base[g], ops[:acked]), got))
					}
					base[g] = got
					total += acked
				}
				e.Close()
			}
			t.Logf("%d cycles, %d acknowledged operations checked", cycles, total)
		})
	}
}

// readAcks returns the last acknowledged count in an ack file (0 if none).
func readAcks(t *testing.T, name string) int {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	n, _ := strconv.Atoi(string(lines[len(lines)-1]))
	return n
}
