package benchmark

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileStore is a map that survives a clean Close: Close writes every pair to
// dir/data and fsyncs it, open reads it back. It is durable for the durable
// suites' checks (they close before they reopen), which is what this file
// tests: that the harness reports figures for a store whose data survives
// and "not durable" for one whose data does not. With corrupt, open flips a
// byte of every value it reads back.
type fileStore struct {
	syncMapStore
	path    string
	corrupt bool
}

func openFileStore(dir string, corrupt bool) (Store, error) {
	s := &fileStore{path: filepath.Join(dir, "data"), corrupt: corrupt}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	for len(b) > 0 {
		kl, n := binary.Uvarint(b)
		vl, m := binary.Uvarint(b[n:])
		b = b[n+m:]
		k, v := string(b[:kl]), []byte(b[kl:kl+vl])
		b = b[kl+vl:]
		if corrupt {
			v[len(v)-1] ^= 1
		}
		s.m.Store(k, string(v))
	}
	return s, nil
}

func (s *fileStore) BatchPut(kv map[string]string) error {
	for k, v := range kv {
		s.m.Store(k, v)
	}
	return nil
}

func (s *fileStore) Close() error {
	var b bytes.Buffer
	s.m.Range(func(k, v any) bool {
		b.Write(binary.AppendUvarint(nil, uint64(len(k.(string)))))
		b.Write(binary.AppendUvarint(nil, uint64(len(v.(string)))))
		b.WriteString(k.(string))
		b.WriteString(v.(string))
		return true
	})
	f, err := os.Create(s.path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, &b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func durableTestRegs() []Registration {
	return []Registration{
		{Name: "file", About: "test: a map saved on Close", Durable: func(dir string, _ bool) (Store, error) {
			return openFileStore(dir, false)
		}},
		{Name: "forgets", About: "test: a map that ignores its directory", Peer: true,
			Durable: func(string, bool) (Store, error) { return &syncMapStore{}, nil }},
	}
}

// TestDurableSuites runs every durable suite on a store whose data survives
// a reopen and on one whose data does not: the first gets figures, the
// second "not durable" everywhere and no figure in the durable table.
func TestDurableSuites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	args := []string{"--benchmark-only", "--suites=durable", "--engines=file,forgets", "--duration=20ms",
		"--keys=1000", "--recovery-mib=1", "--progress=off", "--data-dir", t.TempDir(), "--out", dir}
	var out, errOut bytes.Buffer
	if code := mainIO(args, &out, &errOut, false, durableTestRegs()); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Disk == nil || rep.Disk.FdatasyncsPerSec <= 0 || rep.Disk.Count == 0 {
		t.Errorf("no disk floor in results.json: %+v", rep.Disk)
	}
	ran := 0
	for _, r := range rep.Results {
		if !r.Durable {
			t.Errorf("%s/%s: not marked durable", r.Suite, r.Engine)
		}
		switch r.Engine {
		case "file":
			ran++
			if r.NotDurable != "" || r.Ops == 0 || r.ReopenNs <= 0 || r.LiveBytes <= 0 || r.DiskBytes <= 0 {
				t.Errorf("%s/file: want figures, a reopen time, live and disk bytes: %+v", r.Suite, r)
			}
		case "forgets":
			if !strings.Contains(r.NotDurable, "lost") || r.OpsPerSec != 0 || r.P50Ns != 0 {
				t.Errorf("%s/forgets: not reported as not durable, or with figures: %+v", r.Suite, r)
			}
		}
	}
	if ran != len(durableSuites) {
		t.Errorf("%d durable suites ran on the file store, want %d", ran, len(durableSuites))
	}
	// The durable table: no figure for the store that forgets.
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		for i, w := range f {
			if w == "forgets" && i+2 < len(f) && !strings.HasPrefix(strings.Join(f[i+2:], " "), "not durable") {
				t.Errorf("a figure for the store that forgets: %q", line)
			}
		}
	}
	for _, want := range []string{"disk floor", "durability targets", "file  sync-write-1 / fdatasync rate",
		"file  sync-write-16 / pebble", "pebble did not run", "not durable: recovery on forgets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("## Durable suites")) || !bytes.Contains(md, []byte("| sync-write-4 | forgets | 4 | not durable |")) {
		t.Errorf("report.md lacks the durable table:\n%s", md)
	}
}

// TestDurableSuitesCheckWhatTheyReopen proves the reopen check can fail: a
// store that returns a wrong value after a reopen fails the run.
func TestDurableSuitesCheckWhatTheyReopen(t *testing.T) {
	reg := Registration{Name: "corrupts", Durable: func(dir string, _ bool) (Store, error) {
		return openFileStore(dir, true)
	}}
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.RecoveryBytes = 1 << 20
	for _, name := range []string{"sync-write-1", "durable-ycsb-c", "recovery"} {
		res := runOne(cfg, LookupSuite(name), reg, nil)
		if res.OK() || res.CheckFailures == 0 || !strings.Contains(res.Failure, "after the reopen") {
			t.Errorf("%s: a store that corrupts its values on reopen passed: %+v", name, res)
		}
	}
	if err := CheckDurable(reg); err == nil {
		t.Error("CheckDurable passed a store that corrupts its values on reopen")
	}
	if err := CheckDurable(durableTestRegs()[0]); err != nil {
		t.Errorf("CheckDurable failed a store that keeps its data: %v", err)
	}
	if err := CheckDurable(durableTestRegs()[1]); err == nil || !strings.Contains(err.Error(), "not durable") {
		t.Errorf("CheckDurable on a store that forgets: %v", err)
	}
}
