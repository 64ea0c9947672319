#!/usr/bin/env bash
# Dashboard queries over 30 days of 10 million messages: p50/p95 of every /stats endpoint's data
# function, as an administrator and as a group member (for docs/benchmarks.md).
#
#   scripts/bench-dashboard.sh                      # 10 million messages over 30 days, all generated
#   ELSE_BENCH_REAL_DAYS=3 scripts/bench-dashboard.sh   # 3 days generated, 27 copied (see bench.rs)
#   ELSE_BENCH_MESSAGES=1000000 scripts/bench-dashboard.sh
#
# Starts a private PostgreSQL 15 (fsync off, 1 GB shared buffers) in a temporary directory, runs
# the ignored test web::api::stats::bench, removes the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$(mktemp -d /tmp/else-bench-dashboard.XXXXXX)
say() { printf 'bench-dashboard: %s\n' "$*"; }
as_owner() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] && chown postgres "$WORK"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_owner "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w \
    -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=8GB -c TimeZone=UTC" start >/dev/null
say "PostgreSQL on 127.0.0.1:$port; ${ELSE_BENCH_MESSAGES:-10000000} messages over ${ELSE_BENCH_DAYS:-30} days, ${ELSE_BENCH_REAL_DAYS:-${ELSE_BENCH_DAYS:-30}} generated"
ELSE_BENCH_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres" \
    cargo test -p elsed --lib web::api::stats::bench -- --ignored --nocapture 2>&1 |
    grep -E '^bench-dashboard|panicked|^test result'
