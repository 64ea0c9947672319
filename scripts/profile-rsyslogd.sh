#!/usr/bin/env bash
# Where rsyslogd's own CPU goes with omelse inside it (issue 17), for docs/benchmarks.md: perf with
# DWARF call graphs on the rsyslogd of one dense omelse run of the rsyslog_throughput bench (the
# shipped stanza's queues), each sample counted once by what it was doing: what its call chain
# shows first (omelse's template rendered by rsyslog, and in omelse's code the nearest omelse
# function: parse, correlate, writer and tokio-postgres, the spool file, ...), else by rsyslogd's
# thread (imtcp's reception; the ruleset's worker, which dequeues and calls the action directly
# as shipped; an action queue's worker where a stanza has one).
#
#   scripts/profile-rsyslogd.sh [OUT_DIR]   # default /tmp/profile-rsyslogd; needs perf (linux-perf)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/profile-rsyslogd}
mkdir -p "$OUT"
rm -f "$OUT/rsyslogd.data"

(cd "$ROOT" && cargo build --release -p omelse && cargo bench -p else-tests --bench rsyslog_throughput --no-run)
bench=$(ls -t "$ROOT"/target/release/deps/rsyslog_throughput-* | grep -v '\.d$' | head -1)

# The bench's rsyslogd, once it is there; perf ends when it does.
(
    for _ in $(seq 1 1200); do
        pid=$(pgrep -f 'rsyslogd .*omelse-run-1/' | head -1 || true)
        [ -n "$pid" ] && break
        sleep 0.1
    done
    exec perf record -e cpu-clock -F 999 --call-graph dwarf,32768 -q -p "$pid" -o "$OUT/rsyslogd.data"
) &
recorder=$!
(cd "$ROOT/tests" && "$bench" --bench --input dense --only omelse --warmup 0 --runs 1) | tee "$OUT/bench.txt"
wait "$recorder" || true
printf 'load average %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
perf script -i "$OUT/rsyslogd.data" -F comm,ip,sym,dso 2>/dev/null >"$OUT/rsyslogd.script"

python3 - "$OUT/rsyslogd.script" <<'PY'
import collections, sys

def category(comm, frames):
    """What a sample of thread `comm` with call chain `frames` (leaf first) was doing."""
    if comm.startswith("in:"):
        return "reception (imtcp)"
    if any("uuid_generate" in f for f in frames):
        return "omelse's template rendered by rsyslog: %uuid% (libuuid)"
    if any("tplToString" in f for f in frames):
        return "omelse's template rendered by rsyslog: the other properties"
    if any("drop_in_place<omelse::store::batch::Batch>" in f for f in frames):
        return "omelse: freeing the batch"
    for f in frames:
        if "omelse::parse::" in f or "omelse::keys::" in f:
            return "omelse: parse (and line keys)"
        if "omelse::correlate::" in f:
            return "omelse: correlate"
        if any(m in f for m in ("omelse::store::", "tokio_postgres", "postgres_protocol", "postgres_types")):
            return "omelse: encode and send the COPY (writer, tokio-postgres)"
        if "omelse::rsyslog::spool" in f:
            return "omelse: the spool file (append, read back)"
        if "omelse::" in f:
            return "omelse: other (taking lines from rsyslog, re-delivery check, batching)"
    if " queue" in comm:
        return "an action queue's worker: dequeue the messages, free them"
    if comm.startswith("rs:"):
        return "ruleset worker: dequeue, filter, hand to the action, free the messages"
    return "other"

counts, comm, frames = collections.Counter(), None, []
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        if comm is not None:
            counts[category(comm, frames)] += 1
        comm, frames = None, []
    elif comm is None:
        comm = line.strip()
    else:
        frames.append(line.strip())
if comm is not None:
    counts[category(comm, frames)] += 1
total = sum(counts.values())
print(f"profile-rsyslogd: {total} samples of rsyslogd (999 Hz)")
for what, n in counts.most_common():
    print(f"| {what} | {100 * n / total:.1f} % |")
PY
