# ELSE: the two commands of the README, plus a few helpers. Everything works from a fresh clone on
# a fresh Debian machine: `setup` installs the missing Debian packages first (and says so).

CARGO ?= cargo

.PHONY: all setup build test demo clean-demo bench

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

demo: setup
	bash scripts/demo.sh start

clean-demo:
	bash scripts/demo.sh stop

bench:
	@echo "make bench: the benchmark suite comes with a later issue (results will be in docs/benchmarks.md)."
	@echo "Until then: cargo bench -p omelse --bench parse"
