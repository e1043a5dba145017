package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestKVRoundTrip(t *testing.T) {
	s, _ := newTestServer(t, nil)
	m := wantStatus(t, do(t, s, "PUT", "/api/v1/kv/user:1", `{"value":"alice"}`), 200)
	if m["key"] != "user:1" || m["success"] != true {
		t.Fatalf("PUT answered %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv/user:1", ""), 200)
	if m["key"] != "user:1" || m["value"] != "alice" {
		t.Fatalf("GET answered %v", m)
	}
	// POST writes like PUT, and replaces.
	wantStatus(t, do(t, s, "POST", "/api/v1/kv/user:1", `{"value":"bob","ttl":0}`), 200)
	if m = wantStatus(t, do(t, s, "GET", "/api/v1/kv/user:1", ""), 200); m["value"] != "bob" {
		t.Fatalf("GET after POST answered %v", m)
	}
	m = wantStatus(t, do(t, s, "DELETE", "/api/v1/kv/user:1", ""), 200)
	if m["key"] != "user:1" || m["deleted"] != true {
		t.Fatalf("DELETE answered %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv/user:1", ""), 404)
	if m["error"] != "key not found" || m["details"].(map[string]any)["key"] != "user:1" {
		t.Fatalf("GET of a deleted key answered %v", m)
	}
	// Deleting a missing key is not an error.
	wantStatus(t, do(t, s, "DELETE", "/api/v1/kv/never", ""), 200)
	// HEAD answers like GET (net/http drops the body).
	if rec := do(t, s, "HEAD", "/api/v1/kv/never", ""); rec.Code != 404 {
		t.Fatalf("HEAD of a missing key: %d", rec.Code)
	}
	if rec := do(t, s, "HEAD", "/api/v1/kv/%2F", ""); rec.Code != 404 {
		t.Fatalf("HEAD of a missing key: %d", rec.Code)
	}
}

func TestKeysAreOneDecodedSegment(t *testing.T) {
	s, e := newTestServer(t, nil)
	keys := []string{"a/b", "a b", "x+y", "ünï\u2028code", "nul\x00byte", "%", "..", "batch", "?#&=", strings.Repeat("k", storage.MaxKeySize)}
	for i, k := range keys {
		path := "/api/v1/kv/" + url.PathEscape(k)
		if k == "batch" {
			path = "/api/v1/kv/%62atch" // POST to the literal "batch" is the batch route
		}
		val := fmt.Sprintf("v%d\n\"quoted\"\t\\", i)
		body, _ := json.Marshal(map[string]string{"value": val})
		wantStatus(t, do(t, s, "POST", path, string(body)), 200)
		if got, err := e.Get(context.Background(), k); err != nil || got != val {
			t.Fatalf("key %q: engine has %q, %v; want %q", k, got, err, val)
		}
		m := wantStatus(t, do(t, s, "GET", path, ""), 200)
		if m["key"] != k || m["value"] != val {
			t.Fatalf("key %q: GET answered %v", k, m)
		}
	}
	// GET and PUT of the literal segment "batch" address the key "batch".
	if m := wantStatus(t, do(t, s, "GET", "/api/v1/kv/batch", ""), 200); m["key"] != "batch" {
		t.Fatalf("GET /api/v1/kv/batch answered %v", m)
	}
	// A key is one segment: a raw / makes an unknown route.
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a/b", ""), 404)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a%2Fb/", ""), 404)
}

func TestEmptyAndOversizedKeys(t *testing.T) {
	s, _ := newTestServer(t, nil)
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		wantStatus(t, do(t, s, m, "/api/v1/kv/", `{"value":"x"}`), 400)
	}
	big := strings.Repeat("k", storage.MaxKeySize+1)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/"+big, `{"value":"x"}`), 413)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/"+big, ""), 413)
	wantStatus(t, do(t, s, "DELETE", "/api/v1/kv/"+big, ""), 413)
}

