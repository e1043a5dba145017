package server

// The server's configuration: flags, each also read from an environment
// variable (the flag wins when both are given), defaults that keep the server
// private (127.0.0.1) and durable (sync writes), and sizes written like
// "64MiB".

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Config is the server's configuration. ParseConfig fills it from a command
// line and the environment; DefaultConfig holds the defaults.
type Config struct {
	DataDir    string // MANTIS_DATA_DIR, --data-dir
	Listen     string // MANTIS_LISTEN, --listen: the address to bind
	Port       int    // MANTIS_PORT, --port: 0 picks a free port
	CacheSize  int64  // MANTIS_CACHE_SIZE, --cache-size, bytes; 0: the engine's default
	SyncWrites bool   // MANTIS_SYNC_WRITES, --sync-writes
	APIToken   string // MANTIS_API_TOKEN, --api-token: "" disables auth
	TLSCert    string // MANTIS_TLS_CERT, --tls-cert
	TLSKey     string // MANTIS_TLS_KEY, --tls-key

	// MaxBodyBytes bounds every request body (a larger one gets 413).
	MaxBodyBytes int64
	// MaxInFlight caps the requests handled at once; more get 503.
	MaxInFlight int
	// Timeouts against slow clients, and the bound on a graceful shutdown.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	LogLevel  slog.Level // MANTIS_LOG_LEVEL, --log-level
	LogFormat string     // MANTIS_LOG_FORMAT, --log-format: text or json
}

// DefaultMaxBodyBytes is the default body limit: a largest value (16 MiB)
// even when JSON escaping makes every byte six, with room to spare.
const DefaultMaxBodyBytes = 128 << 20

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{
		DataDir:           "./data",
		Listen:            "127.0.0.1",
		Port:              8080,
		SyncWrites:        true,
		MaxBodyBytes:      DefaultMaxBodyBytes,
		MaxInFlight:       1024,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		LogLevel:          slog.LevelInfo,
		LogFormat:         "text",
	}
}

// ErrUsage marks errors in the command line or the environment.
var ErrUsage = errors.New("usage")

// sizeValue is a flag.Value for byte sizes ("64MiB", "1GB", "4096").
type sizeValue struct{ p *int64 }

func (s sizeValue) String() string {
	if s.p == nil {
		return "0"
	}
	return strconv.FormatInt(*s.p, 10)
}
func (s sizeValue) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s.p = n
	return nil
}

// levelValue is a flag.Value for slog levels.
type levelValue struct{ p *slog.Level }

func (l levelValue) String() string {
	if l.p == nil {
		return "info"
	}
	return strings.ToLower(l.p.String())
}
func (l levelValue) Set(v string) error { return l.p.UnmarshalText([]byte(v)) }

// ParseSize parses a byte size: a whole number with an optional unit, B;
// KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB or K, M, G, T (powers
// of 1024). Case and a space before the unit are ignored.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes with an optional unit (64MiB, 1GB, 4096)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	case "tb":
		mult = 1000 * 1000 * 1000 * 1000
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "t", "tib":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, t[i:])
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// flagEnv pairs each flag with its environment variable.
var flagEnv = []struct{ flag, env string }{
	{"data-dir", "MANTIS_DATA_DIR"},
	{"listen", "MANTIS_LISTEN"},
	{"port", "MANTIS_PORT"},
	{"cache-size", "MANTIS_CACHE_SIZE"},
	{"sync-writes", "MANTIS_SYNC_WRITES"},
	{"api-token", "MANTIS_API_TOKEN"},
	{"tls-cert", "MANTIS_TLS_CERT"},
	{"tls-key", "MANTIS_TLS_KEY"},
	{"max-body", "MANTIS_MAX_BODY"},
	{"max-in-flight", "MANTIS_MAX_IN_FLIGHT"},
	{"shutdown-timeout", "MANTIS_SHUTDOWN_TIMEOUT"},
	{"log-level", "MANTIS_LOG_LEVEL"},
	{"log-format", "MANTIS_LOG_FORMAT"},
}

func newFlagSet(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("mantisdb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "`DIR` holding the database (created if missing)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen,
		"`ADDR` to bind; the default serves this machine only, 0.0.0.0 or :: serves the network")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "TCP `PORT` (0 picks a free one, logged at start)")
	fs.Var(sizeValue{&cfg.CacheSize}, "cache-size", "engine cache `SIZE` in bytes, like 64MiB or 1GB (0: the engine's default)")
	fs.BoolVar(&cfg.SyncWrites, "sync-writes", cfg.SyncWrites, "acknowledge a write only once it is durable")
	fs.StringVar(&cfg.APIToken, "api-token", cfg.APIToken,
		"when set, every /api/ request must carry \"Authorization: Bearer `TOKEN`\" (else 401)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "certificate `FILE` (PEM): serve HTTPS (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "private key `FILE` (PEM) of --tls-cert")
	fs.Var(sizeValue{&cfg.MaxBodyBytes}, "max-body", "largest request body, a `SIZE` (larger ones get 413)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "`N` requests handled at once at most (more get 503)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout,
		"on SIGTERM or SIGINT, how long requests in flight may take to finish (a `DURATION`)")
	fs.Var(levelValue{&cfg.LogLevel}, "log-level", "`LEVEL` of the logs: debug (adds one line per request), info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "`FORMAT` of the logs on stderr: text or json")
	return fs
}

// ParseConfig parses the server's command line (without the program name)
// and, for each flag not given, its environment variable read through
// getenv (os.Getenv in the command). Errors wrap ErrUsage.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	fs := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, fe := range flagEnv {
		if given[fe.flag] {
			continue
		}
		v, ok := lookupEnv(getenv, fe.env)
		if !ok {
			continue
		}
		if err := fs.Set(fe.flag, v); err != nil {
			return cfg, fmt.Errorf("%w: %s=%q: %v", ErrUsage, fe.env, v, err)
		}
	}
	return cfg, cfg.validate()
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return "", false
	}
	v := getenv(name)
	return v, v != ""
}

func (c *Config) validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: --port %d: want 0..65535", ErrUsage, c.Port)
	case c.CacheSize < 0:
		return fmt.Errorf("%w: --cache-size must not be negative", ErrUsage)
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("%w: --max-body must be positive", ErrUsage)
	case c.MaxInFlight <= 0:
		return fmt.Errorf("%w: --max-in-flight must be positive", ErrUsage)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("%w: --shutdown-timeout must be positive", ErrUsage)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", ErrUsage)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("%w: --log-format %q: want text or json", ErrUsage, c.LogFormat)
	}
	return nil
}

// PrintUsage writes the server's flags and their environment variables.
func PrintUsage(out io.Writer) {
	cfg := DefaultConfig()
	fs := newFlagSet(&cfg)
	env := map[string]string{}
	for _, fe := range flagEnv {
		env[fe.flag] = fe.env
	}
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(out, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(out, " %s", name)
		}
		fmt.Fprintf(out, "  (env %s", env[f.Name])
		if f.DefValue != "" && f.DefValue != "0" {
			fmt.Fprintf(out, ", default %s", f.DefValue)
		}
		fmt.Fprintf(out, ")\n      %s\n", usage)
	})
}
