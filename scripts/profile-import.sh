#!/usr/bin/env bash
# Where the time of `elsed import` goes on dense traffic (issue 17): elsed's own CPU beside the
# statements PostgreSQL ran for it, from pg_stat_statements (for docs/benchmarks.md).
#
#   scripts/profile-import.sh [FLEETS] [LINES]   # the dense input (tests/fixtures/dense) as FLEETS
#                                                # fleets (16), LINES lines (245000)
#
# PostgreSQL runs with fsync on (as a user's would), shared_buffers 256 MB.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
FLEETS=${1:-16}
LINES=${2:-245000}
ELSED="$ROOT/target/release/elsed"
say() { printf 'profile-import: %s\n' "$*"; }

(cd "$ROOT" && cargo build --release -p elsed -p else-tests --bin elsed --bin else-dense)
start_private_postgres profile-import \
    "-c shared_buffers=256MB -c max_wal_size=4GB -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_io_timing=on"
URL=$PG_URL
input="$WORK/dense.log"
"$ROOT/target/release/else-dense" replicate --fleets "$FLEETS" --lines "$LINES" --out "$input" 2>/dev/null
say "$(wc -l <"$input") lines (the recorded Postfix pair as $FLEETS fleets), PostgreSQL 127.0.0.1:$port, fsync on"
"$ELSED" migrate --database-url "$URL" >/dev/null
psql -q -Atc "CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();" "$URL" >/dev/null
/usr/bin/time -f '%e %U %S' -o "$WORK/time.txt" "$ELSED" import --force --database-url "$URL" --json "$input" >"$WORK/summary.json"
read -r wall user sys <"$WORK/time.txt"
python3 - "$WORK/summary.json" "$wall" "$user" "$sys" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
wall, user, system = map(float, sys.argv[2:5])
print(f"profile-import: {summary['lines']} lines in {wall:.1f} s wall = {summary['lines'] / wall:.0f} lines/s; "
      f"elsed CPU {user + system:.1f} s ({user:.1f} user, {system:.1f} system)")
PY
psql -q -At -F ' | ' "$URL" <<'SQL'
SELECT 'profile-import: PostgreSQL statements: ' || round(sum(total_exec_time)::numeric / 1000, 1) || ' s in '
       || sum(calls) || ' calls'
FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%';
SELECT '| ' || round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) || ' % | '
       || round(total_exec_time::numeric / 1000, 2) || ' s | ' || calls || ' | ' || rows || ' | `'
       || left(regexp_replace(query, '\s+', ' ', 'g'), 110) || '` |'
FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
ORDER BY total_exec_time DESC LIMIT 15;
SQL