func TestOctetStreamValues(t *testing.T) {
	s, _ := newTestServer(t, nil)
	val := "bin\x00\xff\xfe\x80value"
	rec := do(t, s, "PUT", "/api/v1/kv/bin", val, "Content-Type", "application/octet-stream")
	wantStatus(t, rec, 200)
	rec = do(t, s, "GET", "/api/v1/kv/bin", "", "Accept", "application/octet-stream")
	if rec.Code != 200 || rec.Body.String() != val || rec.Header().Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("octet GET: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	// JSON cannot carry it: 406 pointing at octet-stream, never U+FFFD.
	m := wantStatus(t, do(t, s, "GET", "/api/v1/kv/bin", ""), 406)
	if !strings.Contains(m["error"].(string), "application/octet-stream") {
		t.Fatalf("406 without the hint: %v", m)
	}
	// An empty value is a value.
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/empty", "", "Content-Type", "application/octet-stream"), 200)
	rec = do(t, s, "GET", "/api/v1/kv/empty", "", "Accept", "application/octet-stream")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("empty octet value: %d %q", rec.Code, rec.Body.String())
	}
	// A value one byte over the engine's limit: 413.
	over := strings.Repeat("v", storage.MaxValueSize+1)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/big", over, "Content-Type", "application/octet-stream"), 413)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/big", ""), 404)
	// The same through JSON.
	body, _ := json.Marshal(map[string]string{"value": over})
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/big", string(body)), 413)
	// Media type parameters are fine.
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/p", "x", "Content-Type", "application/octet-stream; charset=binary"), 200)
	if m := wantStatus(t, do(t, s, "GET", "/api/v1/kv/p", ""), 200); m["value"] != "x" {
		t.Fatalf("got %v", m)
	}
}

func TestNonUTF8KeysUseB64Fields(t *testing.T) {
	s, _ := newTestServer(t, nil)
	key := "k\xff"
	m := wantStatus(t, do(t, s, "PUT", "/api/v1/kv/k%FF", `{"value":"v"}`), 200)
	if m["key_b64"] != base64.StdEncoding.EncodeToString([]byte(key)) || m["key"] != nil {
		t.Fatalf("PUT of a non-UTF-8 key answered %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv?prefix=k", ""), 200)
	items := m["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["key_b64"] != base64.StdEncoding.EncodeToString([]byte(key)) {
		t.Fatalf("list answered %v", m)
	}
}

func TestTTL(t *testing.T) {
	s, _ := newTestServer(t, nil)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/short", `{"value":"v","ttl":0.001}`), 200)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/shortbin?ttl=0.001", "v", "Content-Type", "application/octet-stream"), 200)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/long", `{"value":"v","ttl":3600}`), 200)
	for _, k := range []string{"short", "shortbin"} {
		deadline := time.Now().Add(10 * time.Second)
		for do(t, s, "GET", "/api/v1/kv/"+k, "").Code != 404 {
			if time.Now().After(deadline) {
				t.Fatalf("%s with a 1 ms TTL still there after 10 s", k)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/long", ""), 200)
	for _, b := range []string{`{"value":"v","ttl":-1}`, `{"value":"v","ttl":1e10}`, `{"value":"v","ttl":"5"}`} {
		wantStatus(t, do(t, s, "PUT", "/api/v1/kv/bad", b), 400)
	}
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/bad?ttl=x", "v", "Content-Type", "application/octet-stream"), 400)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/bad?ttl=-2", "v", "Content-Type", "application/octet-stream"), 400)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/bad", ""), 404)
}

func TestMalformedBodies(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	for _, b := range []string{``, `{`, `{"value":1}`, `{"value":null}`, `{}`, `[]`, `{"value":"a"}x`,
		`{"value":"a"}{"value":"b"}`, "{\"value\":\"\xff\"}"} {
		wantStatus(t, do(t, s, "PUT", "/api/v1/kv/k", b), 400)
	}
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/k", ""), 404)
	// A body over --max-body: 413, nothing written.
	body := `{"value":"` + strings.Repeat("x", 2000) + `"}`
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/k", body), 413)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/k", strings.Repeat("x", 2000), "Content-Type", "application/octet-stream"), 413)
	wantStatus(t, do(t, s, "POST", "/api/v1/kv/batch", `{"operations":[`+strings.Repeat(`{"type":"get","key":"k"},`, 100)+`]}`), 413)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/k", ""), 404)
	// Trailing whitespace is fine.
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/k", "{\"value\":\"a\"} \n"), 200)
}

