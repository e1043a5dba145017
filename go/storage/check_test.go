package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDir: a healthy database checks clean and counts its keys; an open
// one is ErrLocked; a flipped byte is ErrCorrupt naming the file; a torn tail
// is reported without an error.
func TestCheckDir(t *testing.T) {
	for _, te := range testEngines {
		dir := t.TempDir()
		e := openDurableEngine(t, te, dir, true, &durableOptions{segmentSize: 2 << 10, ckptMin: -1})
		m := runOps(t, e, 21, "k/", 50, nil)
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		m = runOps(t, e, 22, "k/", 50, m)
		if _, err := CheckDir(dir); !errors.Is(err, ErrLocked) {
			t.Fatalf("%s: check of an open database: %v", te.name, err)
		}
		e.Close()
		r, err := CheckDir(dir)
		if err != nil {
			t.Fatalf("%s: check: %v\n%s", te.name, err, r)
		}
		if r.Keys != uint64(len(m)) || r.Checkpoint == "" || r.Records != 50 || r.TornTail != "" {
			t.Fatalf("%s: report %+v, want %d keys, 50 records", te.name, r, len(m))
		}
		if !strings.Contains(r.String(), "50 records") {
			t.Fatalf("report text: %s", r)
		}
		// A torn tail: reported, not an error.
		seg := filepath.Join(dir, r.Segments[len(r.Segments)-1])
		b, _ := os.ReadFile(seg)
		os.WriteFile(seg, append(b, 1, 2, 3), 0o640)
		if r, err := CheckDir(dir); err != nil || r.TornTail == "" {
			t.Fatalf("%s: torn tail: %v %+v", te.name, err, r)
		}
		// A flipped byte in the checkpoint.
		ck := filepath.Join(dir, r.Checkpoint)
		b, _ = os.ReadFile(ck)
		b[len(b)/2] ^= 0x10
		os.WriteFile(ck, b, 0o640)
		if _, err := CheckDir(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), r.Checkpoint) {
			t.Fatalf("%s: flipped checkpoint byte: %v", te.name, err)
		}
		if _, err := CheckDir(filepath.Join(dir, "missing")); err == nil {
			t.Fatalf("check of a missing directory succeeded")
		}
	}
}
