#!/usr/bin/env bash
# services.sh — install (from Debian's packages) and start a throwaway Redis and
# PostgreSQL on loopback, in a temporary directory, on ports of their own.
#
# Source it, then call:
#   byok_install_deps            install what is missing (apt-get update first)
#   byok_start_services          start Redis and PostgreSQL; exports
#                                BYOK_TEST_REDIS_URL and BYOK_TEST_DATABASE_URL
#   byok_stop_services           stop what byok_start_services started
# The system's own Redis and PostgreSQL services are never touched.

byok_log() { printf 'byok: %s\n' "$*" >&2; }

byok_pg_bindir() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
		fi
	done | sort -V | tail -n 1
}

byok_install_deps() {
	local need=()
	command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
	command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
	[ -n "$(byok_pg_bindir)" ] || need+=(postgresql)
	command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
	command -v chromium >/dev/null 2>&1 || need+=(chromium)
	[ $# -gt 0 ] && for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || need+=("$p")
	done
	if [ ${#need[@]} -eq 0 ]; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		byok_log "missing ${need[*]}; run as root (or install them) so they can be installed with apt-get"
		return 1
	fi
	byok_log "installing ${need[*]} from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# byok_free_port prints a TCP port on 127.0.0.1 that nothing listens on.
byok_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

byok_start_services() {
	BYOK_SVC_DIR=$(mktemp -d /tmp/byok-services.XXXXXX)
	export BYOK_SVC_DIR
	chmod 755 "$BYOK_SVC_DIR"

	# Redis: no persistence, loopback only.
	BYOK_REDIS_PORT=$(byok_free_port)
	export BYOK_REDIS_PORT
	mkdir -p "$BYOK_SVC_DIR/redis"
	redis-server --port "$BYOK_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$BYOK_SVC_DIR/redis" --daemonize yes \
		--pidfile "$BYOK_SVC_DIR/redis/redis.pid" --logfile "$BYOK_SVC_DIR/redis/redis.log" >/dev/null
	for _ in $(seq 1 100); do
		redis-cli -p "$BYOK_REDIS_PORT" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	redis-cli -p "$BYOK_REDIS_PORT" ping >/dev/null || { byok_log "redis did not start"; cat "$BYOK_SVC_DIR/redis/redis.log" >&2; return 1; }
	export BYOK_TEST_REDIS_URL="redis://127.0.0.1:$BYOK_REDIS_PORT/0"

	# PostgreSQL: initdb and pg_ctl refuse root, so run them as postgres.
	local bin runas=()
	bin=$(byok_pg_bindir)
	BYOK_PG_PORT=$(byok_free_port)
	export BYOK_PG_PORT
	mkdir -p "$BYOK_SVC_DIR/pg"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres:postgres "$BYOK_SVC_DIR/pg"
		runas=(runuser -u postgres --)
	fi
	"${runas[@]}" "$bin/initdb" -D "$BYOK_SVC_DIR/pg/data" -A trust -U byok --no-sync -E UTF8 >"$BYOK_SVC_DIR/pg/initdb.log" 2>&1 ||
		{ byok_log "initdb failed"; cat "$BYOK_SVC_DIR/pg/initdb.log" >&2; return 1; }
	"${runas[@]}" "$bin/pg_ctl" -D "$BYOK_SVC_DIR/pg/data" -l "$BYOK_SVC_DIR/pg/pg.log" -w -t 60 \
		-o "-p $BYOK_PG_PORT -k $BYOK_SVC_DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >/dev/null || { byok_log "postgres did not start"; cat "$BYOK_SVC_DIR/pg/pg.log" >&2; return 1; }
	psql -h 127.0.0.1 -p "$BYOK_PG_PORT" -U byok -d postgres -qAtc 'CREATE DATABASE byok_test' >/dev/null
	export BYOK_TEST_DATABASE_URL="postgres://byok@127.0.0.1:$BYOK_PG_PORT/byok_test?sslmode=disable"
	byok_log "redis on 127.0.0.1:$BYOK_REDIS_PORT, postgres on 127.0.0.1:$BYOK_PG_PORT (in $BYOK_SVC_DIR)"
}

byok_stop_services() {
	[ -n "${BYOK_SVC_DIR:-}" ] && [ -d "$BYOK_SVC_DIR" ] || return 0
	if [ -n "${BYOK_REDIS_PORT:-}" ]; then
		redis-cli -p "$BYOK_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
		if [ -f "$BYOK_SVC_DIR/redis/redis.pid" ]; then
			kill "$(cat "$BYOK_SVC_DIR/redis/redis.pid")" 2>/dev/null || true
		fi
	fi
	if [ -d "$BYOK_SVC_DIR/pg/data" ]; then
		local bin runas=()
		bin=$(byok_pg_bindir)
		[ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
		"${runas[@]}" "$bin/pg_ctl" -D "$BYOK_SVC_DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$BYOK_SVC_DIR"
	unset BYOK_SVC_DIR
}
