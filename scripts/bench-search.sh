#!/usr/bin/env bash
# Search latency (p50/p95) of the web API's message search over generated messages (issue #4's
# benchmark, for docs/benchmarks.md).
#
#   scripts/bench-search.sh [MESSAGES] [DAYS]   # default 10 000 000 messages over 30 days, into a
#                                               # private cluster on this machine, removed after
#   ELSE_BENCH_DATABASE_URL=URL scripts/bench-search.sh   # measure an already filled database
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
MESSAGES=${1:-10000000}
DAYS=${2:-30}
say() { printf 'bench-search: %s\n' "$*"; }

cd "$ROOT"
cargo build -p elsed
if [[ -z ${ELSE_BENCH_DATABASE_URL:-} ]]; then
    start_private_postgres bench-search "-c fsync=off -c shared_buffers=1GB -c max_wal_size=1GB -c wal_level=minimal -c max_wal_senders=0"
    export ELSE_BENCH_DATABASE_URL=$PG_URL
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
