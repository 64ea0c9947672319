#!/usr/bin/env bash
# `elsed import` end to end into PostgreSQL: lines/s and peak memory (for docs/benchmarks.md).
#
#   scripts/bench-import.sh [COPIES]   # the real MX log of ../shared/corpora, COPIES times (default 10)
#                                      # under other host names, into a private cluster on this machine
#   scripts/bench-import.sh dense [FLEETS] [LINES]   # the dense input: the recorded Postfix pair of
#                                      # tests/fixtures/dense as FLEETS fleets (16), LINES lines (245000)
#   ELSE_BENCH_INPUT=FILE scripts/bench-import.sh   # import FILE instead (scripts/bench-scale.sh)
#
# Prints lines/s, elsed's peak resident set and the database's size after the import.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
CORPORA=${ELSE_CORPORA:-"$ROOT/../shared/corpora"}
COPIES=${1:-10}
ELSED="$ROOT/target/release/elsed"
say() { printf 'bench-import: %s\n' "$*"; }

[[ -x $ELSED ]] || (cd "$ROOT" && cargo build --release -p elsed)
[[ -n ${ELSE_BENCH_INPUT:-} || $COPIES == dense || -f $CORPORA/postfix-logsums/mail.log.gz ]] || { say "needs $CORPORA/postfix-logsums/mail.log.gz"; exit 1; }
start_private_postgres bench-import "-c fsync=off -c shared_buffers=256MB -c max_wal_size=4GB"
URL=$PG_URL

if [[ $COPIES == dense ]]; then
    input="$WORK/dense.log"
    [[ -x $ROOT/target/release/else-dense ]] || (cd "$ROOT" && cargo build --release -p else-tests --bin else-dense)
    "$ROOT/target/release/else-dense" replicate --fleets "${2:-16}" --lines "${3:-245000}" --out "$input" 2>"$WORK/replication.json"
    say "$(wc -l <"$input") lines (the recorded Postfix pair as ${2:-16} fleets: $(cat "$WORK/replication.json")), PostgreSQL on 127.0.0.1:$port (fsync off)"
elif [[ -n ${ELSE_BENCH_INPUT:-} ]]; then
    input=$ELSE_BENCH_INPUT
    say "$(wc -l <"$input") lines of $input, PostgreSQL on 127.0.0.1:$port (fsync off)"
else
    input="$WORK/mail.log"
    for i in $(seq 1 "$COPIES"); do zcat "$CORPORA/postfix-logsums/mail.log.gz" | sed "s/ helga / helga$i /"; done >"$input"
    say "$(wc -l <"$input") lines ($COPIES copies of the real MX log under other host names), PostgreSQL on 127.0.0.1:$port (fsync off)"
fi
"$ELSED" migrate --database-url "$URL" >/dev/null
/usr/bin/time -v "$ELSED" import --force --database-url "$URL" --json "$input" >"$WORK/summary.json" 2>"$WORK/time.txt"
python3 - "$WORK/summary.json" "$WORK/time.txt" <<'PY'
import json, re, sys
summary = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text).group(1)
lines = summary.get("lines")
seconds = summary.get("duration_seconds") or summary.get("seconds")
rate = summary.get("lines_per_second")
print(f"bench-import: {lines} lines in {seconds} s = {rate:.0f} lines/s (wall {wall}), peak RSS {rss/1024:.0f} MiB")
PY
size=$(psql -Atc "SELECT pg_database_size(current_database()) || ' ' || pg_size_pretty(pg_database_size(current_database()))" "$URL")
say "database size ${size%% *} bytes (${size#* })"
