#!/usr/bin/env bash
# ELSE demo: a private PostgreSQL 15 cluster in ./.demo, the schema, real Postfix logs in it, and
# the three-server deployment running live (target/debug/else-demo: INCOMING and OUTGOING Postfix
# forwarding over RELP to rsyslogd + omelse, GreyLSE, the NDR collector) with a trickle of mail.
#
#   scripts/demo.sh start   # build, start (or reuse) the cluster, migrate, import, serve the web
#                           # application, start the live servers, print the address and login
#   scripts/demo.sh stop    # stop everything and remove ./.demo
#
# The live servers need root (Postfix binds port 25 on 127.0.10.x); without root, or with
# ELSE_DEMO_TRAFFIC=0, the demo shows the imported logs only.
#
# The cluster runs as the `postgres` user when started by root (PostgreSQL refuses root), listens
# on 127.0.0.1 only, on a free port, with trust authentication: a demo, not a deployment.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO="$ROOT/.demo"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
CORPORA=${ELSE_CORPORA:-"$ROOT/../shared/corpora"}
ELSED="$ROOT/target/debug/elsed"
DEMO_FLEET="$ROOT/target/debug/else-demo"

say() { printf 'demo: %s\n' "$*"; }

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The data directory: in .demo when the cluster's owner can reach it, else in /tmp (a checkout in
# /root is not reachable by `postgres`), linked from .demo.
data_dir() {
    if [[ -L "$DEMO/pg" || -d "$DEMO/pg" ]]; then
        readlink -f "$DEMO/pg"
        return
    fi
    mkdir -p "$DEMO"
    local dir="$DEMO/pg"
    if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$DEMO"; then
        dir=$(mktemp -d /tmp/else-demo-pg.XXXXXX)
        ln -s "$dir" "$DEMO/pg"
    else
        mkdir -p "$dir"
    fi
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    echo "$dir"
}

