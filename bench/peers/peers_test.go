package peers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mantisdb/mantisdb/go/benchmark"
)

// TestPeersPassCheckStore runs the harness's correctness check on every peer
// adapter: writes, overwrites, deletes, misses, concurrent use, and scans for
// the ordered one; the caches may miss but never return a wrong value.
func TestPeersPassCheckStore(t *testing.T) {
	regs := Registrations()
	if len(regs) != 7 {
		t.Fatalf("%d peers, want xsync, btree, otter, ristretto, pebble, badger and bbolt", len(regs))
	}
	for _, r := range regs {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Peer {
				t.Error("not marked as a peer")
			}
			if r.New != nil {
				if err := benchmark.CheckStore(r); err != nil {
					t.Fatal(err)
				}
			}
			if r.Durable != nil {
				// The same checks on a data directory, then a reopen
				// that must find exactly what was written.
				if err := benchmark.CheckDurable(r); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestPersistentPeersInTheDurableSuites runs every durable suite on pebble,
// badger and bbolt at a tiny size: each must run, pass its checks and keep
// its data across the reopens (figures, not "not durable").
func TestPersistentPeersInTheDurableSuites(t *testing.T) {
	dir := t.TempDir()
	code := benchmark.Main([]string{"--benchmark-only", "--engines=pebble,badger,bbolt", "--suites=durable",
		"--duration=20ms", "--keys=1000", "--recovery-mib=2", "--progress=off", "--data-dir", t.TempDir(),
		"--out", dir}, Registrations()...)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK      bool
		Results []struct {
			Suite, Engine string
			Ops           uint64
			NotDurable    string `json:"not_durable"`
			ReopenNs      int64  `json:"reopen_ns"`
			LiveBytes     int64  `json:"live_bytes"`
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range rep.Results {
		per[r.Engine]++
		if r.NotDurable != "" || r.Ops == 0 || r.ReopenNs <= 0 || r.LiveBytes <= 0 {
			t.Errorf("%s/%s: %+v", r.Suite, r.Engine, r)
		}
	}
	for _, e := range []string{"pebble", "badger", "bbolt"} {
		if per[e] != 7 {
			t.Errorf("%s ran %d durable suites, want 7", e, per[e])
		}
	}
	if !rep.OK {
		t.Error("results.json says the run failed")
	}
}

// TestPeersInTheCommand runs the command with the peers registered at a tiny
// size on the suites that fit them, and checks that each ran and passed.
func TestPeersInTheCommand(t *testing.T) {
	dir := t.TempDir()
	code := benchmark.Main([]string{"--benchmark-only", "--engines=purego,xsync,btree,otter,ristretto",
		"--suites=ycsb-b,ycsb-c,zipf-reads,ycsb-e,prefix-scan,ycsb-a", "--duration=20ms", "--keys=2000",
		"--progress=off", "--out", dir}, Registrations()...)
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK      bool
		Results []struct {
			Suite, Engine string
			Ops           uint64
			Reads, Hits   uint64
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	ran := map[string]bool{}
	for _, r := range rep.Results {
		ran[r.Suite+"/"+r.Engine] = true
		if r.Ops == 0 {
			t.Errorf("%s/%s: no operations", r.Suite, r.Engine)
		}
		if (r.Engine == "otter" || r.Engine == "ristretto") && r.Suite == "ycsb-c" && r.Hits == 0 {
			t.Errorf("%s on ycsb-c: no hit in %d reads", r.Engine, r.Reads)
		}
	}
	for _, want := range []string{"ycsb-b/otter", "ycsb-c/ristretto", "zipf-reads/otter", "ycsb-e/btree",
		"prefix-scan/btree", "ycsb-a/xsync"} {
		if !ran[want] {
			t.Errorf("%s did not run", want)
		}
	}
	for _, never := range []string{"ycsb-a/otter", "ycsb-a/ristretto", "ycsb-a/btree", "ycsb-e/xsync"} {
		if ran[never] {
			t.Errorf("%s ran: the peer does not fit the suite", never)
		}
	}
	if !rep.OK {
		t.Error("results.json says the run failed")
	}
}
