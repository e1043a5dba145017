#!/usr/bin/env bash
# The load benchmark of the mantisdb server (`make bench-http`).
#
#   bench/http/run.sh MANTISDB FLOOR
#
# Starts the server (MANTISDB, on a free port, a temporary data directory)
# and the HTTP floor (FLOOR: a net/http handler answering a constant), loads
# MIX_KEYS keys through one atomic batch, then drives each with wrk
# (keep-alive, CONNS connections, THREADS threads, DURATION seconds) through
# bench/http/mix.lua, in a GET-heavy (90% GET) and a PUT-heavy (90% PUT) mix,
# alternating floor and server, ROUNDS times. It prints each run, then per mix
# the issue's targets: server ops/s >= 0.7 x the floor's (the median over
# rounds of each round's ratio), p99 <= 5 ms (the median over rounds),
# ops/s >= 100,000 (the best round). Exits 0 when every request succeeded
# and the server exited cleanly (the targets are reported, not enforced: the
# machine may be shared).
set -euo pipefail

MANTISDB=${1:?usage: run.sh MANTISDB FLOOR}
FLOOR=${2:?usage: run.sh MANTISDB FLOOR}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
export MIX_KEYS=${MIX_KEYS:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)

command -v wrk >/dev/null || { echo "bench-http: wrk is not installed (make deps installs it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench-http: curl is not installed (make deps installs it)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# wait_addr FILE PATTERN: the address logged in FILE after PATTERN.
wait_addr() {
	for _ in $(seq 600); do
		a=$(sed -n "s/.*$2\([0-9.]*:[0-9]*\).*/\1/p" "$1" | head -1)
		if [ -n "$a" ]; then echo "$a"; return 0; fi
		sleep 0.1
	done
	echo "bench-http: no address in $1:" >&2; cat "$1" >&2; return 1
}

"$FLOOR" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=($FLOOR_PID)
"$MANTISDB" --port 0 --data-dir "$WORK/data" --log-level info >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
FLOOR_ADDR=$(wait_addr "$WORK/floor.log" "listening on ")
SERVER_ADDR=$(wait_addr "$WORK/server.log" "addr=")
ENGINE=$(curl -sS "http://$SERVER_ADDR/api/v1/version")
echo "bench-http: server $SERVER_ADDR ($ENGINE), floor $FLOOR_ADDR"
echo "bench-http: $(nproc) CPUs, wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, $MIX_KEYS keys"

# Preload every key the mix touches, in one atomic batch.
awk -v n="$MIX_KEYS" 'BEGIN { printf "{\"atomic\":true,\"operations\":["; for (i = 0; i < n; i++) printf "%s{\"type\":\"set\",\"key\":\"k%05d\",\"value\":\"v%015d\"}", (i ? "," : ""), i, i; print "]}" }' >"$WORK/load.json"
curl -sS -f -X POST --data-binary @"$WORK/load.json" "http://$SERVER_ADDR/api/v1/kv/batch" -o /dev/null
ENTRIES=$(curl -sS "http://$SERVER_ADDR/api/v1/stats" | sed -n 's/.*"entries":\([0-9]*\).*/\1/p')
[ "$ENTRIES" = "$MIX_KEYS" ] || { echo "bench-http: preload left $ENTRIES entries, want $MIX_KEYS" >&2; exit 1; }

RESULTS="$WORK/results"
: >"$RESULTS"
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user + system time of a process
run() { # run MIX GET_PCT TARGET ADDR ROUND PID
	c0=$(cpu_ticks "$6")
	out=$(MIX_GET_PCT=$2 wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$HERE/mix.lua" "http://$4")
	c1=$(cpu_ticks "$6")
	line=$(grep '^RESULT' <<<"$out")
	eval "${line#RESULT }"
	ops=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
	cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$TCK" -v r="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / r }')
	printf "  %-9s %-6s round %d: %9s ops/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.2f us/request  non-2xx %d  socket errors %d\n" \
		"$1" "$3" "$5" "$ops" "$(awk -v x="$p50_us" 'BEGIN{print x/1000}')" "$(awk -v x="$p99_us" 'BEGIN{print x/1000}')" \
		"$cpu_us" "$non2xx" "$socket_errors"
	echo "$1 $3 $5 $ops $p99_us $non2xx $socket_errors $cpu_us" >>"$RESULTS"
}

for r in $(seq "$ROUNDS"); do
	for mix in "get-heavy 90" "put-heavy 10"; do
		set -- $mix
		run "$1" "$2" floor "$FLOOR_ADDR" "$r" "$FLOOR_PID"
		run "$1" "$2" server "$SERVER_ADDR" "$r" "$SERVER_PID"
	done
done

echo
echo "bench-http: per mix, the median over rounds of the server/floor ratio (each round's pair ran back to back),"
echo "of the server's p99, and the best and median server ops/s; targets: ratio >= 0.70, p99 <= 5 ms, >= 100000 ops/s"
status=0
for mix in get-heavy put-heavy; do
	awk -v m="$mix" '
		function median(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$1 == m && $2 == "floor" { f[$3] = $4; fc[++nf] = $8; fp[nf] = $5 }
		$1 == m && $2 == "server" { s[$3] = $4; p[++n] = $5; o[n] = $4; sc[n] = $8; bad += $6 + $7; if ($4 > best) best = $4 }
		END {
			for (r in s) r_[++k] = s[r] / f[r]
			ratio = median(r_, k); p99 = median(p, n); med = median(o, n); fcpu = median(fc, nf); scpu = median(sc, n)
			printf "  %-9s CPU per request (median): server %.2f us, floor %.2f us: floor/server %.2f (the ratio on a machine of its own)\n",
				m, scpu, fcpu, fcpu / scpu
			printf "  %-9s ratio %.2f (%s), p99 %.2f ms (%s; the floor'"'"'s %.2f ms), %d ops/s best, %d median (%s); %d failed requests\n",
				m, ratio, (ratio >= 0.7 ? "met" : "missed"), p99 / 1000, (p99 <= 5000 ? "met" : "missed"), median(fp, nf) / 1000,
				best, med, (best >= 100000 ? "met" : "missed"), bad
			exit bad > 0
		}' "$RESULTS" || status=1
done
curl -sS "http://$SERVER_ADDR/api/v1/stats"
echo
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || { echo "bench-http: the server did not exit cleanly on SIGTERM" >&2; status=1; }
exit $status
