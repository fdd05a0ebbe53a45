#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. Release build + ctest (unit, reference, cross-format, hostile-input tests)
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. a short libFuzzer run per loader (FFN_FUZZ_SECONDS each, default 60)
# Test data is read from ../shared/data (or FFN_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
data_args=()
[ -n "${FFN_DATA_DIR:-}" ] && data_args=(-DFFN_DATA_DIR="$FFN_DATA_DIR")

echo "== Release build and tests"
bash scripts/build.sh build "${data_args[@]}"
(cd build && ctest --output-on-failure -j2)

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
bash scripts/build.sh build-asan -DFFN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "${data_args[@]}"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j2)

if [ -x tests/fuzz/run_fuzzers.sh ] || [ -f tests/fuzz/run_fuzzers.sh ]; then
  echo "== libFuzzer: ${FFN_FUZZ_SECONDS:-60} s per target"
  bash tests/fuzz/run_fuzzers.sh "${FFN_FUZZ_SECONDS:-60}"
fi
echo "== all tests passed"
