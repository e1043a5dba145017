package server

// Prometheus metrics on a registry of the server's own (so that several
// servers in one process, as in the tests, do not collide): requests and
// latency per route, method and status; the engine's Stats, read at each
// scrape; the server's connections and requests in flight; Go runtime and
// process metrics.
//
// Labels are bounded: route is one of routeNames, method one of the known
// methods or "other", status a number. The per-request cost is one sync.Map
// load (the labelled children are cached by route, method and status) and
// two atomic updates.

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var methodNames = []string{"GET", "HEAD", "PUT", "POST", "DELETE", "other"}

func methodIndex(m string) uint32 {
	for i, n := range methodNames[:len(methodNames)-1] {
		if m == n {
			return uint32(i)
		}
	}
	return uint32(len(methodNames) - 1)
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	children sync.Map // uint32(route<<24 | method<<16 | status) -> *child
	handler  http.Handler
}

type child struct {
	count prometheus.Counter
	lat   prometheus.Observer
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mantisdb_http_requests_total",
		Help: "HTTP requests handled, by route, method and status.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mantisdb_http_request_duration_seconds",
		Help:    "Time to handle an HTTP request (from routing to the last byte handed to the connection), by route, method and status.",
		Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
	}, []string{"route", "method", "code"})
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&engineCollector{s})
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

func (m *metrics) observe(rt route, method string, code int, d time.Duration) {
	mi := methodIndex(method)
	k := uint32(rt)<<24 | mi<<16 | uint32(code&0xffff)
	c, ok := m.children.Load(k)
	if !ok {
		labels := []string{routeNames[rt], methodNames[mi], strconv.Itoa(code)}
		c, _ = m.children.LoadOrStore(k, &child{m.requests.WithLabelValues(labels...), m.latency.WithLabelValues(labels...)})
	}
	ch := c.(*child)
	ch.count.Inc()
	ch.lat.Observe(d.Seconds())
}

// statusRecorder learns the status promhttp writes (off the hot path).
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) int {
	rec := &statusRecorder{w, http.StatusOK}
	m.handler.ServeHTTP(rec, r)
	return rec.code
}

// engineCollector exposes the engine's Stats and the server's gauges, read
// at each scrape.
type engineCollector struct{ s *Server }

var (
	descReads     = prometheus.NewDesc("mantisdb_storage_reads_total", "Keys read by Get and BatchGet.", nil, nil)
	descWrites    = prometheus.NewDesc("mantisdb_storage_writes_total", "Keys written by Put, BatchPut and committed transactions.", nil, nil)
	descDeletes   = prometheus.NewDesc("mantisdb_storage_deletes_total", "Keys deleted by Delete, BatchDelete and committed transactions.", nil, nil)
	descEntries   = prometheus.NewDesc("mantisdb_storage_entries", "Keys that hold a value.", nil, nil)
	descBytes     = prometheus.NewDesc("mantisdb_storage_bytes", "Key and value bytes held.", nil, nil)
	descHits      = prometheus.NewDesc("mantisdb_cache_hits_total", "Reads served by the engine's cache.", nil, nil)
	descMisses    = prometheus.NewDesc("mantisdb_cache_misses_total", "Reads that missed the engine's cache.", nil, nil)
	descEvictions = prometheus.NewDesc("mantisdb_cache_evictions_total", "Entries the cache dropped to stay within its capacity.", nil, nil)
	descHitRatio  = prometheus.NewDesc("mantisdb_cache_hit_ratio", "Cache hits / (hits + misses).", nil, nil)
	descConns     = prometheus.NewDesc("mantisdb_http_open_connections", "Open HTTP connections.", nil, nil)
	descInFlight  = prometheus.NewDesc("mantisdb_http_requests_in_flight", "HTTP requests being handled.", nil, nil)
	descUptime    = prometheus.NewDesc("mantisdb_uptime_seconds", "Seconds since the server started.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReads, descWrites, descDeletes, descEntries, descBytes,
		descHits, descMisses, descEvictions, descHitRatio, descConns, descInFlight, descUptime} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.eng.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descReads, st.Reads)
	counter(descWrites, st.Writes)
	counter(descDeletes, st.Deletes)
	gauge(descEntries, float64(st.Entries))
	gauge(descBytes, float64(st.Bytes))
	counter(descHits, st.CacheHits)
	counter(descMisses, st.CacheMisses)
	counter(descEvictions, st.CacheEvictions)
	gauge(descHitRatio, st.CacheHitRatio)
	gauge(descConns, float64(c.s.conns.Load()))
	gauge(descInFlight, float64(c.s.inFlight.Load()))
	gauge(descUptime, time.Since(c.s.started).Seconds())
}
