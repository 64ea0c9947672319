#!/usr/bin/env bash
# Search latency (p50/p95/max) of the web API's message search over generated messages, in the
# three states production sees (issue 21):
#   1. right after loading: measured at once after the load and `elsed maintain` (the shipped
#      timer runs it every 5 minutes), run until it has frozen every finished day, as it does
#      each day in production, while autovacuum catches up with the new rows;
#   2. after VACUUM ANALYZE;
#   3. with a vacuum busy: a VACUUM (FREEZE, DISABLE_PAGE_SKIPPING) of messages and recipients runs
#      beside the searches again and again, as autovacuum's anti-wraparound pass does, without its
#      cost delay and reading even the all-frozen pages (harsher than autovacuum).
#
#   scripts/bench-search.sh [MESSAGES] [DAYS]   # default 10 000 000 messages over 30 days, into a
#                                               # private cluster on this machine, removed after
#   ELSE_BENCH_DATABASE_URL=URL scripts/bench-search.sh   # measure an already filled database
#                                               # (state 1 is then the state it is found in)
#   ELSE_BENCH_STATES="1 2 3"                   # which states to measure, in this order ("": none)
#   ELSE_BENCH_WORKERS=N                        # sessions that generate (default: the cores)
#   ELSE_BENCH_KEEP=1                           # leave the private cluster running afterwards
#   ELSE_BENCH_REFUSALS=R                       # refusals generated per message (default 0.5)
#   ELSE_BENCH_FREEZE_BESIDE=1                  # after generating, first measure the searches
#                                               # while elsed maintain freezes the finished days
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
MESSAGES=${1:-10000000}
DAYS=${2:-30}
STATES=${ELSE_BENCH_STATES-1 2 3}
WORKERS=${ELSE_BENCH_WORKERS:-$(nproc)}
REFUSALS=${ELSE_BENCH_REFUSALS:-0.5}
say() { printf 'bench-search: %s\n' "$*"; }

cd "$ROOT"
cargo build -p elsed
cargo test -p elsed --lib --no-run 2>/dev/null
if [[ -z ${ELSE_BENCH_DATABASE_URL:-} ]]; then
    start_private_postgres bench-search "-c fsync=off -c shared_buffers=1GB -c max_wal_size=1GB -c wal_level=minimal -c max_wal_senders=0"
    if [[ -n ${ELSE_BENCH_KEEP:-} ]]; then
        trap - EXIT
        say "kept after the run: $PG_URL (stop: as postgres, pg_ctl -D $WORK/data stop)"
    fi
    export ELSE_BENCH_DATABASE_URL=$PG_URL
    ELSE_CONFIG=/dev/null target/debug/elsed migrate --database-url "$ELSE_BENCH_DATABASE_URL" >/dev/null
    say "generating $MESSAGES messages and $REFUSALS refusals per message over $DAYS days in $WORKERS sessions (PostgreSQL on 127.0.0.1:$port, fsync off)"
    start=$(date +%s)
    data=(-q -v messages="$MESSAGES" -v days="$DAYS" -v refusals="$REFUSALS" -f scripts/bench-search-data.sql)
    psql "${data[@]}" -v setup=true "$ELSE_BENCH_DATABASE_URL" >/dev/null
    pids=()
    for ((w = 0; w < WORKERS; w++)); do
        psql "${data[@]}" -v setup=false -v worker=$w -v workers="$WORKERS" "$ELSE_BENCH_DATABASE_URL" >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    say "generated in $(( $(date +%s) - start )) s"
    generated=1
fi
sql() { psql -XAtqc "$1" "$ELSE_BENCH_DATABASE_URL"; }
say "database size $(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")"

# The vacuums at work (autovacuum's and ours), for the record of each state.
vacuums() {
    sql "SELECT count(*) FILTER (WHERE backend_type = 'autovacuum worker') || ' autovacuum worker(s), '
                || count(*) FILTER (WHERE backend_type = 'client backend' AND query ILIKE 'VACUUM%') || ' VACUUM'
         FROM pg_stat_activity WHERE state <> 'idle' OR backend_type = 'autovacuum worker'"
}

