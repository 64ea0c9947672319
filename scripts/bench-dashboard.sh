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

source scripts/private-postgres.sh
say() { printf 'bench-dashboard: %s\n' "$*"; }

start_private_postgres bench-dashboard "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=8GB -c TimeZone=UTC"
say "PostgreSQL on 127.0.0.1:$port; ${ELSE_BENCH_MESSAGES:-10000000} messages over ${ELSE_BENCH_DAYS:-30} days, ${ELSE_BENCH_REAL_DAYS:-${ELSE_BENCH_DAYS:-30}} generated"
ELSE_BENCH_DATABASE_URL="$PG_URL" \
    cargo test -p elsed --lib web::api::stats::bench -- --ignored --nocapture 2>&1 |
    grep -E '^bench-dashboard|panicked|^test result'
