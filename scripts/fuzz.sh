#!/usr/bin/env bash
# Runs every fuzz target of tests/integration/fuzz.rs for a while each
# (ten minutes unless OUTPOST_FUZZ_SECONDS says otherwise), one after
# another, and prints how many inputs each ran. A failure prints the seed
# that reproduces it: ARBTEST_SEED=0x... scripts/fuzz.sh <target>.
#
#   scripts/fuzz.sh               # every target
#   scripts/fuzz.sh routes        # one target: bundle, config, frames, routes or policy
set -euo pipefail
cd "$(dirname "$0")/.."
export OUTPOST_FUZZ_SECONDS="${OUTPOST_FUZZ_SECONDS:-600}"
filter="fuzz::fuzz_${1:-}"
cargo test -q -p outpost-tests --test integration --no-run
cargo test -q -p outpost-tests --test integration -- "$filter" --test-threads 1 --nocapture 2>&1 |
  grep -E '^fuzz |panicked|Seed|test result'
