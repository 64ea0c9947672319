# Sourced by the benchmark scripts: a throwaway PostgreSQL 15 cluster in a temporary directory,
# stopped and removed when the script exits. initdb and postgres refuse to run as root, so as root
# they run as the `postgres` user.
#
#   source scripts/private-postgres.sh
#   start_private_postgres NAME "-c fsync=off -c shared_buffers=256MB"   # sets WORK, port, PG_URL

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_owner() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# WORK: the temporary directory (the cluster in $WORK/data, its log in $WORK/server.log, room for
# the caller's files); port: a free loopback port; PG_URL: the superuser's URL.
start_private_postgres() {
    local name=$1 settings=$2
    WORK=$(mktemp -d "/tmp/else-$name.XXXXXX")
    trap 'as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$WORK"; fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$PG_BIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
    as_owner "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w \
        -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 $settings" start >/dev/null
    PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}
