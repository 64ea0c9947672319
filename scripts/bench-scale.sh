#!/usr/bin/env bash
# How each cost grows from 1 to 10 to 100 million events (log lines; about ten lines make one
# message): parser + correlator in memory, `elsed import` into PostgreSQL, message search and
# dashboard latency. Appends each figure to docs/bench-scale.tsv (with the load average and the
# time it was measured), then draws docs/bench-scale.svg and prints the table of docs/benchmarks.md.
#
#   scripts/bench-scale.sh                 # every step below, in this order
#   scripts/bench-scale.sh pipeline        # parse + correlate + rows in memory, 1M / 10M / 100M lines
#   scripts/bench-scale.sh import          # elsed import, 1M / 10M lines (100M when the disk allows)
#   scripts/bench-scale.sh search          # scripts/bench-search.sh over 100k / 1M / 10M messages
#   scripts/bench-scale.sh dashboard       # scripts/bench-dashboard.sh over 100k / 1M / 10M messages
#   scripts/bench-scale.sh plot            # only the SVG and the table, from docs/bench-scale.tsv
#
# ELSE_SCALE_SIZES="1000000 10000000" limits the sizes (events); ELSE_BENCH_DISK_LIMIT_GB (default
# 20) is the most disk an import or a search database may take: a size whose estimate (the import:
# linearly from the size below it, plus the input file; the search: 1,100 bytes a message) exceeds
# it, or the free space less 2 GiB, is not run; the import's estimate is recorded as such.
# A step re-run replaces its own rows of the same size. Lines come from ../shared/corpora (read at
# run time, never copied): the real MX log as a fleet of ten hosts over successive days
# (omelse/benches/scale.rs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TSV=docs/bench-scale.tsv
SVG=docs/bench-scale.svg
SIZES=${ELSE_SCALE_SIZES:-"1000000 10000000 100000000"}
LIMIT_GB=${ELSE_BENCH_DISK_LIMIT_GB:-20}
say() { printf 'bench-scale: %s\n' "$*"; }
trim() { sed -E 's/^ +| +$//g' <<<"$1"; }
free_bytes() { df -B1 --output=avail /tmp | tail -1; }
# fits BYTES: true when BYTES stay under the limit and leave 2 GiB free on /tmp's disk.
fits() { (( $1 <= LIMIT_GB * 1073741824 && $1 + 2147483648 <= $(free_bytes) )); }
load() { cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/'; }

[[ -f $TSV ]] || printf 'cost\tevents\tfigure\tvalue\tunit\tload_1_5_15\tmeasured_utc\n' >"$TSV"

# record COST EVENTS FIGURE VALUE UNIT LOAD: replaces the row of the same cost, events and figure.
record() {
    local when
    when=$(date -u +%Y-%m-%dT%H:%MZ)
    awk -F'\t' -v c="$1" -v e="$2" -v f="$3" '!($1 == c && $2 == e && $3 == f)' "$TSV" >"$TSV.new"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$when" >>"$TSV.new"
    mv "$TSV.new" "$TSV"
    say "$1 at $2 events: $3 = $4 $5 (load $6)"
}

step_pipeline() {
    cargo build --release -p omelse --bench scale >/dev/null 2>&1 || cargo build --release -p omelse --bench scale
    for n in $SIZES; do
        local l out
        l=$(load)
        out=$(cargo bench -q -p omelse --bench scale -- pipeline "$n" 2>/dev/null | tee >(cat >&2) | grep '^scale-pipeline: lines=')
        record pipeline "$n" lines_per_s "$(sed -E 's/.*lines_per_s=([0-9]+).*/\1/' <<<"$out")" "lines/s" "$l"
        record pipeline "$n" lines_per_cpu_s "$(sed -E 's/.*lines_per_cpu_s=([0-9]+).*/\1/' <<<"$out")" "lines/CPU-s" "$l"
        record pipeline "$n" peak_rss "$(sed -E 's/.*peak_rss_kib=([0-9]+).*/\1/' <<<"$out" | awk '{printf "%.1f", $1/1024}')" "MiB" "$l"
    done
}

step_import() {
    # As scripts/bench-import.sh: elsed is built when missing (make bench builds the workspace first).
    [[ -x target/release/elsed ]] || cargo build --release -p elsed
    cargo build --release -p omelse --bench scale >/dev/null 2>&1 || cargo build --release -p omelse --bench scale
    local dir previous_bytes="" previous_n=""
    dir=$(mktemp -d /tmp/else-bench-scale.XXXXXX)
    trap 'rm -rf "$dir"' RETURN
    for n in $SIZES; do
        # Input (about 150 bytes a line) and database, estimated from the size below.
        if [[ -n $previous_bytes ]]; then
            local estimate=$(( previous_bytes * n / previous_n + n * 150 ))
            if ! fits "$estimate"; then
                record import "$n" database_size_extrapolated "$(awk -v b="$previous_bytes" -v n="$n" -v p="$previous_n" 'BEGIN{printf "%.1f", b*n/p/1073741824}')" "GiB" "$(load)"
                say "import of $n lines not run: about $(( estimate / 1073741824 )) GiB needed (database extrapolated linearly from $previous_n lines, plus the input file), more than ELSE_BENCH_DISK_LIMIT_GB=$LIMIT_GB or the free space less 2 GiB; free now: $(( $(free_bytes) / 1073741824 )) GiB"
                continue
            fi
        fi
        cargo bench -q -p omelse --bench scale -- write "$n" "$dir/mail.log" 2>/dev/null
        local l out
        l=$(load)
        out=$(ELSE_BENCH_INPUT="$dir/mail.log" bash scripts/bench-import.sh | tee >(cat >&2))
        rm -f "$dir/mail.log"
        record import "$n" lines_per_s "$(grep -oE '= [0-9]+ lines/s' <<<"$out" | grep -oE '[0-9]+')" "lines/s" "$l"
        record import "$n" peak_rss "$(grep -oE 'peak RSS [0-9]+' <<<"$out" | grep -oE '[0-9]+')" "MiB" "$l"
        previous_bytes=$(grep -oE 'database size [0-9]+' <<<"$out" | grep -oE '[0-9]+')
        previous_n=$n
        record import "$n" database_size "$(awk -v b="$previous_bytes" 'BEGIN{printf "%.2f", b/1073741824}')" "GiB" "$l"
    done
}

step_search() {
    for n in $SIZES; do
        local messages=$(( n / 10 )) l out
        # About 1,000 bytes a message (10 GB for 10 million in the run of docs/benchmarks.md).
        if ! fits $(( messages * 1100 )); then
            say "search over $messages messages not run: about $(( messages * 1100 / 1073741824 )) GiB needed, free $(( $(free_bytes) / 1073741824 )) GiB, limit $LIMIT_GB GiB"
            continue
        fi
        l=$(load)
        out=$(bash scripts/bench-search.sh "$messages" 30 | tee >(cat >&2))
        while IFS='|' read -r _ name _ p50 p95 _; do
            name=$(trim "$name")
            [[ $name =~ ^(exact recipient|sender domain|Message-ID|exact recipient, group member) ]] || continue
            local key=${name%% (*}
            key=${key//, /_}
            key=${key// /_}
            record search "$n" "${key}_p50" "$(trim "$p50")" ms "$l"
            record search "$n" "${key}_p95" "$(trim "$p95")" ms "$l"
        done < <(grep '^|' <<<"$out")
        record search "$n" database_size "$(grep -oE 'database size .*' <<<"$out" | sed 's/database size //')" "" "$l"
    done
}

step_dashboard() {
    for n in $SIZES; do
        local messages=$(( n / 10 )) l out
        l=$(load)
        out=$(ELSE_BENCH_MESSAGES=$messages ELSE_BENCH_REAL_DAYS=${ELSE_BENCH_REAL_DAYS:-3} bash scripts/bench-dashboard.sh | tee >(cat >&2))
        # The slowest endpoint's p50 and p95, for each scope.
        for scope in admin group; do
            local worst
            worst=$(grep -E "^bench-dashboard: /stats/.*\| $scope \|" <<<"$out" | awk -F'|' '{gsub(/ /,"",$3); gsub(/ /,"",$4); if ($4+0 > p95) {p95=$4+0; p50=$3+0; name=$1}} END {sub(/bench-dashboard: /,"",name); gsub(/ +$/,"",name); print p50, p95, name}')
            read -r p50 p95 name <<<"$worst"
            record dashboard "$n" "slowest_${scope}_p50" "$p50" "ms ($name)" "$l"
            record dashboard "$n" "slowest_${scope}_p95" "$p95" "ms ($name)" "$l"
        done
        # What grows with the traffic: rolling up one generated day, and one live refresh.
        record dashboard "$n" rollup_per_day "$(grep -oE 'rolled up in [0-9.]+' <<<"$out" | awk '{s += $4; n++} END {printf "%.1f", s / n}')" "s" "$l"
        record dashboard "$n" live_refresh "$(grep -oE 'live refresh of one hour on 4 servers: [0-9]+' <<<"$out" | grep -oE '[0-9]+$')" "ms" "$l"
    done
}

# value COST EVENTS FIGURE: the recorded value, or nothing.
value() { awk -F'\t' -v c="$1" -v e="$2" -v f="$3" '$1 == c && $2 == e && $3 == f {v=$4} END {print v}' "$TSV"; }

step_plot() {
    local data
    data=$(mktemp -d /tmp/else-bench-plot.XXXXXX)
    trap 'rm -rf "$data"' RETURN
    # One file per series: events, value (only sizes measured).
    series() {
        local name=$1 cost=$2 figure=$3
        : >"$data/$name"
        for n in 1000000 10000000 100000000; do
            local v
            v=$(value "$cost" "$n" "$figure")
            [[ -n $v ]] && printf '%s %s\n' "$n" "$v" >>"$data/$name"
        done
        true
    }
    series pipeline_rate pipeline lines_per_s
    series pipeline_cpu pipeline lines_per_cpu_s
    series import_rate import lines_per_s
    series pipeline_rss pipeline peak_rss
    series import_rss import peak_rss
    series import_db import database_size
    series import_db_x import database_size_extrapolated
    series search_rcpt search exact_recipient_p95
    series search_domain search sender_domain_p95
    series search_msgid search Message-ID_p95
    series dash_admin dashboard slowest_admin_p95
    series dash_group dashboard slowest_group_p95
    series dash_rollup dashboard rollup_per_day
    series dash_live dashboard live_refresh
    awk '{print $1, $2 / 1000}' "$data/dash_live" >"$data/dash_live.s" && mv "$data/dash_live.s" "$data/dash_live"
    # The extrapolated database size continues the measured line.
    [[ -s $data/import_db_x ]] && tail -1 "$data/import_db" | cat - "$data/import_db_x" >"$data/import_db_x2" || : >"$data/import_db_x2"
    plot_if() { [[ -s $data/$1 ]] && printf "'%s' using 1:2 with linespoints title '%s'%s" "$data/$1" "$2" "$3"; }
    join_plots() { local out="" p; for p in "$@"; do [[ -n $p ]] && out+="${out:+, }$p"; done; echo "${out:-1/0 notitle}"; }
    gnuplot <<EOF
set terminal svg size 1000,1100 dynamic enhanced font 'sans,11' background '#ffffff'
set output '$SVG'
set multiplot layout 3,2 title "ELSE: costs from 1 to 100 million events (log lines; 10 lines ≈ 1 message)\nscripts/bench-scale.sh — 2 vCPU shared; load averages in docs/bench-scale.tsv"
set logscale x
set xrange [700000:140000000]
set xtics ("1M" 1000000, "10M" 10000000, "100M" 100000000)
set xlabel 'events (log lines)'
set grid
set key top left
set title 'throughput'
set ylabel 'lines/s'
set logscale y
set format y '%.0s%c'
plot $(join_plots "$(plot_if pipeline_cpu 'parse + correlate, per CPU-second' ' pt 6')" "$(plot_if pipeline_rate 'parse + correlate, wall clock (1 thread)' ' pt 7')" "$(plot_if import_rate 'elsed import into PostgreSQL' ' pt 5')")
set title 'peak resident memory'
set format y '%g'
set ylabel 'MiB'
unset logscale y
set yrange [0:*]
plot $(join_plots "$(plot_if pipeline_rss 'parse + correlate' ' pt 7')" "$(plot_if import_rss 'elsed import' ' pt 5')")
set title 'database size after elsed import'
set ylabel 'GiB'
set logscale y
set yrange [*:*]
plot $(join_plots "$(plot_if import_db 'measured' ' pt 5')" "$(plot_if import_db_x2 'extrapolated (not measured)' ' dt 2 pt 4')")
set title 'p95 latency (events/10 messages)'
set ylabel 'ms'
plot $(join_plots "$(plot_if search_rcpt 'search: exact recipient' ' pt 7')" "$(plot_if search_domain 'search: sender domain' ' pt 9')" "$(plot_if search_msgid 'search: Message-ID' ' pt 11')" "$(plot_if dash_admin 'dashboard: slowest /stats (admin)' ' pt 5')" "$(plot_if dash_group 'dashboard: slowest /stats (group)' ' pt 13')")
set title 'dashboard rollups (the refresh the pipeline runs)'
set ylabel 's'
set key bottom right
plot $(join_plots "$(plot_if dash_rollup 'roll up one day (events/300 messages)' ' pt 5')" "$(plot_if dash_live 'live refresh of the current hour' ' pt 7')")
unset multiplot
EOF
    say "wrote $SVG"
    # The table for docs/benchmarks.md.
    printf '| cost | figure | 1M events | 10M events | 100M events |\n|---|---|---:|---:|---:|\n'
    awk -F'\t' 'NR > 1 && !seen[$1 FS $3]++ {print $1 "\t" $3}' "$TSV" | while IFS=$'\t' read -r cost figure; do
        local row="| $cost | $figure"
        for n in 1000000 10000000 100000000; do
            local line
            line=$(awk -F'\t' -v c="$cost" -v e="$n" -v f="$figure" '$1 == c && $2 == e && $3 == f {v=$4 " " $5 " (load " $6 ")"} END {print v}' "$TSV")
            row+=" | ${line:-—}"
        done
        echo "$row |"
    done
}

steps=${1:-all}
case $steps in
    all) step_pipeline; step_import; step_search; step_dashboard; step_plot ;;
    pipeline | import | search | dashboard | plot) "step_$steps"; [[ $steps == plot ]] || say "run '$0 plot' to redraw $SVG" ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
