#!/usr/bin/env bash
# What each index of a table costs the writes of dense traffic (issue 17): the dense input
# imported once, the table's rows saved, then written again by PostgreSQL's own COPY with every
# index as shipped, with an index tried beside them (for log_events: the (server_id, queue_id)
# index of schemas 1-16), and without each secondary index in turn, the variants interleaved
# round by round.
#
#   scripts/bench-indexes.sh [TABLE] [FLEETS] [LINES] [ROUNDS]   # log_events, 16 fleets,
#                                                                # 245000 lines, 5 rounds
#   ELSE_BENCH_EXTRA_INDEX='(lower(sender))' scripts/bench-indexes.sh messages   # another index to try
#
# PostgreSQL runs with fsync on (as a user's would), shared_buffers 256 MB, a CHECKPOINT before
# each COPY so that every one starts from the same state.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
TABLE=${1:-log_events}
FLEETS=${2:-16}
LINES=${3:-245000}
ROUNDS=${4:-5}
if [[ $TABLE == log_events ]]; then
    EXTRA=${ELSE_BENCH_EXTRA_INDEX-"(server_id, queue_id) WHERE queue_id IS NOT NULL"}
else
    EXTRA=${ELSE_BENCH_EXTRA_INDEX:-}
fi
ELSED="$ROOT/target/release/elsed"
say() { printf 'bench-indexes: %s\n' "$*"; }

(cd "$ROOT" && cargo build --release -p elsed -p else-tests --bin elsed --bin else-dense)
start_private_postgres indexes "-c shared_buffers=256MB -c max_wal_size=4GB"
URL=$PG_URL
input="$WORK/dense.log"
"$ROOT/target/release/else-dense" replicate --fleets "$FLEETS" --lines "$LINES" --out "$input" 2>/dev/null
"$ELSED" migrate --database-url "$URL" >/dev/null
"$ELSED" import --force --database-url "$URL" "$input" >/dev/null
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$URL" "$@"; }
sql -c "COPY (SELECT * FROM $TABLE) TO '$WORK/rows.copy' (FORMAT binary)"
rows=$(sql -c "SELECT count(*) FROM $TABLE")
say "$rows rows in $TABLE (an import of $LINES lines: $FLEETS fleets of the recorded Postfix pair), PostgreSQL 127.0.0.1:$port, fsync on"

# The secondary indexes as shipped: name and definition.
mapfile -t shipped < <(sql -F $'\t' -c "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '$TABLE'::regclass AND NOT i.indisunique ORDER BY 1")
# How many indexes each partition has as shipped: every variant is checked to give them back.
partition_indexes="SELECT count(*) FROM pg_inherits h JOIN pg_index i ON i.indrelid = h.inhrelid
    WHERE h.inhparent = '$TABLE'::regclass"
indexes_as_shipped=$(sql -c "$partition_indexes")
variants=("as shipped")
[[ -z $EXTRA ]] || variants+=("+ $EXTRA")
for entry in "${shipped[@]}"; do variants+=("- ${entry%%$'\t'*}"); done

# Sets the indexes of `variant` up on the empty table, copies the lines in, prints the ms.
copy_with() {
    local variant=$1 setup="" teardown=""
    case $variant in
        "as shipped") ;;
        "+ "*) setup="CREATE INDEX bench_extra ON $TABLE $EXTRA;"
               teardown="DROP INDEX bench_extra;" ;;
        "- "*) local name=${variant#- } definition
               for entry in "${shipped[@]}"; do [[ ${entry%%$'\t'*} == "$name" ]] && definition=${entry#*$'\t'}; done
               # pg_get_indexdef says ON ONLY for a partitioned table: that would not reach its partitions.
               setup="DROP INDEX $name;"; teardown="${definition/ ON ONLY / ON };" ;;
    esac
    sql -c "TRUNCATE $TABLE; $setup" -c "CHECKPOINT"
    local ms
    ms=$(sql -c '\timing on' -c "COPY $TABLE FROM '$WORK/rows.copy' (FORMAT binary)" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    [[ $(sql -c "SELECT count(*) FROM $TABLE") == "$rows" ]] || { say "the COPY into $TABLE stored other than $rows rows" >&2; exit 1; }
    sql -c "TRUNCATE $TABLE; $teardown"
    [[ $(sql -c "$partition_indexes") == "$indexes_as_shipped" ]] || { say "$variant: the partitions' indexes were not given back" >&2; exit 1; }
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
print(f"| {sys.argv[2]} indexes | COPY ms, each round (sorted) | median | ms per 100,000 rows | vs shipped |")
print("|---|---|---:|---:|---:|")
for name, ms in results:
    median = statistics.median(ms)
    each = " ".join(f"{m:.0f}" for m in ms)
    print(f"| {name} | {each} | {median:.0f} | {median * 100000 / rows:.0f} | {median - base:+.0f} ms |")
' "$rows" "$TABLE"
