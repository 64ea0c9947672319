#!/usr/bin/env bash
# Search latency (p50/p95) of the web API's message search over generated messages (issue #4's
# benchmark, for docs/benchmarks.md).
#
#   scripts/bench-search.sh [MESSAGES] [DAYS]   # default 10 000 000 messages over 30 days, into a
#                                               # private cluster on this machine, removed after
#   ELSE_BENCH_DATABASE_URL=URL scripts/bench-search.sh   # measure an already filled database
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MESSAGES=${1:-10000000}
DAYS=${2:-30}
say() { printf 'bench-search: %s\n' "$*"; }
as_owner() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cd "$ROOT"
cargo build -p elsed
if [[ -z ${ELSE_BENCH_DATABASE_URL:-} ]]; then
    WORK=$(mktemp -d /tmp/else-bench-search.XXXXXX)
    cleanup() { as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
    trap cleanup EXIT
    [[ $(id -u) -eq 0 ]] && chown postgres "$WORK"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
    as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w \
        -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=1GB -c max_wal_size=1GB -c wal_level=minimal -c max_wal_senders=0" start >/dev/null
    export ELSE_BENCH_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    ELSE_CONFIG=/dev/null target/debug/elsed migrate --database-url "$ELSE_BENCH_DATABASE_URL" >/dev/null
    say "generating $MESSAGES messages over $DAYS days (PostgreSQL on 127.0.0.1:$port, fsync off)"
    start=$(date +%s)
    psql -q -v messages="$MESSAGES" -v days="$DAYS" -f scripts/bench-search-data.sql "$ELSE_BENCH_DATABASE_URL" >/dev/null
    say "generated in $(( $(date +%s) - start )) s"
fi
size=$(psql -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))" "$ELSE_BENCH_DATABASE_URL")
say "database size $size"
cargo test -p elsed --lib -- --ignored --nocapture --exact web::api::bench::search_latency 2>&1 |
    grep -E '^(\||[0-9]+ messages|skipped)'
