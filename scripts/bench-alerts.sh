#!/usr/bin/env bash
# The cost of one evaluation of every alert rule over 30 days of 10 million messages (issue 20's
# goal: under 1 s), for docs/benchmarks.md.
#
#   scripts/bench-alerts.sh [MESSAGES] [DAYS]   # default 10 000 000 messages over 30 days, into a
#                                               # private cluster on this machine, removed after
#   ELSE_BENCH_PROFILE=release scripts/bench-alerts.sh   # the test built in release (make bench)
#
# Starts a private PostgreSQL 15 (fsync off, 1 GB shared buffers), fills it with
# scripts/bench-alerts-data.sql (what the rules read), runs the ignored test alerts::bench, and
# prints the plans auto_explain logged for the queries over 50 ms.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
MESSAGES=${1:-10000000}
DAYS=${2:-30}
PROFILE=()
if [[ ${ELSE_BENCH_PROFILE:-dev} == release ]]; then PROFILE=(--release); fi
say() { printf 'bench-alerts: %s\n' "$*"; }

cd "$ROOT"
cargo build -p elsed
start_private_postgres bench-alerts "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=8GB -c TimeZone=UTC"
ELSE_CONFIG=/dev/null target/debug/elsed migrate --database-url "$PG_URL" >/dev/null
say "generating $MESSAGES messages over $DAYS days (PostgreSQL on 127.0.0.1:$port, fsync off)"
start=$(date +%s)
psql -q -v messages="$MESSAGES" -v days="$DAYS" -f scripts/bench-alerts-data.sql "$PG_URL" >/dev/null
say "generated in $(( $(date +%s) - start )) s; database size $(psql -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))" "$PG_URL")"
ELSE_BENCH_DATABASE_URL="$PG_URL" \
    cargo test "${PROFILE[@]}" -p elsed --lib alerts::bench -- --ignored --nocapture 2>&1 |
    grep -E '^bench-alerts|panicked|^test result'
say "plans of the queries over 50 ms (auto_explain):"
grep -A80 'duration: ' "$WORK/server.log" | grep -v '^--$' | sed 's/^/    /' || say "none"