free_port() {
    local port
    local base=${ELSE_PORT_BASE:-55432}
    for port in $(seq "$base" $((base + 199))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    say "no free port between $base and $((base + 199))" >&2
    exit 1
}

start() {
    [[ -x "$PG_BIN/initdb" ]] || { say "PostgreSQL 15 not found in $PG_BIN: run scripts/setup-debian.sh"; exit 1; }
    say "building elsed, omelse and else-demo"
    (cd "$ROOT" && cargo build -q -p elsed -p omelse && cargo build -q -p else-tests --bin else-demo)

    local data port
    data=$(data_dir)
    if [[ ! -f "$data/PG_VERSION" ]]; then
        say "creating a PostgreSQL 15 cluster in $data"
        as_owner "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$DEMO/initdb.log"
    fi
    if as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        port=$(cat "$DEMO/port")
        say "cluster already running on port $port"
    else
        port=$(free_port)
        say "starting PostgreSQL on 127.0.0.1:$port"
        as_owner "$PG_BIN/pg_ctl" -D "$data" -w -l "$data/server.log" \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $data" start >/dev/null
        echo "$port" >"$DEMO/port"
    fi
    local admin="postgresql://postgres@127.0.0.1:$port/postgres"
    local url="postgresql://postgres@127.0.0.1:$port/else"
    if ! psql -qAt "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'else'" | grep -q 1; then
        psql -q "$admin" -c 'CREATE DATABASE "else"'
        say "created database 'else'"
    fi
    echo "$url" >"$DEMO/url"

    say "elsed migrate"
    "$ELSED" --database-url "$url" migrate

    local logs=()
    if [[ -d "$CORPORA" ]]; then
        for log in "$CORPORA/postfix-logsums/mail.log.gz" "$CORPORA/digineo-postfix_exporter/mail.log"; do
            [[ -f "$log" ]] && logs+=("$log")
        done
    fi
    if [[ ${#logs[@]} -eq 0 ]]; then
        say "../shared/corpora not found: importing the project's own fixture"
        logs=("$ROOT/tests/fixtures/mail.log")
    fi
    for log in "${logs[@]}"; do
        say "elsed import $log"
        "$ELSED" --database-url "$url" import --force --timezone UTC "$log"
    done

    # The web application: an administrator with a fresh password, elsed serve in the background.
    local password
    if [[ -f "$DEMO/admin-password" ]]; then
        password=$(cat "$DEMO/admin-password")
    else
        password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-16)
        echo "$password" >"$DEMO/admin-password"
        chmod 600 "$DEMO/admin-password"
        printf '%s\n' "$password" | "$ELSED" --database-url "$url" user add admin --role admin --password-file - >/dev/null
        say "created the web administrator 'admin'"
    fi
    # The live servers first: elsed serve then takes their configuration (the SNMP key that seals
    # the agents' credentials, the servers' roles).
    local live
    live=$(start_traffic "$url")
    local serve_config=()
    [[ -f "$DEMO/fleet/elsed.toml" ]] && serve_config=(--config "$DEMO/fleet/elsed.toml")
    if [[ -f "$DEMO/serve.pid" ]] && kill -0 "$(cat "$DEMO/serve.pid")" 2>/dev/null; then
        say "elsed serve already running"
    else
        local web_port
        web_port=$(ELSE_PORT_BASE=58080 free_port)
        echo "127.0.0.1:$web_port" >"$DEMO/listen"
        nohup "$ELSED" "${serve_config[@]}" --database-url "$url" serve --listen "127.0.0.1:$web_port" >"$DEMO/serve.log" 2>&1 &
        echo $! >"$DEMO/serve.pid"
        say "elsed serve started (log: $DEMO/serve.log)"
    fi
    local listen
    listen=$(cat "$DEMO/listen")

    cat <<EOF

demo: ready.
  web:       http://$listen/   login: admin   password: $password
  database:  $url
  search:    $ELSED --database-url $url search --limit 10
  report:    $ELSED --database-url $url report --format text
  psql:      psql $url
  stop:      make clean-demo
$live
EOF
}

# The three servers and their trickle of mail, in the background; prints what the user can do.
start_traffic() {
    local url=$1
    if [[ ${ELSE_DEMO_TRAFFIC:-1} == 0 ]]; then
        echo "  live mail: off (ELSE_DEMO_TRAFFIC=0)"
        return
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "  live mail: off (the three Postfix servers need root); the imported logs are shown"
        return
    fi
    if [[ -f "$DEMO/fleet.pid" ]] && kill -0 "$(cat "$DEMO/fleet.pid")" 2>/dev/null; then
        say "live servers already running" >&2
    else
        say "starting the live servers: INCOMING, OUTGOING, the Internet, rsyslogd + omelse (log: $DEMO/fleet.log)" >&2
        nohup "$DEMO_FLEET" --database-url "$url" --dir "$DEMO/fleet" >"$DEMO/fleet.log" 2>&1 &
        echo $! >"$DEMO/fleet.pid"
        local waited=0
        until grep -q '^else-demo: INCOMING' "$DEMO/fleet.log"; do
            if ! kill -0 "$(cat "$DEMO/fleet.pid")" 2>/dev/null || [[ $waited -ge 180 ]]; then
                say "the live servers did not start; the end of $DEMO/fleet.log:" >&2
                tail -n 30 "$DEMO/fleet.log" >&2
                echo "  live mail: failed to start (see $DEMO/fleet.log)"
                return
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    cat <<EOT
  live mail: a message every 3 s through in1 (127.0.10.1:25) and out1 (127.0.10.2:25): $DEMO/fleet.log
  send one:  swaks --server 127.0.10.1 --local-interface 127.0.20.9 --from you@remote.test --to alice@example.test
             (greylisted for 30 s by GreyLSE: send it again after that)
EOT
}

# Stops the live servers; they stop their Postfix instances and daemons on SIGTERM.
stop_traffic() {
    [[ -f "$DEMO/fleet.pid" ]] || return 0
    local pid
    pid=$(cat "$DEMO/fleet.pid")
    if kill "$pid" 2>/dev/null; then
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [[ $waited -lt 120 ]]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        say "stopped the live servers"
    fi
}

stop() {
    stop_traffic
    if [[ -f "$DEMO/serve.pid" ]]; then
        kill "$(cat "$DEMO/serve.pid")" 2>/dev/null || true
        say "stopped elsed serve"
    fi
    if [[ -e "$DEMO/pg" ]]; then
        local data
        data=$(readlink -f "$DEMO/pg")
        if [[ -f "$data/PG_VERSION" ]] && as_owner "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            say "stopping PostgreSQL"
            as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        fi
        [[ -L "$DEMO/pg" ]] && rm -rf "$data"
    fi
    rm -rf "$DEMO"
    say "removed $DEMO"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
