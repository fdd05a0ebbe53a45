#!/usr/bin/env bash
# Side-by-side decode/prefill speed of ffn.cpp and llama.cpp on the same GGUF
# files, same thread counts, same prompt/generation lengths, one run after
# the other (machines are shared: compare within one invocation).
#
# Usage: scripts/bench-compare.sh LLAMA_BENCH_BINARY MODEL.gguf... 
#   env: THREADS="1 2" P=128 N=64 R=3
# llama.cpp is not part of this project: build it yourself, outside this
# repository, and pass the path of its llama-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
llama_bench="$1"
shift
threads="${THREADS:-1 2}"
P="${P:-128}" N="${N:-64}" R="${R:-3}"
# Last column: ffn bench --vs-read, decode against a plain read of the same
# bytes right after each token (immune to the machine's drift).
printf "| model | threads | ffn pp%s | llama.cpp pp%s | ratio | ffn tg%s | llama.cpp tg%s | ratio | ffn GB/s | %% of bandwidth | vs read |\n" "$P" "$P" "$N" "$N"
printf "|---|---|---|---|---|---|---|---|---|---|---|\n"
for model in "$@"; do
  for t in $threads; do
    ours=$(./build/ffn bench -m "$model" -t "$t" -p "$P" -n "$N" -r "$R" --json --vs-read)
    theirs=$("$llama_bench" -m "$model" -t "$t" -p "$P" -n "$N" -r "$R" -o json 2>/dev/null)
    /usr/bin/python3 - "$model" "$t" "$ours" "$theirs" <<'PY'
import json, os, sys
model, t, ours, theirs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
pp = next(r["avg_ts"] for r in theirs if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in theirs if r["n_gen"] > 0)
print(f"| {os.path.basename(model)} | {t} | {ours['prefill_tok_s']:.1f} | {pp:.1f} | {ours['prefill_tok_s']/pp:.2f} | "
      f"{ours['decode_tok_s']:.2f} | {tg:.2f} | {ours['decode_tok_s']/tg:.2f} | {ours['decode_gb_s']:.1f} | "
      f"{100*ours['bandwidth_fraction']:.0f}% of {ours['bandwidth_gb_s']:.1f} | {ours['vs_read']:.2f} |")
PY
  done
done
