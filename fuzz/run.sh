#!/usr/bin/env bash
# Fuzz every target for SECONDS (default 1800) each, all targets at once, at low priority.
#
#   fuzz/run.sh                 # 30 minutes per target
#   SECONDS_PER_TARGET=60 fuzz/run.sh csv_ingest margins
#
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). Builds without a
# sanitizer (the code under test is safe Rust; panics and overflow checks are what we look for)
# and with debug assertions. Each target runs in fork mode and goes on after a crash. New inputs go to fuzz/corpus/<target>/ (not committed), crashes to
# fuzz/artifacts/<target>/; a crash, once fixed, is copied to fuzz/regressions/<target>/, which the
# test suite replays (tests/it/fuzz_regressions.rs). Logs: fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECONDS_PER_TARGET:-1800}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(csv_ingest parquet_ingest sav_ingest por_ingest dta_ingest questionnaire expression pipeline_config margins)
cargo +nightly fuzz build -s none -a
mkdir -p logs
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  nice -n 19 cargo +nightly fuzz run -s none -a "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="artifacts/$t/" > "logs/$t.log" 2>&1 &
done
wait
for t in "${TARGETS[@]}"; do
  echo "$t: $(grep -oE '#[0-9]+: cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "logs/$t.log" | tail -1); crashes: $(ls "artifacts/$t" | wc -l)"
done
