package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// newTestServer returns a server over a fresh engine of this build (the C
// engine with -tags ccore), closed at the end of the test.
func newTestServer(t testing.TB, mod func(*Config)) (*Server, storage.Engine) {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	e, ok := storage.NewStorageEngine(storage.StorageConfig{}).(storage.Engine)
	if !ok {
		t.Fatal("the engine does not implement storage.Engine")
	}
	if err := e.Init(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return New(cfg, e, nil), e
}

// do sends one request to h; hdr is pairs of header name and value.
func do(t testing.TB, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// jsonOf decodes a JSON object response, failing the test if it is not one.
func jsonOf(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %q", err, rec.Body.String())
	}
	return m
}

// wantStatus checks the status and, for errors, the error shape.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, code int) map[string]any {
	t.Helper()
	if rec.Code != code {
		body := rec.Body.String()
		if len(body) > 300 {
			body = body[:300] + "..."
		}
		t.Fatalf("status %d, want %d (body %q)", rec.Code, code, body)
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		return nil
	}
	m := jsonOf(t, rec)
	if code >= 400 {
		if _, ok := m["error"].(string); !ok {
			t.Fatalf("error response without \"error\": %q", rec.Body.String())
		}
		if c, _ := m["code"].(float64); int(c) != code {
			t.Fatalf("error response code %v, want %d", m["code"], code)
		}
	}
	return m
}
