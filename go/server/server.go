// Package server is the mantisdb server: MantisDB's key-value HTTP API over a
// storage.Engine, with stats, Prometheus metrics, bearer-token auth, TLS, and
// a graceful shutdown. docs/server.md documents the API.
//
// Design. One http.Handler (Server) routes by hand instead of through
// http.ServeMux: a key is one path segment percent-decoded from the escaped
// path (so "/" is addressable as %2F and nothing is cleaned or redirected),
// errors are JSON, and wrong methods answer 405 with Allow. Every handler
// returns the status it wrote, so that the metrics and the access log need
// no wrapper around the ResponseWriter on the hot path. The hot routes (GET
// and PUT of one key) encode their JSON by hand into pooled buffers; the rest
// use encoding/json.
//
// Lifetimes: New takes an open engine and does not own it; Serve serves a
// listener until its context is done, then shuts down gracefully (stops
// accepting, lets requests in flight finish within ShutdownTimeout) and
// returns; Run does all of it for the command: it opens the engine, listens,
// serves until the context is done, and closes the engine last, so that
// every acknowledged write was handed to the engine before Close flushes it.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Server serves the HTTP API over one engine. It is an http.Handler; create
// it with New. Safe for concurrent use.
type Server struct {
	cfg     Config
	eng     storage.Engine
	log     *slog.Logger
	metrics *metrics
	started time.Time

	requests atomic.Uint64 // requests received
	inFlight atomic.Int64  // requests being handled (capped by cfg.MaxInFlight)
	conns    atomic.Int64  // open connections (ConnState of Serve's http.Server)

	authOn    bool
	tokenHash [sha256.Size]byte
}

// New returns a server over eng, which must be initialised; the server does
// not close it. A nil log discards the logs.
func New(cfg Config, eng storage.Engine, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, eng: eng, log: log, started: time.Now()}
	if cfg.APIToken != "" {
		s.authOn = true
		s.tokenHash = sha256.Sum256([]byte(cfg.APIToken))
	}
	s.metrics = newMetrics(s)
	return s
}

// The routes; route indexes the metrics' labels.
type route uint8

const (
	routeUnmatched route = iota
	routeHealth
	routeMetrics
	routeStats
	routeVersion
	routeList
	routeBatch
	routeKey
	numRoutes
)

var routeNames = [numRoutes]string{
	"unmatched", "/health", "/metrics", "/api/v1/stats", "/api/v1/version",
	"/api/v1/kv", "/api/v1/kv/batch", "/api/v1/kv/{key}",
}

const kvPrefix = "/api/v1/kv/"

// ServeHTTP counts, caps, authenticates, routes, and records the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.requests.Add(1)
	rt, code := s.serve(w, r)
	d := time.Since(start)
	s.metrics.observe(rt, r.Method, code, d)
	if code == http.StatusInternalServerError {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.EscapedPath()),
			slog.String("route", routeNames[rt]))
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.EscapedPath()),
			slog.Int("status", code), slog.Duration("duration", d),
			slog.String("remote", r.RemoteAddr))
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (route, int) {
	if n := s.inFlight.Add(1); n > int64(s.cfg.MaxInFlight) {
		s.inFlight.Add(-1)
		w.Header().Set("Retry-After", "1")
		return routeUnmatched, writeError(w, http.StatusServiceUnavailable,
			"too many requests in flight", map[string]any{"limit": s.cfg.MaxInFlight})
	}
	defer s.inFlight.Add(-1)
	// A body of known length is already cut at it by net/http; only a
	// chunked one needs the reader that enforces the limit as it goes.
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return routeUnmatched, writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body of %d bytes, over the server's limit of %d (--max-body)", r.ContentLength, s.cfg.MaxBodyBytes), nil)
	}
	if r.ContentLength < 0 && r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}

	// The path as the client sent it when it had escapes that decoding
	// loses (%2F), else the decoded path (which then has no such escapes).
	path, raw := r.URL.Path, false
	if r.URL.RawPath != "" {
		path, raw = r.URL.RawPath, true
	}
	if s.authOn && strings.HasPrefix(path, "/api/") && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mantisdb"`)
		return routeUnmatched, writeError(w, http.StatusUnauthorized,
			"missing or wrong bearer token (Authorization: Bearer <token>)", nil)
	}

	if rest, ok := strings.CutPrefix(path, kvPrefix); ok {
		if rest == "batch" && r.Method == http.MethodPost {
			return routeBatch, s.handleBatch(w, r)
		}
		if strings.IndexByte(rest, '/') >= 0 {
			return routeUnmatched, writeError(w, http.StatusNotFound,
				"no such route: a key is one path segment (encode / as %2F)", nil)
		}
		key := rest
		if raw {
			k, err := pathUnescape(rest)
			if err != nil {
				return routeKey, writeError(w, http.StatusBadRequest, "bad percent-encoding in the key", nil)
			}
			key = k
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return routeKey, s.handleGet(w, r, key)
		case http.MethodPut, http.MethodPost:
			return routeKey, s.handlePut(w, r, key)
		case http.MethodDelete:
			return routeKey, s.handleDelete(w, r, key)
		}
		return routeKey, methodNotAllowed(w, "GET, HEAD, PUT, POST, DELETE")
	}

	switch path {
	case "/api/v1/kv":
		if !isGet(r) {
			return routeList, methodNotAllowed(w, "GET, HEAD")
		}
		return routeList, s.handleList(w, r)
	case "/api/v1/stats":
		if !isGet(r) {
			return routeStats, methodNotAllowed(w, "GET, HEAD")
		}
		return routeStats, s.handleStats(w, r)
	case "/api/v1/version":
		if !isGet(r) {
			return routeVersion, methodNotAllowed(w, "GET, HEAD")
		}
		return routeVersion, s.handleVersion(w, r)
	case "/health":
		if !isGet(r) {
			return routeHealth, methodNotAllowed(w, "GET, HEAD")
		}
		return routeHealth, s.handleHealth(w, r)
	case "/metrics":
		if !isGet(r) {
			return routeMetrics, methodNotAllowed(w, "GET, HEAD")
		}
		return routeMetrics, s.metrics.serve(w, r)
	}
	return routeUnmatched, writeError(w, http.StatusNotFound, "no such route", map[string]any{"path": r.URL.Path})
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

