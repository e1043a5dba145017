package storage

// Corruption and truncation, both engines. A database with a checkpoint and
// several log segments is closed; then, one at a time, a byte of each file
// is flipped (every byte of the file headers, the checksum, length and seq
// fields of every frame, a stride of the rest): Init must fail with ErrCorrupt or recover the full
// state, except that a flip inside the last record of the newest segment is
// indistinguishable from a torn write and may cut that record (and only
// it). Truncating the newest segment at every offset of its last record
// recovers everything before that record. Init never crashes and never
// returns a wrong value.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// corruptFixture builds the database and returns its files' pristine
// contents, the full state, the state without the last record, and the
// newest segment's name and last frame's offset.
func corruptFixture(t *testing.T, te testEngine, dir string) (files map[string][]byte, want, wantNoLast map[string]string, newest string, lastOff int) {
	e := openDurableEngine(t, te, dir, true, &durableOptions{segmentSize: 1500, ckptMin: -1})
	m := runOps(t, e, 11, "c/", 40, nil)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r := runOps(t, e, 12, "c/", 30, maps.Clone(m))
	want = r
	// wantNoLast: replay the same ops minus the last one on the model.
	wantNoLast = runOpsModel(12, "c/", 29, maps.Clone(m))
	e.Close()
	files = map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, de := range ents {
		if de.Name() == lockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[de.Name()] = b
		if kind, _, _ := parseName(de.Name()); kind == "wal" && len(b) > fileHeaderSize && de.Name() > newest {
			newest = de.Name()
		}
	}
	b := files[newest]
	for off := fileHeaderSize; off < len(b); {
		_, _, next, ok := frameAt(b, off)
		if !ok {
			t.Fatalf("fixture: bad frame in %s at %d", newest, off)
		}
		lastOff, off = off, next
	}
	return files, want, wantNoLast, newest, lastOff
}

// runOpsModel applies the ops runOps(seed) would run, to the model only.
func runOpsModel(seed uint64, prefix string, n int, m map[string]string) map[string]string {
	return runOps(nopTB{}, nil, seed, prefix, n, m)
}

// restoreDir makes dir hold exactly files.
func restoreDir(t *testing.T, dir string, files map[string][]byte) {
	ents, _ := os.ReadDir(dir)
	for _, de := range ents {
		if de.Name() != lockFileName {
			os.Remove(filepath.Join(dir, de.Name()))
		}
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWALCorruption(t *testing.T) {
	for _, te := range testEngines {
		for _, tail := range []int{0, 1500} {
			t.Run(fmt.Sprintf("%s/zerotail=%d", te.name, tail), func(t *testing.T) {
				testWALCorruption(t, te, tail)
			})
		}
	}
}

// testWALCorruption runs the flips and truncations on the fixture, with
// tail bytes of zeros after the newest segment's last record: the
// preallocated end of a segment that was not closed (a crash).
func testWALCorruption(t *testing.T, te testEngine, tail int) {
	dir := t.TempDir()
	files, want, wantNoLast, newest, lastOff := corruptFixture(t, te, dir)
	lastEnd := len(files[newest])
	files[newest] = append(files[newest], make([]byte, tail)...)
	stride := 17
	if testing.Short() {
		stride = 61
	}
	trials, corrupt, cut := 0, 0, 0
	for name, pristine := range files {
		// Offsets to flip: headers, frame headers, a stride.
		offs := map[int]bool{}
		for o := 0; o < fileHeaderSize && o < len(pristine); o++ {
			offs[o] = true
		}
		for off := fileHeaderSize; off < len(pristine) && (name != newest || off < lastEnd); {
			// The checksum, length and seq fields of every frame.
			for _, o := range []int{off, off + 5, off + 10} {
				offs[o] = true
			}
			_, _, next, ok := frameAt(pristine, off)
			if !ok {
				break
			}
			off = next
		}
		for o := 0; o < len(pristine); o += stride {
			offs[o] = true
		}
		for o := range offs {
			b := append([]byte(nil), pristine...)
			b[o] ^= 1 << (o % 8)
			restoreDir(t, dir, files)
			os.WriteFile(filepath.Join(dir, name), b, 0o640)
			trials++
			e := te.new(StorageConfig{}).(durableTestEngine)
			err := e.Init(dir)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s offset %d flipped: Init: %v, want ErrCorrupt", name, o, err)
				}
				corrupt++
				continue
			}
			got := readPrefix(t, e, "c/")
			e.Close()
			switch {
			case maps.Equal(got, want):
			case name == newest && o >= lastOff && maps.Equal(got, wantNoLast):
				cut++
			default:
				t.Fatalf("%s offset %d flipped: recovered a wrong state: %s", name, o, diff(want, got))
			}
		}
	}
	// Truncations at every offset of the last record (torn
	// writes; with a zero tail, zeros after the torn part).
	b := files[newest]
	for size := lastOff; size <= lastEnd; size++ {
		restoreDir(t, dir, files)
		torn := append(append([]byte(nil), b[:size]...), make([]byte, len(b)-size)...)
		os.WriteFile(filepath.Join(dir, newest), torn[:size+tail], 0o640)
		e := te.new(StorageConfig{}).(durableTestEngine)
		if err := e.Init(dir); err != nil {
			t.Fatalf("%s cut at %d of %d: %v", newest, size, lastEnd, err)
		}
		w := wantNoLast
		if size == lastEnd {
			w = want
		}
		checkState(t, e, "c/", w, "truncated last record")
		e.Close()
	}
	t.Logf("%d flips: %d ErrCorrupt, %d cut the last record, the rest recovered fully; %d truncations", trials, corrupt, cut, lastEnd-lastOff+1)
}

// nopTB lets runOps run on the model alone (e == nil).
type nopTB struct{ testing.TB }

func (nopTB) Helper()               {}
func (nopTB) Fatalf(string, ...any) { panic("runOps failed on the model") }
