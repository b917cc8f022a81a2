#!/usr/bin/env bash
# load.sh — load test of the example app with wrk, on loopback.
#
# Installs what is missing (wrk, Redis, PostgreSQL) from Debian's packages,
# starts a throwaway Redis and PostgreSQL, builds the example app once and
# runs two replicas of it on 127.0.0.1 (same secret, same Redis, same
# database), seeds USERS signed-in users with a key each through the app's
# HTTP API (loadtest/seed), then runs wrk against the guarded route and
# against the unguarded baseline, each bounded by DURATION and MAX_REQUESTS,
# rotating over the users' cookies and both replicas (loadtest/rotate.lua).
# It prints requests/s, p50 and p99 of each, and the guarded/unguarded
# throughput ratio, then stops everything it started — also on failure or
# Ctrl-C.
#
#   scripts/load.sh
#   USERS=500 DURATION=30s CONNECTIONS=64 scripts/load.sh
#
# Settings (environment):
#   USERS         users seeded, each with a key                 (default 200)
#   DURATION      wrk duration of each measured run              (default 15s)
#   WARMUP        wrk duration of the unreported warm-up runs    (default 3s)
#   CONNECTIONS   open connections, spread over the replicas     (default 32)
#   THREADS       wrk threads, one replica each in turn          (default 2)
#   MAX_REQUESTS  at most this many requests per measured run, a safety cap
#                 (default 2000000; a run that reaches it is reported as failed,
#                 since wrk divides by DURATION whatever happens)
#   GUARDED_PATH  the guarded route                              (default /demo/openai)
#   BASELINE_PATH the unguarded baseline; default /whoami when the app has
#                 it, else /favicon.ico (same middleware, no plugin)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

USERS=${USERS:-200}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
GUARDED_PATH=${GUARDED_PATH:-/demo/openai}
BASELINE_PATH=${BASELINE_PATH:-}

