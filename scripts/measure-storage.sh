#!/usr/bin/env bash
# Rows and bytes per message of each table (docs/scaling.md): the dense fixture replicated as
# LINES lines of FLEETS fleets, imported with `elsed import` into a private PostgreSQL 15, then
# pg_total_relation_size (heap + indexes + TOAST) of each table, partitions summed, per message.
#
#   scripts/measure-storage.sh [LINES] [FLEETS]    # default 1 000 000 lines, 16 fleets
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/private-postgres.sh"
LINES=${1:-1000000}
FLEETS=${2:-16}
PROFILE=${ELSE_PROFILE:-debug}
say() { printf 'measure-storage: %s\n' "$*"; }

cd "$ROOT"
start_private_postgres storage "-c fsync=off -c shared_buffers=256MB -c max_wal_size=2GB"
URL="host=127.0.0.1 port=$port user=postgres dbname=postgres"
"target/$PROFILE/else-dense" replicate --lines "$LINES" --fleets "$FLEETS" --out "$WORK/dense.log"
say "importing $LINES lines ($FLEETS fleets) with target/$PROFILE/elsed"
/usr/bin/time -f 'measure-storage: elsed import %e s wall, %U s user, %S s system, %M KiB peak' \
    env ELSE_CONFIG=/dev/null "target/$PROFILE/elsed" import --force --timezone UTC --database-url "$URL" "$WORK/dense.log" >/dev/null
psql -q "$URL" -c "VACUUM ANALYZE" >/dev/null
psql "$URL" -P footer=off <<'SQL'
WITH n AS (SELECT count(*)::numeric AS messages FROM messages),
tables AS (
    SELECT coalesce(p.relname, c.relname) AS tbl, c.oid
    FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace AND s.nspname = 'public'
    LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
    WHERE c.relkind = 'r'
)
SELECT tbl AS "table", sum(c.reltuples)::bigint AS "rows",
       round(sum(c.reltuples)::numeric / n.messages, 2) AS "rows/message",
       pg_size_pretty(sum(pg_total_relation_size(t.oid))::bigint) AS "bytes",
       round(sum(pg_total_relation_size(t.oid)) / n.messages) AS "bytes/message"
FROM tables t JOIN pg_class c ON c.oid = t.oid, n
GROUP BY tbl, n.messages HAVING sum(pg_total_relation_size(t.oid)) > 100000
ORDER BY sum(pg_total_relation_size(t.oid)) DESC;
SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM log_events) AS lines,
       pg_size_pretty(pg_database_size(current_database())) AS database,
       round(pg_database_size(current_database())::numeric / (SELECT count(*) FROM messages)) AS "database bytes/message";
SQL
