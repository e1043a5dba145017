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
	if len(regs) != 4 {
		t.Fatalf("%d peers, want xsync, btree, otter and ristretto", len(regs))
	}
	for _, r := range regs {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Peer {
				t.Error("not marked as a peer")
			}
			if err := benchmark.CheckStore(r); err != nil {
				t.Fatal(err)
			}
		})
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
