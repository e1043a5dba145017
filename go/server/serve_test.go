package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveTest serves s on a fresh loopback listener until the test ends and
// returns its base URL and a function that stops it and returns Serve's
// result.
func serveTest(t *testing.T, s *Server, tlsConfig *tls.Config) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, tlsConfig) }()
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() { cancel(); result = <-done })
		return result
	}
	t.Cleanup(func() { stop() })
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), stop
}

// slowPut starts a PUT whose body arrives only when the returned writer is
// written and closed; its response comes on the channel (nil if the
// request failed).
func slowPut(t *testing.T, client *http.Client, url string) (*io.PipeWriter, <-chan *http.Response) {
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	out := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			t.Logf("slow PUT: %v", err)
			out <- nil
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- resp
	}()
	return pw, out
}

// waitFor polls cond up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestMaxInFlight(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.MaxInFlight = 1 })
	base, _ := serveTest(t, s, nil)
	client := &http.Client{Transport: &http.Transport{}}
	pw, out := slowPut(t, client, base+"/api/v1/kv/slow")
	waitFor(t, "the slow PUT to be in flight", func() bool { return s.inFlight.Load() == 1 })
	resp, err := client.Get(base + "/api/v1/kv/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request over the cap: %d", resp.StatusCode)
	}
	pw.Write([]byte("value"))
	pw.Close()
	if r := <-out; r == nil || r.StatusCode != 200 {
		t.Fatalf("slow PUT: %v", r)
	}
	resp, err = client.Get(base + "/api/v1/kv/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the cap freed: %d", resp.StatusCode)
	}
}

func TestGracefulShutdownFinishesRequestsInFlight(t *testing.T) {
	s, e := newTestServer(t, nil)
	base, stop := serveTest(t, s, nil)
	client := &http.Client{Transport: &http.Transport{}}
	pw, out := slowPut(t, client, base+"/api/v1/kv/inflight")
	waitFor(t, "the PUT to be in flight", func() bool { return s.inFlight.Load() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown has begun: new connections are refused...
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	// ...and the request in flight finishes and is acknowledged.
	pw.Write([]byte("acked"))
	pw.Close()
	if r := <-out; r == nil || r.StatusCode != 200 {
		t.Fatalf("PUT in flight during shutdown: %v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if v, err := e.Get(context.Background(), "inflight"); err != nil || v != "acked" {
		t.Fatalf("acknowledged write: %q, %v", v, err)
	}
}

func TestShutdownTimeout(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.ShutdownTimeout = 50 * time.Millisecond })
	base, stop := serveTest(t, s, nil)
	pw, out := slowPut(t, &http.Client{Transport: &http.Transport{}}, base+"/api/v1/kv/stuck")
	defer pw.Close()
	waitFor(t, "the PUT to be in flight", func() bool { return s.inFlight.Load() == 1 })
	if err := stop(); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Serve with a stuck request: %v", err)
	}
	pw.CloseWithError(errors.New("test over"))
	<-out
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mantisdb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunTLS runs the command's Run with --tls-cert and --tls-key on a free
// port, over HTTPS with auth, then stops it as SIGTERM would.
func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg, err := ParseConfig([]string{"--port", "0", "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--api-token", "tok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log) }()
	var addr string
	waitFor(t, "the server's start line", func() bool {
		if _, a, ok := strings.Cut(logs.String(), "addr="); ok {
			addr, _, _ = strings.Cut(a, " ")
			return true
		}
		return false
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("PUT", "https://"+addr+"/api/v1/kv/k", strings.NewReader(`{"value":"tls"}`))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT over TLS: %d", resp.StatusCode)
	}
	// Plain HTTP to the TLS port does not reach the API.
	if resp, err := http.Get("http://" + addr + "/api/v1/kv/k"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 || resp.StatusCode == 401 {
			t.Fatalf("plain HTTP to the TLS port answered %d", resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), "engine closed") {
		t.Fatalf("no engine close in the logs:\n%s", logs.String())
	}
	// Bad certificate files: a clear error, before listening.
	cfg.TLSCert = filepath.Join(dir, "missing.pem")
	if err := Run(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("Run with a missing certificate: %v", err)
	}
}

func TestListenTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := DefaultConfig()
	cfg.Port = port
	_, err = Listen(cfg)
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)+" is already in use") {
		t.Fatalf("Listen on a taken port: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{
		"MANTIS_DATA_DIR": "/env/dir", "MANTIS_PORT": "9000", "MANTIS_CACHE_SIZE": "64MiB",
		"MANTIS_SYNC_WRITES": "false", "MANTIS_API_TOKEN": "envtok", "MANTIS_LISTEN": "0.0.0.0",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/env/dir" || cfg.Port != 9000 || cfg.CacheSize != 64<<20 || cfg.SyncWrites ||
		cfg.APIToken != "envtok" || cfg.Listen != "0.0.0.0" {
		t.Fatalf("from the environment: %+v", cfg)
	}
	// The flag wins.
	cfg, err = ParseConfig([]string{"--port=9001", "--cache-size", "1GB", "--sync-writes=true", "--data-dir", "d"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9001 || cfg.CacheSize != 1e9 || !cfg.SyncWrites || cfg.DataDir != "d" || cfg.APIToken != "envtok" {
		t.Fatalf("flags over the environment: %+v", cfg)
	}
	// Defaults: private and durable.
	cfg, err = ParseConfig(nil, nil)
	if err != nil || cfg.Listen != "127.0.0.1" || cfg.Port != 8080 || !cfg.SyncWrites || cfg.DataDir != "./data" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"--port", "70000"}, {"--port", "x"}, {"--cache-size", "12XB"},
		{"--tls-cert", "c.pem"}, {"--log-format", "xml"}, {"--max-in-flight", "0"}, {"stray"}, {"--nope"},
		{"--log-level", "loud"}} {
		if _, err := ParseConfig(bad, nil); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseConfig(%q): %v, want a usage error", bad, err)
		}
	}
	_, err = ParseConfig(nil, func(k string) string {
		if k == "MANTIS_PORT" {
			return "eighty"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "MANTIS_PORT") {
		t.Fatalf("bad environment value: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "64MiB": 64 << 20, "64 mib": 64 << 20, "1GB": 1e9, "2k": 2048, "3KB": 3000,
		"1TiB": 1 << 40, "10B": 10, "5M": 5 << 20, "1G": 1 << 30,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GB", "1XB", "99999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestUsageNamesEveryFlagAndVariable(t *testing.T) {
	var b strings.Builder
	PrintUsage(&b)
	for _, fe := range flagEnv {
		if !strings.Contains(b.String(), "--"+fe.flag) || !strings.Contains(b.String(), fe.env) {
			t.Errorf("usage lacks --%s or %s", fe.flag, fe.env)
		}
	}
}

func TestChunkedBodyOverLimit(t *testing.T) {
	s, e := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 1000 })
	base, _ := serveTest(t, s, nil)
	pw, out := slowPut(t, &http.Client{Transport: &http.Transport{}}, base+"/api/v1/kv/chunked")
	go func() {
		pw.Write([]byte(strings.Repeat("x", 3000)))
		pw.Close()
	}()
	if r := <-out; r == nil || r.StatusCode != 413 {
		t.Fatalf("chunked body over the limit: %v", r)
	}
	if _, err := e.Get(context.Background(), "chunked"); err == nil {
		t.Fatal("a refused body was written")
	}
}
