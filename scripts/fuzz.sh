#!/usr/bin/env bash
# Runs the parser fuzz targets for a bounded time each (default 30 s): `make test` runs it briefly,
# longer runs are for `make bench`/by hand (`scripts/fuzz.sh 3600`).
#
# cargo-fuzz needs nightly-only compiler flags (sanitizers); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain here accept them, as it is the only toolchain the project's machines have.
set -euo pipefail
seconds="${1:-30}"
cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in parse_line pipeline; do
    echo "fuzz: $target for ${seconds}s"
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=4096 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz: $target found a crash (see fuzz/artifacts/$target)"
        exit 1
    fi
    grep -E "^Done" "$log" || true
    rm -f "$log"
done
echo "fuzz: no crash"
