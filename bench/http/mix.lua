-- The request mix of `make bench-http` for wrk: GETs and PUTs of single keys,
-- uniformly over a preloaded key space (k00000 ... k<N-1>), in JSON.
--   MIX_KEYS     the key space (default 10000)
--   MIX_GET_PCT  the percentage of GETs (default 90; 10 is PUT-heavy)
-- done() prints one RESULT line that bench/http/run.sh parses.

local keys = tonumber(os.getenv("MIX_KEYS") or "10000")
local get_pct = tonumber(os.getenv("MIX_GET_PCT") or "90")
local gets, puts = {}, {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  math.randomseed(1000 + (id or 0))
  for i = 0, keys - 1 do
    local path = string.format("/api/v1/kv/k%05d", i)
    gets[i + 1] = wrk.format("GET", path)
    puts[i + 1] = wrk.format("PUT", path, { ["Content-Type"] = "application/json" },
      string.format('{"value":"v%015d"}', i))
  end
end

function request()
  local i = math.random(keys)
  if math.random(100) <= get_pct then
    return gets[i]
  end
  return puts[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
