package benchmark

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSmallSurface proves that the storage package and this harness depend
// on the standard library and this module only, in every build: users of
// github.com/mantisdb/mantisdb/go/storage inherit nothing from the benchmark
// (its peers live in the bench module). The command is not listed: it also
// serves, and the server's metrics use prometheus/client_golang.
func TestSmallSurface(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to list the dependencies with")
		}
	}
	const mod = "github.com/mantisdb/mantisdb"
	for _, tags := range []string{"", "ccore"} {
		args := []string{"list", "-deps", "-tags=" + tags,
			"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
			mod + "/go/storage", mod + "/go/benchmark"}
		out, err := exec.Command(goBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var own int
		for _, p := range strings.Fields(string(out)) {
			if p == mod || strings.HasPrefix(p, mod+"/") {
				own++
				continue
			}
			t.Errorf("tags %q: %s depends on %s, outside the standard library and this module", tags, mod, p)
		}
		if own < 2 {
			t.Errorf("tags %q: go list named %d packages of this module, want at least 2:\n%s", tags, own, out)
		}
	}
	for _, pkg := range []string{"go/storage"} {
		out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", mod+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		if strings.Contains(string(out), mod+"/go/benchmark") {
			t.Errorf("%s depends on the benchmark harness", pkg)
		}
	}
}
