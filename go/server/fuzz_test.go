package server

// Fuzzing the routes' parsing against a model.
//
// FuzzAPI reads its input as a program of requests (puts in JSON and raw,
// gets in JSON and raw, deletes, list pages, batches atomic or not) over a
// small alphabet of awkward key bytes ('/', '%', '+', NUL, 0xff, a UTF-8
// letter), each key percent-encoded in one of several ways, and checks every
// response, status and body, against a map that models the store.
//
// FuzzRequest sends arbitrary methods, paths, headers and bodies and checks
// that the server answers within the API's statuses, with the JSON error
// shape on errors, and never panics.
//
// Their seeds run in every go test; `make fuzz-server` fuzzes for longer.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// keyAlphabet is the bytes keys are made of: separators, escapes, NUL,
// invalid UTF-8 and a two-byte letter (0xc3 0xa9, "é").
var keyAlphabet = []byte{'a', 'b', '/', '%', '+', ' ', 0, 0xff, 0xc3, 0xa9, '.', '?'}

type prog struct {
	data []byte
	i    int
}

func (p *prog) byte() byte {
	if p.i >= len(p.data) {
		return 0
	}
	b := p.data[p.i]
	p.i++
	return b
}

func (p *prog) done() bool { return p.i >= len(p.data) }

func (p *prog) key() string {
	n := int(p.byte() % 4)
	b := make([]byte, n)
	for i := range b {
		b[i] = keyAlphabet[int(p.byte())%len(keyAlphabet)]
	}
	return string(b)
}

func (p *prog) value() string {
	n := int(p.byte() % 6)
	b := make([]byte, n)
	for i := range b {
		b[i] = p.byte()
	}
	return string(b)
}

