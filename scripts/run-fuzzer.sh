#!/usr/bin/env bash
# Runs the object-ops fuzzer (tests/fuzz/object_ops.h) for a bounded time.
#   scripts/run-fuzzer.sh SECONDS
# The working corpus lives in build/fuzz/corpus (seeded from tests/fuzz/corpus and kept between
# runs); a failing input is written to build/fuzz/artifacts/ and replayed with its trace.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
bin=build/fuzz/tests/fuzz/object_ops_fuzzer
replay=build/fuzz/tests/fuzz/object_ops_replay
corpus=build/fuzz/corpus
artifacts=build/fuzz/artifacts
mkdir -p "$corpus" "$artifacts"
cp -n tests/fuzz/corpus/* "$corpus"/ 2>/dev/null || true
echo "uttm: fuzzing the object API for ${seconds} s (corpus $corpus)"
set +e
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  "$bin" -max_total_time="$seconds" -max_len=2048 -timeout=60 -rss_limit_mb=6144 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" > build/fuzz/fuzz.log 2>&1
rc=$?
set -e
grep -E "^stat::number_of_executed_units|^stat::new_units_added|^Done" build/fuzz/fuzz.log || true
if [ $rc -ne 0 ]; then
  tail -n 60 build/fuzz/fuzz.log
  crash=$(ls -t "$artifacts"/* 2>/dev/null | head -n 1 || true)
  if [ -n "$crash" ]; then
    echo "uttm: the fuzzer found a failure: $crash; its trace:"
    "$replay" "$crash" 2>&1 | tail -n 80 || true
  fi
  exit 1
fi
echo "uttm: fuzzing ran clean for ${seconds} s"
