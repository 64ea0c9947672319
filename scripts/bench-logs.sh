#!/usr/bin/env bash
# The raw-line view as a group member (GET /logs: every line checked against the caller's scope,
# issue 16): p50/p95 next to an administrator's, on dense traffic imported with `elsed import`.
#
#   scripts/bench-logs.sh [FLEETS] [LINES]   # the dense input as FLEETS fleets (64), LINES lines
#                                            # (2 000 000), into a private cluster, removed after
#   ELSE_BENCH_DATABASE_URL=URL scripts/bench-logs.sh   # measure an already filled database
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
FLEETS=${1:-64}
LINES=${2:-2000000}
say() { printf 'bench-logs: %s\n' "$*"; }

cd "$ROOT"
cargo build --release -p elsed -p else-tests --bin elsed --bin else-dense
if [[ -z ${ELSE_BENCH_DATABASE_URL:-} ]]; then
    start_private_postgres bench-logs "-c fsync=off -c shared_buffers=1GB -c max_wal_size=4GB"
    export ELSE_BENCH_DATABASE_URL=$PG_URL
    target/release/else-dense replicate --fleets "$FLEETS" --lines "$LINES" --out "$WORK/dense.log" 2>"$WORK/replication.json"
    say "importing $(wc -l <"$WORK/dense.log") lines ($(cat "$WORK/replication.json")), PostgreSQL on 127.0.0.1:$port (fsync off)"
    ELSE_CONFIG=/dev/null target/release/elsed migrate --database-url "$ELSE_BENCH_DATABASE_URL" >/dev/null
    start=$(date +%s)
    ELSE_CONFIG=/dev/null target/release/elsed import --force --database-url "$ELSE_BENCH_DATABASE_URL" "$WORK/dense.log" >/dev/null
    say "imported in $(( $(date +%s) - start )) s"
    psql -qc "VACUUM ANALYZE" "$ELSE_BENCH_DATABASE_URL"
fi
size=$(psql -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))" "$ELSE_BENCH_DATABASE_URL")
say "database size $size"
cargo test -p elsed --lib -- --ignored --nocapture --exact web::api::bench::logs_latency 2>&1 |
    grep -E '^(\||[0-9]+ lines|skipped|thread|assert)'
