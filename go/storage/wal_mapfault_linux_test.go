package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// A store into a mapped page the kernel cannot back (here: the file was
// truncated under the mapping, which faults as an I/O error would) is an
// error, not a crash of the process.
func TestWALMappedStoreFault(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(2 * pageSize)); err != nil {
		t.Fatal(err)
	}
	m, err := mmapShared(f, 0, int64(2*pageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer munmap(m)
	if n, err := copyMapped(m, []byte("record")); err != nil || n != 6 {
		t.Fatalf("store into a backed page: n=%d err=%v", n, err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	n, err := copyMapped(m[pageSize:], []byte("record"))
	if err == nil {
		t.Fatalf("store into an unbacked page: no error (n=%d)", n)
	}
	t.Logf("as expected: %v", err)
}