measure() {
    local label=$1 out
    say "state: $label; at start: $(vacuums); load $(cut -d' ' -f1-3 /proc/loadavg)"
    if ! out=$(ELSE_BENCH_STATE=$label cargo test -p elsed --lib -- --ignored --nocapture --exact web::api::bench::search_latency 2>&1); then
        printf '%s\n' "$out" | tail -30
        say "the benchmark failed in state: $label"
        return 1
    fi
    grep -E '^(\||[0-9]+ messages)' <<<"$out"
    say "at end: $(vacuums)"
}

# What the shipped else-maintain timer does after any load: among others, the statistics of the
# partitioned tables as a whole, which autovacuum never takes, and the freezing of the finished
# days (a bounded time per run: the runs follow each other until none is left, as the days of a
# database that has run for weeks are all frozen).
maintain_until_frozen() {
    local start runs=0 left
    start=$(date +%s)
    while :; do
        ELSE_CONFIG=/dev/null target/debug/elsed maintain --database-url "$ELSE_BENCH_DATABASE_URL" >"$WORK/maintain.log" 2>&1 ||
            { cat "$WORK/maintain.log"; return 1; }
        runs=$((runs + 1))
        left=$(grep -o 'left_for_the_next_runs=[0-9]*' "$WORK/maintain.log" | cut -d= -f2)
        [[ -n $left ]] || { cat "$WORK/maintain.log"; say "elsed maintain did not say what it left to freeze"; return 1; }
        [[ $left == 0 ]] && break
    done
    say "elsed maintain: $runs runs in $(( $(date +%s) - start )) s, until no finished day was left to freeze"
}

if [[ -n ${generated:-} && -n ${ELSE_BENCH_FREEZE_BESIDE:-} ]]; then
    # The searches while elsed maintain freezes the finished days (throttled), measured once its
    # first VACUUM (FREEZE) is under way; the states below come after it has finished.
    maintain_until_frozen &
    maintaining=$!
    for _ in $(seq 600); do
        [[ $(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM (FREEZE) %'") != 0 ]] && break
        sleep 1
    done
    measure "while elsed maintain freezes the finished days" || { kill "$maintaining"; exit 1; }
    say "at the searches' end elsed maintain was $(kill -0 "$maintaining" 2>/dev/null && echo 'still freezing' || echo 'done')"
    wait "$maintaining"
elif [[ -n ${generated:-} ]]; then
    maintain_until_frozen
fi

for state in $STATES; do
    case $state in
    1) measure "right after loading" ;;
    2)
        start=$(date +%s)
        sql "VACUUM (ANALYZE) messages, recipients, rejects"
        say "VACUUM ANALYZE of messages, recipients and rejects took $(( $(date +%s) - start )) s"
        measure "after VACUUM ANALYZE"
        ;;
    3)
        # Each pass's end is recorded: the first pass after a load freezes (writes) the pages no
        # one froze before, later ones only read them, and the report says which ran when.
        passes=$(mktemp /tmp/else-bench-vacuum-passes.XXXXXX)
        began=$(date +%s)
        ( while :; do
              sql "VACUUM (FREEZE, DISABLE_PAGE_SKIPPING) messages, recipients, rejects"
              echo "$(( $(date +%s) - began ))" >>"$passes"
          done ) >/dev/null 2>&1 &
        busy=$!
        stop_vacuum() {
            kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null || true
            sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'VACUUM (FREEZE%' AND pid <> pg_backend_pid()" >/dev/null
        }
        sleep 5
        measure "vacuum busy (VACUUM FREEZE of every partition beside)" || { stop_vacuum; exit 1; }
        ended=$(( $(date +%s) - began ))
        stop_vacuum
        if [[ -s $passes ]]; then
            ends="$(wc -l <"$passes") vacuum passes ended, the first after $(head -1 "$passes") s, the last after $(tail -1 "$passes") s"
        else
            ends="no vacuum pass ended: they ran in the first"
        fi
        say "the searches ran from 5 s to $ended s after the vacuum loop began; $ends"
        rm -f "$passes"
        ;;
    *) say "unknown state $state (1, 2 or 3)"; exit 2 ;;
    esac
done
