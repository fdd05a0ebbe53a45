#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. Release build + ctest (unit, reference, cross-format, hostile-input tests)
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#      in a clang build that also holds the libFuzzer targets (one sanitizer
#      build instead of two keeps CI short)
#   3. a short libFuzzer run per loader (FFN_FUZZ_SECONDS each, default 60)
# Test data is read from ../shared/data (or FFN_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so clones elsewhere hit too.
export CCACHE_BASEDIR="$PWD"
bash scripts/install-deps.sh
data_args=()
[ -n "${FFN_DATA_DIR:-}" ] && data_args=(-DFFN_DATA_DIR="$FFN_DATA_DIR")

echo "== Release build and tests"
bash scripts/build.sh build "${data_args[@]}"
(cd build && ctest --output-on-failure -j2)

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build (clang) and tests"
CC=clang CXX=clang++ bash scripts/build.sh build-asan -DFFN_SANITIZE=ON -DFFN_FUZZ=ON -DFFN_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" "${data_args[@]}"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j2)

echo "== libFuzzer: ${FFN_FUZZ_SECONDS:-60} s per target"
FFN_FUZZ_BUILD_DIR="$PWD/build-asan" bash tests/fuzz/run_fuzzers.sh "${FFN_FUZZ_SECONDS:-60}"
echo "== all tests passed"
