package server

// Writing responses: JSON bodies, the error shape {"error", "code",
// "details"}, the mapping of engine errors to statuses, and the rule for
// bytes JSON cannot carry: a key, value or cursor that is not valid UTF-8 is
// never mangled into U+FFFD; it is sent base64-encoded in a field named with
// a "_b64" suffix ("key_b64" instead of "key"). A single-key GET of such a
// value answers 406 instead (ask for application/octet-stream).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Shared header values (net/http never modifies a header's slice).
var (
	ctJSON    = []string{"application/json"}
	ctOctet   = []string{"application/octet-stream"}
	ctNoSniff = []string{"nosniff"}
)

const octetStream = "application/octet-stream"

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeBody writes b with content type ct and status code, and returns code.
func writeBody(w http.ResponseWriter, r *http.Request, code int, ct []string, b []byte) int {
	h := w.Header()
	h["Content-Type"] = ct
	h["X-Content-Type-Options"] = ctNoSniff
	if len(b) >= 2048 {
		// Smaller bodies fit net/http's buffer, which then sets the
		// length itself: no allocation here for the common answers.
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(code)
	if r == nil || r.Method != http.MethodHead {
		w.Write(b)
	}
	return code
}

// writeJSON encodes v with encoding/json (the routes off the hot path).
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "encoding the response: "+err.Error(), nil)
	}
	return writeBody(w, r, code, ctJSON, append(b, '\n'))
}

type errorBody struct {
	Error   string         `json:"error"`
	Code    int            `json:"code"`
	Details map[string]any `json:"details,omitempty"`
}

// writeError writes {"error": msg, "code": code, "details": details}.
func writeError(w http.ResponseWriter, code int, msg string, details map[string]any) int {
	b, _ := json.Marshal(errorBody{msg, code, details}) // strings, numbers and maps of them
	return writeBody(w, nil, code, ctJSON, append(b, '\n'))
}

// keyDetails names a key in an error's details, by the "_b64" rule.
func keyDetails(key string) map[string]any {
	if utf8.ValidString(key) {
		return map[string]any{"key": key}
	}
	return map[string]any{"key_b64": base64.StdEncoding.EncodeToString([]byte(key))}
}

// statusOf maps an engine error to an HTTP status and a message.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, "key not found"
	case errors.Is(err, storage.ErrInvalidKey):
		return http.StatusBadRequest, "empty key"
	case errors.Is(err, storage.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, storage.ErrConflict):
		return http.StatusConflict, "conflict with a concurrent write; nothing was applied, retry"
	case errors.Is(err, storage.ErrClosed):
		return http.StatusServiceUnavailable, "the engine is closed (shutting down)"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request cancelled"
	}
	return http.StatusInternalServerError, err.Error()
}

// engineError writes the error response for err on key.
func engineError(w http.ResponseWriter, err error, key string) int {
	code, msg := statusOf(err)
	return writeError(w, code, msg, keyDetails(key))
}

// appendField appends "name":"s" (JSON-escaped) when s is valid UTF-8, else
// "name_b64":"<base64 of s>".
func appendField(b []byte, name, s string) []byte {
	b = append(b, '"')
	b = append(b, name...)
	if utf8.ValidString(s) {
		b = append(b, `":`...)
		return appendJSONString(b, s)
	}
	b = append(b, `_b64":"`...)
	b = base64.StdEncoding.AppendEncode(b, []byte(s))
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, valid UTF-8, as a JSON string. It escapes the
// characters JSON requires plus U+2028 and U+2029 (for JavaScript readers).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