# load_install_deps installs what the load test needs and is missing (not
# chromium, which only the browser tests need).
load_install_deps() {
	local need=()
	command -v wrk >/dev/null 2>&1 || need+=(wrk)
	command -v curl >/dev/null 2>&1 || need+=(curl)
	command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
	[ -n "$(byok_pg_bindir)" ] || need+=(postgresql)
	command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
	[ ${#need[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		byok_log "missing ${need[*]}; run as root (or install them) so they can be installed with apt-get"
		return 1
	fi
	byok_log "installing ${need[*]} from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

WORK=""
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	byok_stop_services
	[ -n "$WORK" ] && rm -rf "$WORK"
}

load_install_deps
WORK=$(mktemp -d /tmp/byok-load.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
byok_start_services

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(go version | cut -d' ' -f3-)"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"

echo "== building the example app and the seeder"
go build -o "$WORK/example" ./example
go build -o "$WORK/seed" ./loadtest/seed

SECRET=$(head -c 32 /dev/urandom | base64 -w0)
ADDRS=()
URLS=()
for i in 1 2; do
	port=$(byok_free_port)
	mkdir -p "$WORK/data$i"
	ADDR="127.0.0.1:$port" BYOK_SECRET="$SECRET" REDIS_URL="$BYOK_TEST_REDIS_URL" \
		DATABASE_URL="$BYOK_TEST_DATABASE_URL" BYOK_DATA_DIR="$WORK/data$i" \
		"$WORK/example" >"$WORK/replica$i.log" 2>&1 &
	PIDS+=($!)
	ready=""
	for _ in $(seq 1 150); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/favicon.ico" 2>/dev/null; then
			ready=1
			break
		fi
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.2
	done
	if [ -z "$ready" ]; then
		byok_log "replica $i did not start:"
		cat "$WORK/replica$i.log" >&2
		exit 1
	fi
	ADDRS+=("127.0.0.1:$port")
	URLS+=("http://127.0.0.1:$port")
done
echo "== replicas: ${URLS[*]} (Redis $BYOK_TEST_REDIS_URL, PostgreSQL on port $BYOK_PG_PORT)"

echo "== seeding $USERS users with a key each"
"$WORK/seed" -replicas "$(IFS=,; echo "${URLS[*]}")" -users "$USERS" -out "$WORK/cookies.txt"

if [ -z "$BASELINE_PATH" ]; then
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' \
		-H "Cookie: $(head -n1 "$WORK/cookies.txt")" "${URLS[0]}/whoami" || true)
	if [ "$code" = 200 ]; then
		BASELINE_PATH=/whoami
	else
		BASELINE_PATH=/favicon.ico
	fi
fi

REDIS_PID=$(cat "$BYOK_SVC_DIR/redis/redis.pid")

# cpu_ticks PID... prints the CPU time (user + system, in clock ticks) the
# processes have used.
cpu_ticks() {
	local pid total=0
	for pid in "$@"; do
		total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
	done
	echo "$total"
}

# redis_calls prints how many commands Redis has run, INFO aside.
redis_calls() {
	redis-cli -p "$BYOK_REDIS_PORT" info commandstats |
		awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}

# run_wrk NAME PATH DURATION MAX: one wrk run; its RESULT line goes to
# $WORK/NAME.result, with the CPU time the replicas and Redis used and the
# commands Redis ran.
run_wrk() {
	local name=$1 path=$2 duration=$3 max=$4 per_thread app0 redis0 calls0
	per_thread=$(((max + THREADS - 1) / THREADS))
	app0=$(cpu_ticks "${PIDS[@]}")
	redis0=$(cpu_ticks "$REDIS_PID")
	calls0=$(redis_calls)
	LOAD_REPLICAS="$(IFS=,; echo "${ADDRS[*]}")" \
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 5s --latency \
		-s loadtest/rotate.lua "${URLS[0]}" -- "$WORK/cookies.txt" "$path" "$per_thread" >"$WORK/$name.out" 2>&1 || {
		cat "$WORK/$name.out" >&2
		return 1
	}
	grep '^RESULT ' "$WORK/$name.out" | tr -d '\n' >"$WORK/$name.result" || {
		cat "$WORK/$name.out" >&2
		return 1
	}
	echo " app_ticks=$(($(cpu_ticks "${PIDS[@]}") - app0)) redis_ticks=$(($(cpu_ticks "$REDIS_PID") - redis0))" \
		"redis_calls=$(($(redis_calls) - calls0))" >>"$WORK/$name.result"
}

# cpu_us NAME KIND prints the CPU time per request, in µs, of the replicas
# (KIND app) or Redis (KIND redis) during run NAME.
cpu_us() {
	awk -v t="$(field "$1" "$2_ticks")" -v n="$(field "$1" requests)" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
}

# field NAME KEY prints one value of a run's RESULT line.
field() { tr ' ' '\n' <"$WORK/$1.result" | sed -n "s/^$2=//p"; }

# ms MICROSECONDS prints milliseconds with two decimals.
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

echo "== warm-up: $WARMUP on each route (not reported)"
run_wrk warm-guarded "$GUARDED_PATH" "$WARMUP" 0
run_wrk warm-baseline "$BASELINE_PATH" "$WARMUP" 0

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, at most $MAX_REQUESTS requests, $USERS users over ${#URLS[@]} replicas"
run_wrk guarded "$GUARDED_PATH" "$DURATION" "$MAX_REQUESTS"
run_wrk baseline "$BASELINE_PATH" "$DURATION" "$MAX_REQUESTS"
echo "== load after: $(uptime | sed 's/.*load average/load average/')"

status=0
for run in guarded baseline; do
	if [ $(($(field $run requests) + CONNECTIONS)) -ge "$MAX_REQUESTS" ]; then
		# wrk divides by -d even when the threads stopped early.
		byok_log "$run run hit MAX_REQUESTS=$MAX_REQUESTS before $DURATION: its requests/s is not a rate; raise MAX_REQUESTS or shorten DURATION"
		status=1
	fi
	errs=$(($(field $run errors_status) + $(field $run errors_connect) + $(field $run errors_read) + $(field $run errors_write) + $(field $run errors_timeout)))
	if [ "$errs" -ne 0 ]; then
		byok_log "$run run: $errs failed requests ($(cut -d' ' -f9- "$WORK/$run.result"))"
		status=1
	fi
done

printf '\n%-10s %-16s %10s %12s %10s %10s %14s %16s %10s\n' route path requests requests/s p50 p99 "app CPU/req" "Redis CPU/req" "Redis/req"
for run in guarded baseline; do
	path=$GUARDED_PATH
	[ $run = baseline ] && path=$BASELINE_PATH
	printf '%-10s %-16s %10s %12s %10s %10s %14s %16s %10s\n' "$run" "$path" "$(field $run requests)" "$(field $run rps)" \
		"$(ms "$(field $run p50_us)")" "$(ms "$(field $run p99_us)")" "$(cpu_us $run app) µs" "$(cpu_us $run redis) µs" \
		"$(awk -v c="$(field $run redis_calls)" -v n="$(field $run requests)" 'BEGIN { printf "%.2f", c / n }')"
done
awk -v g="$(field guarded rps)" -v u="$(field baseline rps)" \
	'BEGIN { printf "\nguarded/unguarded throughput: %.1f%% (target ≥ 85%%)\n", 100 * g / u }'
awk -v ga="$(cpu_us guarded app)" -v gr="$(cpu_us guarded redis)" -v ua="$(cpu_us baseline app)" -v ur="$(cpu_us baseline redis)" \
	'BEGIN { printf "unguarded/guarded CPU per request (replicas + Redis): %.1f%%\n", 100 * (ua + ur) / (ga + gr) }'
echo "(wrk shares the cores with the replicas and Redis; other work on the machine moves requests/s, hardly the CPU per request)"
exit $status
