package server

// GET /api/v1/kv?prefix=P&limit=N&after=K: one page of the keys with a
// prefix, ascending, from one snapshot (the iterator's). "next" is the last
// key of the page when more keys follow (pass it back as after), else null.
//
// The engine's iterators have no seek, so a page after K walks the prefix's
// keys up to K first: a page costs O(its position), which is fine for the
// pages of a prefix but quadratic over a whole large keyspace.

import (
	"encoding/base64"
	"net/http"
	"strconv"
)

const (
	// DefaultListLimit is a page's size when limit is not given.
	DefaultListLimit = 100
	// MaxListLimit is the largest page; a larger limit is lowered to it.
	MaxListLimit = 1000
)

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) int {
	q := r.URL.Query()
	prefix := q.Get("prefix")
	after, hasAfter := q.Get("after"), q.Has("after")
	if a := q.Get("after_b64"); a != "" {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			return writeError(w, http.StatusBadRequest, "after_b64: not standard base64", nil)
		}
		after, hasAfter = string(b), true
	}
	limit := DefaultListLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return writeError(w, http.StatusBadRequest, "limit: want a whole number from 1 to 1000",
				map[string]any{"limit": l})
		}
		limit = min(n, MaxListLimit)
	}
	it, err := s.eng.NewIterator(r.Context(), prefix)
	if err != nil {
		code, msg := statusOf(err)
		return writeError(w, code, msg, nil)
	}
	defer it.Close()

	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	b := append((*bp)[:0], `{"items":[`...)
	n, last, more := 0, "", false
	for it.Next() {
		k := it.Key()
		if hasAfter && k <= after {
			continue
		}
		if n == limit {
			more = true
			break
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "key", k)
		b = append(b, ',')
		b = appendField(b, "value", it.Value())
		b = append(b, '}')
		n++
		last = k
	}
	if err := it.Error(); err != nil {
		*bp = b
		code, msg := statusOf(err)
		return writeError(w, code, msg, nil)
	}
	b = append(b, "],"...)
	if more {
		b = appendField(b, "next", last)
	} else {
		b = append(b, `"next":null`...)
	}
	b = append(b, "}\n"...)
	*bp = b
	return writeBody(w, r, http.StatusOK, ctJSON, b)
}
