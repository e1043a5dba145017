package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	e := storage.NewStorageEngine(storage.StorageConfig{SyncWrites: true})
	if err := e.Init(dir); err != nil {
		t.Fatal(err)
	}
	e.Put(context.Background(), "a", "1")
	e.Close()
	var out, errb bytes.Buffer
	if rc := check([]string{"--data-dir", dir}, &out, &errb); rc != 0 || !strings.Contains(out.String(), "1 keys") {
		t.Fatalf("healthy: rc %d\n%s%s", rc, out.String(), errb.String())
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	b, _ := os.ReadFile(segs[0])
	b[3] ^= 1 // the header's magic
	os.WriteFile(segs[0], b, 0o640)
	out.Reset()
	errb.Reset()
	if rc := check([]string{"--data-dir", dir}, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "corrupt") {
		t.Fatalf("corrupt: rc %d\n%s%s", rc, out.String(), errb.String())
	}
	if rc := check(nil, &out, &errb); rc != 2 {
		t.Fatalf("no --data-dir: rc %d", rc)
	}
	if rc := mainIO([]string{"check", "--data-dir", filepath.Join(dir, "missing")}, &out, &errb, os.Getenv, nil); rc != 1 {
		t.Fatalf("missing directory through Main: rc %d", rc)
	}
}
