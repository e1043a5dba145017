package cli

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestScanFlags(t *testing.T) {
	for _, c := range []struct {
		args        []string
		bench, help bool
	}{
		{nil, false, false},
		{[]string{"--benchmark-only"}, true, false},
		{[]string{"-benchmark-only", "--suites=x"}, true, false},
		{[]string{"--benchmark-only=false", "--port", "1"}, false, false},
		{[]string{"--benchmark-only=1", "--help"}, true, true},
		{[]string{"--port", "1", "-h"}, false, true},
		{[]string{"--", "--help"}, false, false},
		{[]string{"--data-dir", "benchmark-only"}, false, false},
	} {
		b, h := scanFlags(c.args)
		if b != c.bench || h != c.help {
			t.Errorf("scanFlags(%q) = %v, %v; want %v, %v", c.args, b, h, c.bench, c.help)
		}
	}
}

func TestSubcommands(t *testing.T) {
	var got []string
	Register("test-echo", "echo its arguments (test)", func(args []string) int {
		got = args
		return 7
	})
	defer func() { delete(subcommands, "test-echo"); delete(subcommandAbout, "test-echo") }()
	var out, errb strings.Builder
	if code := mainIO([]string{"test-echo", "--data-dir", "d"}, &out, &errb, nil, nil); code != 7 {
		t.Fatalf("subcommand exit %d", code)
	}
	if strings.Join(got, " ") != "--data-dir d" {
		t.Fatalf("subcommand got %q", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a duplicate subcommand did not panic")
			}
		}()
		Register("test-echo", "", func([]string) int { return 0 })
	}()
	// --help lists it beside the server's flags.
	stdout := os.Stdout
	devnull, _ := os.Open(os.DevNull)
	os.Stdout = devnull // benchmark.Main prints its own usage there
	code := mainIO([]string{"--help"}, &out, &errb, nil, nil)
	os.Stdout = stdout
	devnull.Close()
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"test-echo", "--data-dir", "MANTIS_API_TOKEN", "--benchmark-only", "Benchmark mode"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestServeErrors(t *testing.T) {
	var out, errb strings.Builder
	if code := mainIO([]string{"--port", "x"}, &out, &errb, nil, nil); code != 2 || !strings.Contains(errb.String(), "--help") {
		t.Fatalf("bad flag: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	env := func(k string) string {
		if k == "MANTIS_CACHE_SIZE" {
			return "lots"
		}
		return ""
	}
	if code := mainIO(nil, &out, &errb, env, nil); code != 2 || !strings.Contains(errb.String(), "MANTIS_CACHE_SIZE") {
		t.Fatalf("bad environment: exit %d, %q", code, errb.String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	errb.Reset()
	code := mainIO([]string{"--port", port, "--data-dir", t.TempDir()}, &out, &errb, nil, nil)
	if code != 1 || !strings.Contains(errb.String(), "port "+port+" is already in use") {
		t.Fatalf("taken port: exit %d, %q", code, errb.String())
	}
}
