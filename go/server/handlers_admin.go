package server

// The routes about the server itself: /health, /api/v1/version and
// /api/v1/stats.

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) int {
	if err := s.eng.HealthCheck(r.Context()); err != nil {
		return writeJSON(w, r, http.StatusServiceUnavailable, map[string]any{
			"status": "unhealthy", "error": err.Error(), "code": http.StatusServiceUnavailable, "timestamp": time.Now().Unix(),
		})
	}
	return writeJSON(w, r, http.StatusOK, map[string]any{"status": "healthy", "timestamp": time.Now().Unix()})
}

type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Engine    string `json:"engine"`
	Build     string `json:"build"`
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) int {
	return writeJSON(w, r, http.StatusOK, versionInfo{Version(), runtime.Version(), engineName(s.eng), buildString()})
}

// engineName names the engine: "c" (the C core, -tags ccore), "purego", or
// its Go type.
func engineName(e storage.Engine) string {
	switch t := fmt.Sprintf("%T", e); t {
	case "*storage.CStorageEngine":
		return "c"
	case "*storage.PureGoStorageEngine":
		return "purego"
	default:
		return t
	}
}

var buildInfo = sync.OnceValue(func() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
})

// Version is the main module's version, or "dev" for a build from a
// checkout (go build stamps no version then).
func Version() string {
	if bi := buildInfo(); bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// buildString summarises the build: tags, cgo, and the VCS revision.
func buildString() string {
	bi := buildInfo()
	if bi == nil {
		return "unknown"
	}
	var parts []string
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	if t := set["-tags"]; t != "" {
		parts = append(parts, "tags="+t)
	}
	if c := set["CGO_ENABLED"]; c != "" {
		parts = append(parts, "cgo="+c)
	}
	if rev := set["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if set["vcs.modified"] == "true" {
			rev += "+dirty"
		}
		parts = append(parts, "revision="+rev)
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " ")
}

type statsBody struct {
	Storage struct {
		Reads   uint64 `json:"reads"`
		Writes  uint64 `json:"writes"`
		Deletes uint64 `json:"deletes"`
		Entries uint64 `json:"entries"`
		Bytes   uint64 `json:"bytes"`
	} `json:"storage"`
	Cache struct {
		Hits      uint64  `json:"hits"`
		Misses    uint64  `json:"misses"`
		Evictions uint64  `json:"evictions"`
		HitRatio  float64 `json:"hit_ratio"`
	} `json:"cache"`
	Server struct {
		UptimeSeconds   float64 `json:"uptime_seconds"`
		Requests        uint64  `json:"requests"`
		OpenConnections int64   `json:"open_connections"`
		InFlight        int64   `json:"in_flight"`
		Engine          string  `json:"engine"`
		Version         string  `json:"version"`
	} `json:"server"`
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) int {
	st := s.eng.Stats()
	var b statsBody
	b.Storage.Reads, b.Storage.Writes, b.Storage.Deletes = st.Reads, st.Writes, st.Deletes
	b.Storage.Entries, b.Storage.Bytes = st.Entries, st.Bytes
	b.Cache.Hits, b.Cache.Misses, b.Cache.Evictions, b.Cache.HitRatio =
		st.CacheHits, st.CacheMisses, st.CacheEvictions, st.CacheHitRatio
	b.Server.UptimeSeconds = time.Since(s.started).Seconds()
	b.Server.Requests = s.requests.Load()
	b.Server.OpenConnections = s.conns.Load()
	b.Server.InFlight = s.inFlight.Load()
	b.Server.Engine = engineName(s.eng)
	b.Server.Version = Version()
	return writeJSON(w, r, http.StatusOK, b)
}
