package main

// The process test: the mantisdb binary built from this package, started on
// a free port with a temporary data directory, driven by Go's net/http and
// by curl, stopped by SIGTERM (exit 0), and started again on the same data
// directory, which must serve everything written before.
//
// Persistence: both engines keep a data directory (docs/format.md), so the
// restart's read-back is strict: every acknowledged write, with its value,
// and no deleted key.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTags are the tags the binary is built with (those of this test).
var buildTags = ""

// durable says the engine of this build persists what Init's directory
// receives (both engines do since the write-ahead log landed).
const durable = true

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mantisdb")
	args := []string{"build", "-o", bin}
	if buildTags != "" {
		args = append(args, "-tags", buildTags)
	}
	gocmd, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gocmd, append(args, ".")...)
	cmd.Env = os.Environ() // CGO_ENABLED included
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer // the whole stderr, complete once wait returned
	done chan error
}

// start runs the binary with args and waits for its start line.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MANTIS_API_TOKEN=", "MANTIS_PORT=", "MANTIS_DATA_DIR=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if _, a, ok := strings.Cut(line, " addr="); ok && strings.Contains(line, "mantisdb serving") {
				a, _, _ = strings.Cut(a, " ")
				addr <- a
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.addr = <-addr:
	case err := <-p.done:
		t.Fatalf("mantisdb exited before serving: %v\n%s", err, p.logs)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("mantisdb did not start in 60 s")
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// stop sends sig and expects exit status 0 and a clean shutdown in the logs.
func (p *proc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("mantisdb after %v: %v\n%s", sig, err, p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("mantisdb did not exit within 60 s of %v", sig)
	}
	for _, want := range []string{"shutting down", "engine closed", "stopped cleanly"} {
		if !strings.Contains(p.logs.String(), want) {
			t.Fatalf("no %q in the logs:\n%s", want, p.logs)
		}
	}
}

func call(t *testing.T, method, url, ct, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Accept", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func curl(t *testing.T, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed (make deps installs it from Debian)")
	}
	out, err := exec.Command(path, append([]string{"-sS", "--max-time", "30"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %q: %v", args, err)
	}
	return string(out)
}

func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; not in -short")
	}
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := start(t, bin, "--port", "0", "--data-dir", dataDir, "--log-level", "debug")
	base := "http://" + p.addr

	want := map[string]string{}
	for i := range 200 {
		k, v := fmt.Sprintf("key/%03d", i), fmt.Sprintf("value %d", i)
		if code, body := call(t, "PUT", base+"/api/v1/kv/"+strings.ReplaceAll(k, "/", "%2F"), "", `{"value":"`+v+`"}`); code != 200 {
			t.Fatalf("PUT %s: %d %s", k, code, body)
		}
		want[k] = v
	}
	bin0 := "raw\x00\xff bytes"
	if code, body := call(t, "PUT", base+"/api/v1/kv/binary", "application/octet-stream", bin0); code != 200 {
		t.Fatalf("raw PUT: %d %s", code, body)
	}
	want["binary"] = bin0
	if code, body := call(t, "POST", base+"/api/v1/kv/batch", "",
		`{"atomic":true,"operations":[{"type":"set","key":"b1","value":"1"},{"type":"delete","key":"key/000"},{"type":"get","key":"key/001"}]}`); code != 200 || !strings.Contains(body, `"value":"value 1"`) {
		t.Fatalf("atomic batch: %d %s", code, body)
	}
	want["b1"] = "1"
	delete(want, "key/000")
	code, body := call(t, "GET", base+"/api/v1/kv?prefix=key/&limit=3", "", "")
	if code != 200 || !strings.Contains(body, `"next":"key/003"`) {
		t.Fatalf("list: %d %s", code, body)
	}

	// curl, as the deployed design was checked.
	if out := curl(t, "-X", "PUT", "--data", `{"value":"from curl"}`, base+"/api/v1/kv/curl%20key"); !strings.Contains(out, `"success":true`) {
		t.Fatalf("curl PUT: %s", out)
	}
	want["curl key"] = "from curl"
	if out := curl(t, base+"/api/v1/kv/curl%20key"); !strings.Contains(out, `"value":"from curl"`) {
		t.Fatalf("curl GET: %s", out)
	}
	if out := curl(t, "-H", "Accept: application/octet-stream", base+"/api/v1/kv/binary"); out != bin0 {
		t.Fatalf("curl raw GET: %q", out)
	}
	var stats struct {
		Storage struct{ Writes, Entries uint64 }
		Server  struct{ Requests uint64 }
	}
	if err := json.Unmarshal([]byte(curl(t, base+"/api/v1/stats")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Storage.Entries != uint64(len(want)) || stats.Storage.Writes < 203 || stats.Server.Requests < 200 {
		t.Fatalf("stats %+v, want %d entries", stats, len(want))
	}
	if out := curl(t, base+"/health"); !strings.Contains(out, `"healthy"`) {
		t.Fatalf("health: %s", out)
	}
	if out := curl(t, base+"/metrics"); !strings.Contains(out, `mantisdb_http_requests_total{code="200",method="PUT",route="/api/v1/kv/{key}"} 202`) {
		t.Fatalf("metrics lack the PUT count")
	}

	// A second server on the same port: a clear error naming it, exit 1.
	port := p.addr[strings.LastIndexByte(p.addr, ':')+1:]
	out, err := exec.Command(bin, "--port", port, "--data-dir", t.TempDir()).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "port "+port+" is already in use") {
		t.Fatalf("second server on port %s: %v\n%s", port, err, out)
	}

	p.stop(t, syscall.SIGTERM)
	if !strings.Contains(p.logs.String(), "msg=request") {
		t.Fatalf("no access log lines at debug level")
	}

	// Restart on the same data directory; stop it with SIGINT.
	p = start(t, bin, "--port", "0", "--data-dir", dataDir)
	base = "http://" + p.addr
	found := 0
	for k := range want {
		if code, _ := call(t, "GET", base+"/api/v1/kv/"+strings.ReplaceAll(strings.ReplaceAll(k, "/", "%2F"), " ", "%20"), "application/octet-stream", ""); code == 200 {
			found++
		}
	}
	strict := durable || os.Getenv("MANTIS_EXPECT_DURABLE") == "1" || found > 0
	if strict {
		for k, v := range want {
			code, got := call(t, "GET", base+"/api/v1/kv/"+strings.ReplaceAll(strings.ReplaceAll(k, "/", "%2F"), " ", "%20"), "application/octet-stream", "")
			if code != 200 || got != v {
				t.Errorf("after restart %q = %d %q, want %q", k, code, got, v)
			}
		}
		if code, _ := call(t, "GET", base+"/api/v1/kv/key%2F000", "", ""); code != 404 {
			t.Errorf("deleted key/000 back after restart: %d", code)
		}
	} else {
		t.Logf("restart: the engine of this build keeps data in memory (0 of %d keys back); the read-back is checked once it persists", len(want))
	}
	p.stop(t, os.Interrupt)
}
