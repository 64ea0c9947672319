#!/usr/bin/env bash
# What each index of log_events costs the COPY of the stored lines on dense traffic (issue 17):
# the dense input imported once, its log_events saved, then written again by PostgreSQL's own
# COPY with every index as shipped, with the (server_id, queue_id) index schema 16 had, and
# without each secondary index in turn, the variants interleaved round by round.
#
#   scripts/bench-line-indexes.sh [FLEETS] [LINES] [ROUNDS]   # 16 fleets, 245000 lines, 5 rounds
#
# PostgreSQL runs with fsync on (as a user's would), shared_buffers 256 MB, a CHECKPOINT before
# each COPY so that every one starts from the same state.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
FLEETS=${1:-16}
LINES=${2:-245000}
ROUNDS=${3:-5}
ELSED="$ROOT/target/release/elsed"
say() { printf 'bench-line-indexes: %s\n' "$*"; }

(cd "$ROOT" && cargo build --release -p elsed -p else-tests --bin elsed --bin else-dense)
start_private_postgres line-indexes "-c shared_buffers=256MB -c max_wal_size=4GB"
URL=$PG_URL
input="$WORK/dense.log"
"$ROOT/target/release/else-dense" replicate --fleets "$FLEETS" --lines "$LINES" --out "$input" 2>/dev/null
"$ELSED" migrate --database-url "$URL" >/dev/null
"$ELSED" import --force --database-url "$URL" "$input" >/dev/null
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$URL" "$@"; }
sql -c "COPY (SELECT * FROM log_events) TO '$WORK/lines.copy' (FORMAT binary)"
rows=$(sql -c "SELECT count(*) FROM log_events")
say "$rows lines in log_events ($FLEETS fleets of the recorded Postfix pair), PostgreSQL 127.0.0.1:$port, fsync on"

# The secondary indexes as shipped: name and definition.
mapfile -t shipped < <(sql -F $'\t' -c "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'log_events'::regclass AND NOT i.indisunique ORDER BY 1")
variants=("as shipped" "+ (server_id, queue_id) of schema 16")
for entry in "${shipped[@]}"; do variants+=("- ${entry%%$'\t'*}"); done

# Sets the indexes of `variant` up on the empty table, copies the lines in, prints the ms.
copy_with() {
    local variant=$1 setup="" teardown=""
    case $variant in
        "as shipped") ;;
        "+ "*) setup="CREATE INDEX bench_queue_id ON log_events (server_id, queue_id) WHERE queue_id IS NOT NULL;"
               teardown="DROP INDEX bench_queue_id;" ;;
        "- "*) local name=${variant#- } definition
               for entry in "${shipped[@]}"; do [[ ${entry%%$'\t'*} == "$name" ]] && definition=${entry#*$'\t'}; done
               setup="DROP INDEX $name;"; teardown="$definition;" ;;
    esac
    sql -c "TRUNCATE log_events; $setup" -c "CHECKPOINT"
    local ms
    ms=$(sql -c '\timing on' -c "COPY log_events FROM '$WORK/lines.copy' (FORMAT binary)" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    sql -c "TRUNCATE log_events; $teardown"
    echo "$ms"
}

declare -A times
for ((round = 1; round <= ROUNDS; round++)); do
    for variant in "${variants[@]}"; do
        times[$variant]+="$(copy_with "$variant") "
    done
    say "round $round of $ROUNDS done"
done
for variant in "${variants[@]}"; do printf '%s\t%s\n' "$variant" "${times[$variant]}"; done | python3 -c '
import statistics, sys
rows = int(sys.argv[1])
results = [(name, sorted(map(float, ms.split()))) for name, ms in (line.rstrip("\n").split("\t") for line in sys.stdin)]
base = statistics.median(results[0][1])
print("| log_events indexes | COPY ms, each round (sorted) | median | ms per 100,000 lines | vs shipped |")
print("|---|---|---:|---:|---:|")
for name, ms in results:
    median = statistics.median(ms)
    each = " ".join(f"{m:.0f}" for m in ms)
    print(f"| {name} | {each} | {median:.0f} | {median * 100000 / rows:.0f} | {median - base:+.0f} ms |")
' "$rows"