// escapePath encodes key as one path segment, in the style mode picks.
func escapePath(key string, mode byte) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		plain := c >= 'a' && c <= 'z' || c == '.' || c == '+'
		if plain && mode%3 != 0 {
			b.WriteByte(c)
		} else if mode%3 == 2 {
			fmt.Fprintf(&b, "%%%02x", c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// rawJSONString writes s between quotes escaping only what JSON requires:
// invalid UTF-8 stays invalid, so that the server must refuse it.
func rawJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, "\\u%04x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// field reads a string the server sent as name or name_b64.
func field(t *testing.T, m map[string]any, name string) (string, bool) {
	t.Helper()
	if v, ok := m[name].(string); ok {
		if !utf8.ValidString(v) {
			t.Fatalf("%s is not valid UTF-8", name)
		}
		return v, true
	}
	if v, ok := m[name+"_b64"].(string); ok {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("%s_b64: %v", name, err)
		}
		if utf8.Valid(b) {
			t.Fatalf("%s_b64 used for valid UTF-8 %q", name, b)
		}
		return string(b), true
	}
	return "", false
}

func request(t *testing.T, h http.Handler, method, path, body string, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	req := httptest.NewRequest(method, "http://x"+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Type") != "application/json" {
		return rec.Code, nil, rec.Body.String()
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %q: body is not JSON: %v: %q", method, path, err, rec.Body.String())
	}
	if rec.Code >= 400 {
		if c, _ := m["code"].(float64); int(c) != rec.Code {
			t.Fatalf("%s %q: error shape %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, m, rec.Body.String()
}

type batchModelOp struct {
	typ        string
	key, value string
}

func FuzzAPI(f *testing.F) {
	f.Add([]byte{0, 2, 0, 1, 3, 'x', 'y', 'z', 2, 2, 0, 1, 0})
	f.Add([]byte{1, 1, 6, 3, 0xff, 0, 'a', 3, 1, 6, 1, 2, 1, 6, 4, 1, 6, 2, 1, 6})
	f.Add([]byte{0, 1, 2, 1, 'v', 0, 1, 3, 1, 'w', 5, 0, 0, 1, 5, 1, 2, 0})
	f.Add([]byte{6, 3, 0, 1, 0, 1, 'q', 1, 1, 0, 2, 1, 1, 0, 7, 4, 0, 1, 5, 1, 'r', 1, 1, 5, 2, 1, 1, 5})
	f.Add([]byte{7, 2, 0, 0, 0, 1, 'z', 1, 0, 1, 1, 1, 4, 1, 2, 2, 2, 2})
	f.Add([]byte{0, 3, 7, 8, 9, 2, 'v', 'w', 2, 3, 7, 8, 9, 5, 1, 7, 1, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		s, _ := newTestServer(t, nil)
		model := map[string]string{}
		p := &prog{data: data}
		for steps := 0; !p.done() && steps < 64; steps++ {
			switch p.byte() % 8 {
			case 0: // PUT or POST in JSON
				k, v, mode := p.key(), p.value(), p.byte()
				method := "PUT"
				if mode&4 != 0 {
					method = "POST"
				}
				code, m, raw := request(t, s, method, "/api/v1/kv/"+escapePath(k, mode), `{"value":`+rawJSONString(v)+`}`)
				want := 200
				switch {
				case !utf8.ValidString(v):
					want = 400
				case k == "":
					want = 400
				case k == "batch" && method == "POST" && mode%3 != 0:
					want = code // POST /api/v1/kv/batch is the batch route: checked below
				}
				if code != want {
					t.Fatalf("%s %q = %q: %d %s, want %d", method, k, v, code, raw, want)
				}
				if want == 200 && !(k == "batch" && method == "POST" && mode%3 != 0) {
					if got, _ := field(t, m, "key"); got != k || m["success"] != true {
						t.Fatalf("PUT %q answered %s", k, raw)
					}
					model[k] = v
				}
			case 1: // PUT raw bytes
				k, v, mode := p.key(), p.value(), p.byte()
				code, _, raw := request(t, s, "PUT", "/api/v1/kv/"+escapePath(k, mode), v, "Content-Type", "application/octet-stream")
				want := 200
				if k == "" {
					want = 400
				}
				if code != want {
					t.Fatalf("raw PUT %q: %d %s, want %d", k, code, raw, want)
				}
				if want == 200 {
					model[k] = v
				}
			case 2, 3: // GET in JSON, or raw
				k, mode := p.key(), p.byte()
				octet := mode&4 != 0
				var hdr []string
				if octet {
					hdr = []string{"Accept", "application/octet-stream"}
				}
				code, m, raw := request(t, s, "GET", "/api/v1/kv/"+escapePath(k, mode), "", hdr...)
				v, ok := model[k]
				switch {
				case k == "":
					if code != 400 {
						t.Fatalf("GET of the empty key: %d", code)
					}
				case !ok:
					if code != 404 {
						t.Fatalf("GET %q (absent): %d %s", k, code, raw)
					}
					if got, _ := field(t, m["details"].(map[string]any), "key"); got != k {
						t.Fatalf("404 of %q names %q", k, got)
					}
				case octet:
					if code != 200 || raw != v {
						t.Fatalf("raw GET %q: %d %q, want %q", k, code, raw, v)
					}
				case !utf8.ValidString(v):
					if code != 406 {
						t.Fatalf("JSON GET %q of a non-UTF-8 value: %d %s", k, code, raw)
					}
				default:
					gk, _ := field(t, m, "key")
					gv, _ := field(t, m, "value")
					if code != 200 || gk != k || gv != v {
						t.Fatalf("GET %q: %d %s, want %q", k, code, raw, v)
					}
				}
			case 4: // DELETE
				k, mode := p.key(), p.byte()
				code, m, raw := request(t, s, "DELETE", "/api/v1/kv/"+escapePath(k, mode), "")
				if k == "" {
					if code != 400 {
						t.Fatalf("DELETE of the empty key: %d", code)
					}
					continue
				}
				if gk, _ := field(t, m, "key"); code != 200 || gk != k || m["deleted"] != true {
					t.Fatalf("DELETE %q: %d %s", k, code, raw)
				}
				delete(model, k)
			case 5: // a list page
				prefix, limit, after, hasAfter := p.key(), int(p.byte()%5)+1, "", p.byte()%2 == 1
				q := url.Values{"prefix": {prefix}, "limit": {fmt.Sprint(limit)}}
				if hasAfter {
					after = p.key()
					q.Set("after", after)
				}
				code, m, raw := request(t, s, "GET", "/api/v1/kv?"+q.Encode(), "")
				if code != 200 {
					t.Fatalf("list %v: %d %s", q, code, raw)
				}
				var want []string
				for k := range model {
					if strings.HasPrefix(k, prefix) && (!hasAfter || k > after) {
						want = append(want, k)
					}
				}
				sort.Strings(want)
				more := len(want) > limit
				want = want[:min(limit, len(want))]
				var got []string
				for _, it := range m["items"].([]any) {
					item := it.(map[string]any)
					k, _ := field(t, item, "key")
					v, _ := field(t, item, "value")
					if v != model[k] {
						t.Fatalf("list: %q = %q, model %q", k, v, model[k])
					}
					got = append(got, k)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("list %v: %q, want %q", q, got, want)
				}
				next, hasNext := field(t, m, "next")
				if hasNext != more || (more && next != want[len(want)-1]) {
					t.Fatalf("list %v: next %q (%v), more %v: %s", q, next, hasNext, more, raw)
				}
			case 6, 7: // a batch
				atomic := p.byte()%2 == 1
				n := int(p.byte() % 5)
				ops := make([]batchModelOp, n)
				var js []string
				for i := range ops {
					typ := []string{"set", "get", "delete"}[p.byte()%3]
					k := strings.ToValidUTF8(p.key(), "?")
					v := strings.ToValidUTF8(p.value(), "?")
					ops[i] = batchModelOp{typ, k, v}
					js = append(js, fmt.Sprintf(`{"type":%q,"key":%s,"value":%s}`, typ, rawJSONString(k), rawJSONString(v)))
				}
				body := fmt.Sprintf(`{"atomic":%v,"operations":[%s]}`, atomic, strings.Join(js, ","))
				code, m, raw := request(t, s, "POST", "/api/v1/kv/batch", body)
				bad := slices.ContainsFunc(ops, func(o batchModelOp) bool { return o.key == "" })
				if atomic && bad {
					if code != 400 {
						t.Fatalf("atomic batch with an empty key: %d %s", code, raw)
					}
					continue
				}
				if code != 200 {
					t.Fatalf("batch %s: %d %s", body, code, raw)
				}
				res := m["results"].([]any)
				if len(res) != n {
					t.Fatalf("batch: %d results for %d operations", len(res), n)
				}
				errs := 0
				for i, o := range ops {
					r := res[i].(map[string]any)
					rk, _ := field(t, r, "key")
					wantOK := o.key != ""
					var wantVal string
					if wantOK {
						switch o.typ {
						case "set":
							model[o.key] = o.value
						case "delete":
							delete(model, o.key)
						case "get":
							wantVal, wantOK = model[o.key]
						}
					}
					if !wantOK {
						errs++
					}
					rv, hasVal := field(t, r, "value")
					if rk != o.key || r["success"] != wantOK || (o.typ == "get" && wantOK && (!hasVal || rv != wantVal)) {
						t.Fatalf("batch op %d %+v: result %v, want success %v value %q", i, o, r, wantOK, wantVal)
					}
				}
				if m["errors"] != float64(errs) || m["success"] != (errs == 0) {
					t.Fatalf("batch: %s, want %d errors", raw, errs)
				}
			}
		}
	})
}

func FuzzRequest(f *testing.F) {
	f.Add("GET", "/api/v1/kv/a", "", "")
	f.Add("PUT", "/api/v1/kv/a%2Fb", `{"value":"x","ttl":1}`, "application/json")
	f.Add("POST", "/api/v1/kv/batch", `{"operations":[{"type":"set","key":"k","value":"v"}],"atomic":true}`, "")
	f.Add("PUT", "/api/v1/kv/b", "\x00\xff", "application/octet-stream")
	f.Add("GET", "/api/v1/kv?prefix=a&limit=3&after=a", "", "")
	f.Add("DELETE", "/api/v1/kv/", "", "")
	f.Add("GET", "/api/v1/stats", "", "")
	f.Add("PATCH", "/health", "{}", "")
	f.Add("POST", "/api/v1/kv/batch", `{"operations":[{"type":"get","key":"k"},{"type":"set","key":"k","value":"v","ttl":-3}]}`, "text/plain")
	f.Fuzz(func(t *testing.T, method, target, body, ct string) {
		if len(body) > 1<<16 || !strings.HasPrefix(target, "/") {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		s, _ := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 1 << 15 })
		req := httptest.NewRequest("GET", "/", bytes.NewReader([]byte(body)))
		req.Method, req.URL, req.RequestURI = method, u, target
		req.ContentLength = int64(len(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404, 405, 406, 409, 413:
		default:
			t.Fatalf("%s %q: status %d: %q", method, target, rec.Code, rec.Body.String())
		}
		if rec.Code == 405 && rec.Header().Get("Allow") == "" {
			t.Fatalf("405 without Allow")
		}
		if rec.Code >= 400 {
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["code"] != float64(rec.Code) || m["error"] == "" {
				t.Fatalf("%s %q: error body %q", method, target, rec.Body.String())
			}
		}
	})
}

// FuzzPutBody checks the reflection-free decoder of PUT bodies against
// encoding/json: whatever it accepts, encoding/json accepts with the same
// result.
func FuzzPutBody(f *testing.F) {
	for _, s := range []string{`{"value":"x"}`, `{"value":"x","ttl":5}`, ` { "ttl" : 0.25 , "value" : "" } `,
		`{"value":null}`, `{}`, `{"value":"a","value":"b"}`, `{"value":"a\"b"}`, `{"ttl":01}`, `{"ttl":1e3}`,
		`{"Value":"x"}`, `{"value":"x"}x`, `{"value":"x",}`, `{"ttl":-1}`, `{"ttl":1.}`, `{"value":"x","ttl":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return
		}
		fast, ok := fastPutBody(b)
		if !ok {
			return
		}
		var slow putBody
		if err := decodeJSON(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", b, err)
		}
		if (fast.Value == nil) != (slow.Value == nil) || (fast.Value != nil && *fast.Value != *slow.Value) ||
			(fast.TTL == nil) != (slow.TTL == nil) || (fast.TTL != nil && *fast.TTL != *slow.TTL) {
			t.Fatalf("%q: fast %v %v, encoding/json %v %v", b, fast.Value, fast.TTL, slow.Value, slow.TTL)
		}
	})
}
