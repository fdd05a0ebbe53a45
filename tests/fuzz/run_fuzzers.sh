#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each for N seconds (default 60). Prints each target's executions; exits
# non-zero if any target finds a crash, a sanitizer report, a leak, an
# uncaught exception other than ffn::Error, a timeout or an out-of-memory.
#
#   tests/fuzz/run_fuzzers.sh [seconds_per_target]
#
# Environment: FFN_FUZZ_BUILD_DIR (default <repo>/build-fuzz), FFN_FUZZ_JOBS
# (ninja -j, and how many targets fuzz at once, default 2: each libFuzzer run
# is single-threaded), FFN_FUZZ_TARGETS (default: all six), FFN_DATA_DIR
# (shared data for the seeds, default ../shared/data).
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FFN_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${FFN_FUZZ_JOBS:-2}
targets=${FFN_FUZZ_TARGETS:-gguf llama2c llama2c_tokenizer safetensors tokenizer_json activation_stats}

# Largest input per target: big enough for the tiny generated seeds and the
# headers of the shipped files (longer seeds are cut to this length); small
# enough that mutations land in headers rather than in weights.
declare -A max_len=(
  [gguf]=65536               # stories260K.gguf's header is 14 KB
  [llama2c]=16384            # tiny checkpoints are 2-5 KB
  [llama2c_tokenizer]=16384  # tok512.bin is 6 KB
  [safetensors]=16384        # tiny files ~2 KB; the 656K header is 2 KB
  [tokenizer_json]=131072    # the 656K tokenizer.json is 86 KB
  [activation_stats]=65536   # the tiny seed is ~40 KB
)

data_args=()
[ -n "${FFN_DATA_DIR:-}" ] && data_args=(-DFFN_DATA_DIR="$FFN_DATA_DIR")
# An existing build dir (scripts/test.sh passes its sanitizer build, which
# already has FFN_FUZZ=ON) keeps its configuration; a new one is configured.
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DFFN_FUZZ=ON -DFFN_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "${data_args[@]}" >/dev/null
fi
ninja -C "$build" -j "$jobs" fuzz_seeds $(for t in $targets; do echo "fuzz_$t"; done)

# UBSan reports are fatal (libFuzzer then saves the input); leaks are checked.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

dir=$build/tests/fuzz
# One target's run; its verdict goes to $dir/fuzz_$t.result.
fuzz_one() {
  local t=$1 corpus=$dir/corpus/$1 artifacts=$dir/artifacts/$1  # corpus grows across runs
  mkdir -p "$corpus" "$artifacts"  # artifacts: crash-*, leak-*, timeout-*, oom-* inputs
  if "$dir/fuzz_$t" "$corpus" "$dir/seeds/$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
      -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$dir/fuzz_$t.log" 2>&1; then
    echo ok >"$dir/fuzz_$t.result"
  else
    echo FAILED >"$dir/fuzz_$t.result"
  fi
}

running=0
for t in $targets; do
  rm -f "$dir/fuzz_$t.result"
  if ((running >= jobs)); then wait -n || true; running=$((running - 1)); fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait

status=0
printf '\n%-20s %12s %8s  %s\n' target executions result log
for t in $targets; do
  log=$dir/fuzz_$t.log
  result=$(cat "$dir/fuzz_$t.result" 2>/dev/null || echo FAILED)
  [[ $result == ok ]] || status=1
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  printf '%-20s %12s %8s  %s\n' "$t" "${execs:-?}" "$result" "$log"
  if [[ $result != ok ]]; then
    grep -E 'ERROR|runtime error|Test unit written|uncaught|terminate|SUMMARY' "$log" | head -n 20 >&2 || true
  fi
done
exit $status
