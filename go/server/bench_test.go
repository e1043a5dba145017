package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The handlers' own cost per request, without sockets: what the server adds
// to net/http's floor (make bench-http measures the whole).
func BenchmarkHandler(b *testing.B) {
	s, _ := newTestServer(b, nil)
	for i := range 10000 {
		do(b, s, "PUT", fmt.Sprintf("/api/v1/kv/k%05d", i), `{"value":"v000000000000000"}`)
	}
	for _, c := range []struct{ name, method, body string }{
		{"GET", "GET", ""}, {"PUT", "PUT", `{"value":"v000000000000000"}`}, {"DELETE", "DELETE", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(c.method, "/api/v1/kv/k00042", nil)
			body := strings.NewReader(c.body)
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(c.body)
				req.Body = http.NoBody
				if c.body != "" {
					req.Body = readCloser{body}
					req.ContentLength = int64(len(c.body))
				}
				rec.Body.Reset()
				rec.HeaderMap = http.Header{}
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