func TestMethodsAndRoutes(t *testing.T) {
	s, _ := newTestServer(t, nil)
	cases := []struct{ method, path, allow string }{
		{"PATCH", "/api/v1/kv/k", "GET, HEAD, PUT, POST, DELETE"},
		{"POST", "/api/v1/kv", "GET, HEAD"},
		{"DELETE", "/api/v1/stats", "GET, HEAD"},
		{"PUT", "/api/v1/version", "GET, HEAD"},
		{"POST", "/health", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
	}
	for _, c := range cases {
		rec := do(t, s, c.method, c.path, "")
		wantStatus(t, rec, 405)
		if rec.Header().Get("Allow") != c.allow {
			t.Fatalf("%s %s: Allow %q, want %q", c.method, c.path, rec.Header().Get("Allow"), c.allow)
		}
	}
	for _, p := range []string{"/", "/api", "/api/v1", "/api/v2/kv/k", "/api/v1/kvx", "/healthz", "/api/v1/kv/a/b"} {
		wantStatus(t, do(t, s, "GET", p, ""), 404)
	}
}

func TestList(t *testing.T) {
	s, _ := newTestServer(t, nil)
	var want []string
	for i := range 250 {
		k := fmt.Sprintf("user:%04d", i)
		want = append(want, k)
		wantStatus(t, do(t, s, "PUT", "/api/v1/kv/"+k, `{"value":"`+k+`"}`), 200)
	}
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/other", `{"value":"o"}`), 200)
	var got []string
	after := ""
	pages := 0
	for {
		target := "/api/v1/kv?prefix=user:&limit=100"
		if pages > 0 {
			target += "&after=" + url.QueryEscape(after)
		}
		m := wantStatus(t, do(t, s, "GET", target, ""), 200)
		pages++
		for _, it := range m["items"].([]any) {
			item := it.(map[string]any)
			if item["key"] != item["value"] {
				t.Fatalf("item %v", item)
			}
			got = append(got, item["key"].(string))
		}
		if m["next"] == nil {
			break
		}
		after = m["next"].(string)
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%d pages, keys %v", pages, got)
	}
	m := wantStatus(t, do(t, s, "GET", "/api/v1/kv", ""), 200)
	if n := len(m["items"].([]any)); n != DefaultListLimit || m["next"] != "user:0098" { // "other" first
		t.Fatalf("default page: %d items, next %v", n, m["next"])
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv?limit=5000", ""), 200)
	if n := len(m["items"].([]any)); n != 251 || m["next"] != nil {
		t.Fatalf("limit 5000: %d items, next %v", n, m["next"])
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv?prefix=nope", ""), 200)
	if len(m["items"].([]any)) != 0 || m["next"] != nil {
		t.Fatalf("empty prefix page: %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/kv?after_b64="+base64.StdEncoding.EncodeToString([]byte("user:0248")), ""), 200)
	if n := len(m["items"].([]any)); n != 1 {
		t.Fatalf("after_b64: %v", m)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "after_b64=!!!"} {
		wantStatus(t, do(t, s, "GET", "/api/v1/kv?"+q, ""), 400)
	}
	wantStatus(t, do(t, s, "GET", "/api/v1/kv?prefix="+strings.Repeat("p", storage.MaxKeySize+1), ""), 413)
}

func batch(t *testing.T, s http.Handler, code int, body string) map[string]any {
	t.Helper()
	return wantStatus(t, do(t, s, "POST", "/api/v1/kv/batch", body), code)
}

func results(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range m["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestBatchNotAtomic(t *testing.T) {
	s, e := newTestServer(t, nil)
	m := batch(t, s, 200, `{"operations":[
		{"type":"set","key":"a","value":"1"},
		{"type":"set","key":"","value":"x"},
		{"type":"get","key":"a"},
		{"type":"get","key":"missing"},
		{"type":"set","key":"t","value":"ttl","ttl":3600},
		{"type":"delete","key":"a"},
		{"type":"get","key":"a"}]}`)
	r := results(m)
	if len(r) != 7 || m["success"] != false || m["errors"] != 3.0 {
		t.Fatalf("batch answered %v", m)
	}
	wantOK := []bool{true, false, true, false, true, true, false}
	for i, ok := range wantOK {
		if r[i]["success"] != ok {
			t.Fatalf("result %d: %v", i, r[i])
		}
	}
	if r[2]["value"] != "1" || r[3]["error"] != "key not found" || r[1]["error"] != "empty key" {
		t.Fatalf("results %v", r)
	}
	if v, err := e.Get(context.Background(), "t"); err != nil || v != "ttl" {
		t.Fatalf("t = %q, %v", v, err)
	}
	m = batch(t, s, 200, `{"operations":[]}`)
	if m["success"] != true || len(results(m)) != 0 {
		t.Fatalf("empty batch %v", m)
	}
}

func TestBatchAtomic(t *testing.T) {
	s, e := newTestServer(t, nil)
	ctx := context.Background()
	// Only sets: one BatchPut; a key set twice keeps the last value.
	m := batch(t, s, 200, `{"atomic":true,"operations":[
		{"type":"set","key":"a","value":"1"},{"type":"set","key":"b","value":"2"},{"type":"set","key":"a","value":"3"}]}`)
	if m["success"] != true {
		t.Fatalf("%v", m)
	}
	if v, _ := e.Get(ctx, "a"); v != "3" {
		t.Fatalf("a = %q", v)
	}
	// Mixed: the gets see the snapshot plus the batch's earlier writes.
	m = batch(t, s, 200, `{"atomic":true,"operations":[
		{"type":"get","key":"a"},{"type":"set","key":"a","value":"4"},{"type":"get","key":"a"},
		{"type":"delete","key":"b"},{"type":"get","key":"b"},{"type":"set","key":"c","value":"5"}]}`)
	r := results(m)
	if r[0]["value"] != "3" || r[2]["value"] != "4" || r[4]["success"] != false || m["errors"] != 1.0 {
		t.Fatalf("mixed atomic batch %v", m)
	}
	if v, _ := e.Get(ctx, "c"); v != "5" {
		t.Fatalf("c = %q", v)
	}
	if _, err := e.Get(ctx, "b"); err == nil {
		t.Fatal("b still there")
	}
	// Only deletes: one BatchDelete.
	batch(t, s, 200, `{"atomic":true,"operations":[{"type":"delete","key":"a"},{"type":"delete","key":"c"}]}`)
	if _, err := e.Get(ctx, "a"); err == nil {
		t.Fatal("a still there")
	}
	// One bad operation: nothing applied, in each of the three paths.
	big := strings.Repeat("k", storage.MaxKeySize+1)
	for _, b := range []string{
		`{"atomic":true,"operations":[{"type":"set","key":"x","value":"1"},{"type":"set","key":"","value":"2"}]}`,
		`{"atomic":true,"operations":[{"type":"set","key":"x","value":"1"},{"type":"get","key":"a"},{"type":"delete","key":""}]}`,
		`{"atomic":true,"operations":[{"type":"delete","key":"x"},{"type":"delete","key":""}]}`,
	} {
		batch(t, s, 400, b)
	}
	batch(t, s, 413, `{"atomic":true,"operations":[{"type":"set","key":"x","value":"1"},{"type":"get","key":"`+big+`"}]}`)
	batch(t, s, 400, `{"atomic":true,"operations":[{"type":"set","key":"x","value":"1","ttl":5}]}`)
	if _, err := e.Get(ctx, "x"); err == nil {
		t.Fatal("x written by a refused atomic batch")
	}
	// ttl 0 in an atomic batch means no TTL: allowed.
	batch(t, s, 200, `{"atomic":true,"operations":[{"type":"set","key":"x","value":"1","ttl":0}]}`)
}

func TestBatchMalformed(t *testing.T) {
	s, _ := newTestServer(t, nil)
	for _, b := range []string{`{`, `{"operations":[{"type":"incr","key":"a"}]}`, `{"operations":[{"type":"get"}]}`,
		`{"operations":[{"type":"set","key":"a"}]}`, `{"operations":[{"type":"set","key":"a","value":"v","ttl":-1}]}`,
		`{"operations":"x"}`} {
		batch(t, s, 400, b)
	}
	var sb bytes.Buffer
	sb.WriteString(`{"operations":[`)
	for i := range MaxBatchOps + 1 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"get","key":"k"}`)
	}
	sb.WriteString(`]}`)
	batch(t, s, 413, sb.String())
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/batch", ""), 404) // GET of the key "batch"
}

func TestStatusOfEngineErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{storage.ErrNotFound, 404}, {storage.ErrInvalidKey, 400}, {storage.ErrTooLarge, 413},
		{storage.ErrConflict, 409}, {storage.ErrClosed, 503}, {context.Canceled, 503},
		{fmt.Errorf("wrapped: %w", storage.ErrConflict), 409}, {fmt.Errorf("disk on fire"), 500},
	} {
		if got, _ := statusOf(c.err); got != c.code {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.code)
		}
	}
}

func TestStatsHealthVersion(t *testing.T) {
	s, e := newTestServer(t, nil)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/a", `{"value":"12345"}`), 200)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a", ""), 200)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/b", ""), 404)
	wantStatus(t, do(t, s, "DELETE", "/api/v1/kv/b", ""), 200)
	m := wantStatus(t, do(t, s, "GET", "/api/v1/stats", ""), 200)
	st := m["storage"].(map[string]any)
	if st["writes"] != 1.0 || st["reads"] != 2.0 || st["deletes"] != 1.0 || st["entries"] != 1.0 || st["bytes"].(float64) < 6 {
		t.Fatalf("stats %v", m)
	}
	srv := m["server"].(map[string]any)
	if srv["requests"] != 5.0 || srv["uptime_seconds"].(float64) <= 0 {
		t.Fatalf("server stats %v", srv)
	}
	if _, ok := m["cache"].(map[string]any)["hit_ratio"]; !ok {
		t.Fatalf("no cache stats: %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/health", ""), 200)
	if m["status"] != "healthy" || m["timestamp"].(float64) < 1e9 {
		t.Fatalf("health %v", m)
	}
	m = wantStatus(t, do(t, s, "GET", "/api/v1/version", ""), 200)
	for _, f := range []string{"version", "go_version", "engine", "build"} {
		if v, _ := m[f].(string); v == "" {
			t.Fatalf("version without %s: %v", f, m)
		}
	}
	e.Close()
	m = wantStatus(t, do(t, s, "GET", "/health", ""), 503)
	if m["status"] != "unhealthy" {
		t.Fatalf("health of a closed engine %v", m)
	}
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a", ""), 503)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/a", `{"value":"x"}`), 503)
}

func TestAuth(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.APIToken = "s3cret" })
	for _, p := range []string{"/api/v1/kv/a", "/api/v1/stats", "/api/v1/kv", "/api/v1/version", "/api/nope"} {
		rec := do(t, s, "GET", p, "")
		wantStatus(t, rec, 401)
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("401 without WWW-Authenticate")
		}
		wantStatus(t, do(t, s, "GET", p, "", "Authorization", "Bearer wrong"), 401)
		wantStatus(t, do(t, s, "GET", p, "", "Authorization", "Bearer s3cret2"), 401)
		wantStatus(t, do(t, s, "GET", p, "", "Authorization", "s3cret"), 401)
	}
	wantStatus(t, do(t, s, "POST", "/api/v1/kv/batch", `{"operations":[]}`), 401)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/a", `{"value":"v"}`, "Authorization", "Bearer s3cret"), 200)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a", "", "Authorization", "Bearer s3cret"), 200)
	// /health and /metrics stay open (for probes and scrapers).
	wantStatus(t, do(t, s, "GET", "/health", ""), 200)
	if rec := do(t, s, "GET", "/metrics", ""); rec.Code != 200 {
		t.Fatalf("/metrics with auth on: %d", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	s, _ := newTestServer(t, nil)
	wantStatus(t, do(t, s, "PUT", "/api/v1/kv/a", `{"value":"v"}`), 200)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/a", ""), 200)
	wantStatus(t, do(t, s, "GET", "/api/v1/kv/zz", ""), 404)
	wantStatus(t, do(t, s, "BREW", "/api/v1/kv/zz", ""), 405)
	rec := do(t, s, "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`mantisdb_http_requests_total{code="200",method="GET",route="/api/v1/kv/{key}"} 1`,
		`mantisdb_http_requests_total{code="404",method="GET",route="/api/v1/kv/{key}"} 1`,
		`mantisdb_http_requests_total{code="200",method="PUT",route="/api/v1/kv/{key}"} 1`,
		`mantisdb_http_requests_total{code="405",method="other",route="/api/v1/kv/{key}"} 1`,
		`mantisdb_http_request_duration_seconds_bucket{code="200",method="GET",route="/api/v1/kv/{key}",le="+Inf"} 1`,
		"mantisdb_storage_writes_total 1", "mantisdb_storage_reads_total 2", "mantisdb_storage_entries 1",
		"mantisdb_cache_hit_ratio", "mantisdb_http_open_connections", "go_goroutines", "go_memstats_heap_alloc_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// racingEngine is the real engine whose transactions see a real concurrent
// write, through the same engine, of key "hot" just before each Commit of
// the first conflicts transactions: the engine itself then fails the commit
// with ErrConflict.
type racingEngine struct {
	storage.Engine
	conflicts int
	commits   int
}

type racingTxn struct {
	storage.Transaction
	e *racingEngine
}

func (e *racingEngine) BeginTransaction(ctx context.Context) (storage.Transaction, error) {
	tx, err := e.Engine.BeginTransaction(ctx)
	if err != nil {
		return nil, err
	}
	return racingTxn{tx, e}, nil
}

func (t racingTxn) Commit() error {
	t.e.commits++
	if t.e.commits <= t.e.conflicts {
		if err := t.e.Engine.Put(context.Background(), "hot", fmt.Sprint("concurrent ", t.e.commits)); err != nil {
			return err
		}
	}
	return t.Transaction.Commit()
}

func TestBatchAtomicConflicts(t *testing.T) {
	_, real := newTestServer(t, nil)
	body := `{"atomic":true,"operations":[{"type":"get","key":"hot"},{"type":"set","key":"out","value":"1"}]}`
	// Conflicts on the first two commits: retried, the third commits.
	e := &racingEngine{Engine: real, conflicts: 2}
	s := New(DefaultConfig(), e, nil)
	m := batch(t, s, 200, body)
	if r := results(m); e.commits != 3 || r[0]["value"] != "concurrent 2" {
		t.Fatalf("after %d commits: %v", e.commits, m)
	}
	// Conflicts on every try: 409, nothing applied.
	real.Delete(context.Background(), "out")
	e = &racingEngine{Engine: real, conflicts: 1 << 30}
	s = New(DefaultConfig(), e, nil)
	batch(t, s, 409, body)
	if e.commits != conflictRetries+1 {
		t.Fatalf("%d commits, want %d", e.commits, conflictRetries+1)
	}
	if _, err := real.Get(context.Background(), "out"); err == nil {
		t.Fatal("a conflicting atomic batch applied its write")
	}
}
