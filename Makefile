# ELSE: the two commands of the README, plus a few helpers. Everything works from a fresh clone on
# a fresh Debian machine: `setup` installs the missing Debian packages first (and says so).

CARGO ?= cargo

.PHONY: all setup build test demo clean-demo bench packages

all: build

setup:
	bash scripts/setup-debian.sh

build: setup
	$(CARGO) build --workspace

# Formatting and lints first: they are quick and say precisely what is wrong. `cargo build` before
# the tests: the rsyslogd tests load target/debug/libomelse.so, which `cargo test` does not rebuild.
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace
	$(CARGO) test --workspace --no-fail-fast
	bash scripts/fuzz.sh 30

# target/packages/: else-server and else-postfix-agent, .deb and .rpm (packaging/build-packages.sh).
packages: setup
	bash packaging/build-packages.sh

demo: setup
	bash scripts/demo.sh start

clean-demo:
	bash scripts/demo.sh stop

# Benchmarks print figures for docs/benchmarks.md; they are never part of `make test`.
bench: setup
	$(CARGO) build --release --workspace
	$(CARGO) bench -p omelse --bench parse -- --warm-up-time 1 --measurement-time 5
	bash scripts/bench-import.sh
	bash scripts/bench-import.sh dense
	bash scripts/profile-import.sh
	bash scripts/bench-indexes.sh
	bash scripts/bench-indexes.sh recipients
	bash scripts/bench-indexes.sh messages
	$(CARGO) bench -p else-tests --bench rsyslog_throughput -- --input both --runs 3
	$(CARGO) bench -p else-tests --bench omelse_memory
	OMELSE_MEMORY_MESSAGES=1000000 OMELSE_MEMORY_RUNS=bound $(CARGO) bench -p else-tests --bench omelse_memory
	$(CARGO) bench -p else-tests --bench transport
	$(CARGO) test --release -p elsed --lib bench_ -- --ignored --nocapture
	bash scripts/bench-search.sh
	bash scripts/bench-logs.sh
	bash scripts/bench-dashboard.sh
	ELSE_BENCH_PROFILE=release bash scripts/bench-alerts.sh
	bash scripts/bench-scale.sh
	bash scripts/fuzz.sh 600
