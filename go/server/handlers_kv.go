package server

// The single-key routes: GET, PUT/POST and DELETE /api/v1/kv/{key}, in JSON
// or, with application/octet-stream, as the value's raw bytes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mantisdb/mantisdb/go/storage"
)

// MaxTTLSeconds is the largest TTL accepted (about 31.7 years); larger ones
// get 400.
const MaxTTLSeconds = 1e9

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, key string) int {
	v, err := s.eng.Get(r.Context(), key)
	if err != nil {
		return engineError(w, err, key)
	}
	if wantsOctet(r) {
		// Write only reads the bytes; the engine's strings are immutable.
		return writeBody(w, r, http.StatusOK, ctOctet, unsafe.Slice(unsafe.StringData(v), len(v)))
	}
	if !utf8.ValidString(v) {
		d := keyDetails(key)
		d["accept"] = octetStream
		return writeError(w, http.StatusNotAcceptable,
			"the value is not valid UTF-8 and JSON cannot carry it: ask with Accept: application/octet-stream", d)
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	b = appendField(b, "key", key)
	b = append(b, ',')
	b = appendField(b, "value", v)
	b = append(b, "}\n"...)
	code := writeBody(w, r, http.StatusOK, ctJSON, b)
	*bp = b
	putBuf(bp)
	return code
}

// putBuf returns a buffer to the pool unless a huge value grew it.
func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		bufPool.Put(bp)
	}
}

func wantsOctet(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), octetStream)
}

func isOctet(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == octetStream {
		return true
	}
	if len(ct) < len(octetStream) || !strings.EqualFold(ct[:len(octetStream)], octetStream) {
		return false // JSON, form, text, none: no parse, no allocation
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == octetStream
}

// putBody is the JSON body of a PUT: {"value": "...", "ttl": seconds}.
type putBody struct {
	Value *string  `json:"value"`
	TTL   *float64 `json:"ttl"`
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request, key string) int {
	var (
		value string
		ttl   time.Duration
	)
	if isOctet(r) {
		if q := r.URL.Query().Get("ttl"); q != "" {
			f, err := strconv.ParseFloat(q, 64)
			if err != nil {
				return writeError(w, http.StatusBadRequest, "ttl: want a number of seconds", map[string]any{"ttl": q})
			}
			if ttl, err = ttlOf(f); err != nil {
				return writeError(w, http.StatusBadRequest, err.Error(), nil)
			}
		}
		if r.ContentLength > storage.MaxValueSize {
			return writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("value of %d bytes, limit %d", r.ContentLength, storage.MaxValueSize), keyDetails(key))
		}
		b, code, msg := readBody(r, storage.MaxValueSize, nil)
		if code != 0 {
			return writeError(w, code, msg, nil)
		}
		// b is this request's own buffer, never written again.
		value = unsafe.String(unsafe.SliceData(b), len(b))
	} else {
		bp := bufPool.Get().(*[]byte)
		b, code, msg := readBody(r, s.cfg.MaxBodyBytes, *bp)
		*bp = b
		if code != 0 {
			putBuf(bp)
			return writeError(w, code, msg, nil)
		}
		body, ok := putBody{}, false
		if utf8.Valid(b) {
			body, ok = fastPutBody(b)
		}
		var err error
		if !ok {
			err = decodeJSON(b, &body)
		}
		putBuf(bp) // both decoders copied the strings out
		if err != nil {
			return writeError(w, http.StatusBadRequest, err.Error(), nil)
		}
		if body.Value == nil {
			return writeError(w, http.StatusBadRequest, `missing "value" (a string; binary values go as application/octet-stream)`, nil)
		}
		value = *body.Value
		if body.TTL != nil {
			if ttl, err = ttlOf(*body.TTL); err != nil {
				return writeError(w, http.StatusBadRequest, err.Error(), nil)
			}
		}
	}
	var err error
	if ttl > 0 {
		err = s.eng.PutWithTTL(r.Context(), key, value, ttl)
	} else {
		err = s.eng.Put(r.Context(), key, value)
	}
	if err != nil {
		return engineError(w, err, key)
	}
	return s.ack(w, r, key, `"success":true}`)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, key string) int {
	if err := s.eng.Delete(r.Context(), key); err != nil {
		return engineError(w, err, key)
	}
	return s.ack(w, r, key, `"deleted":true}`)
}

// ack writes {"key": key, <tail>.
func (s *Server) ack(w http.ResponseWriter, r *http.Request, key, tail string) int {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	b = appendField(b, "key", key)
	b = append(b, ',')
	b = append(b, tail...)
	b = append(b, '\n')
	code := writeBody(w, r, http.StatusOK, ctJSON, b)
	*bp = b
	putBuf(bp)
	return code
}

// ttlOf converts a TTL in seconds (0: none) to a duration.
func ttlOf(sec float64) (time.Duration, error) {
	if math.IsNaN(sec) || sec < 0 || sec > MaxTTLSeconds {
		return 0, fmt.Errorf("ttl %v: want 0 (no expiry) to %g seconds", sec, float64(MaxTTLSeconds))
	}
	return time.Duration(math.Ceil(sec * 1e9)), nil
}

// readBody reads the request body, at most limit bytes, appending to buf.
// On failure it returns the status and message to answer.
func readBody(r *http.Request, limit int64, buf []byte) ([]byte, int, string) {
	if r.Body == nil {
		return buf[:0], 0, ""
	}
	if r.ContentLength > 0 && r.ContentLength <= limit && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength)
	}
	b := buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", limit)
		}
		if err == io.EOF {
			return b, 0, ""
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return b, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("request body over the server's limit of %d bytes (--max-body)", mbe.Limit)
			}
			return b, http.StatusBadRequest, "reading the request body: " + err.Error()
		}
	}
}

// decodeJSON decodes one JSON value from b into v. Bodies that are not valid
// UTF-8 are refused rather than decoded with U+FFFD in place of their bytes.
func decodeJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("malformed JSON: the body is not valid UTF-8 (send binary values as application/octet-stream)")
	}
	dec := json.NewDecoder(strings.NewReader(unsafe.String(unsafe.SliceData(b), len(b))))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %v", err)
	}
	for _, c := range b[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return errors.New("malformed JSON: data after the JSON value")
		}
	}
	return nil
}