func methodNotAllowed(w http.ResponseWriter, allow string) int {
	w.Header().Set("Allow", allow)
	return writeError(w, http.StatusMethodNotAllowed, "method not allowed", map[string]any{"allow": allow})
}

// authorized compares the bearer token with the configured one in constant
// time (hashes of both, so the length does not leak either).
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// pathUnescape decodes %XX escapes (a '+' stays a '+': this is a path).
func pathUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", errors.New("bad escape")
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// httpServer builds the http.Server of Serve: timeouts against slow
// clients and the open-connection count.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Add(-1)
			}
		},
	}
}

// Serve serves ln (with TLS when tlsConfig is not nil) until ctx is done,
// then shuts down gracefully: it stops accepting, waits up to
// cfg.ShutdownTimeout for requests in flight, and returns nil, or an error
// if serving failed or requests were still running at the deadline (their
// connections are then closed). Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	hs := s.httpServer()
	if tlsConfig != nil {
		hs.TLSConfig = tlsConfig
		ln = tls.NewListener(ln, tlsConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing requests in flight", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", s.cfg.ShutdownTimeout, err)
	}
	return nil
}

// errAddrInUse is what a taken port fails with.
var errAddrInUse error = syscall.EADDRINUSE

// Listen opens the configured address, with an error that names it.
func Listen(cfg Config) (net.Listener, error) {
	addr := net.JoinHostPort(cfg.Listen, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, errAddrInUse) {
			return nil, fmt.Errorf("cannot listen on %s: port %d is already in use (another mantisdb? pick one with --port)", addr, cfg.Port)
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Run is the command's server: it opens the engine on cfg.DataDir, listens,
// serves until ctx is done (the command cancels it on SIGTERM and SIGINT),
// shuts down gracefully and closes the engine. It returns nil after a clean
// shutdown.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("loading --tls-cert %s and --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	se := storage.NewStorageEngine(storage.StorageConfig{
		DataDir: cfg.DataDir, CacheSize: cfg.CacheSize, SyncWrites: cfg.SyncWrites,
	})
	eng, ok := se.(storage.Engine)
	if !ok {
		return fmt.Errorf("the engine %T does not implement storage.Engine", se)
	}
	if err := eng.Init(cfg.DataDir); err != nil {
		return fmt.Errorf("opening the engine on %s: %w", cfg.DataDir, err)
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil {
			log.Error("closing the engine", "err", cerr)
			if err == nil {
				err = fmt.Errorf("closing the engine: %w", cerr)
			}
			return
		}
		log.Info("engine closed", "data_dir", cfg.DataDir)
	}()
	ln, err := Listen(cfg)
	if err != nil {
		return err
	}
	s := New(cfg, eng, log)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	log.Info("mantisdb serving", "addr", ln.Addr().String(), "scheme", scheme,
		"engine", engineName(eng), "data_dir", cfg.DataDir, "sync_writes", cfg.SyncWrites,
		"auth", s.authOn, "version", Version())
	err = s.Serve(ctx, ln, tlsConfig)
	log.Info("stopped serving", "requests", s.requests.Load(), "uptime", time.Since(s.started).Round(time.Millisecond))
	return err
}
