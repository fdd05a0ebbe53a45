#!/usr/bin/env bash
# The main job on the shipped example model: install dependencies, build,
# generate a story with stories260K, then measure its perplexity.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
echo "== ffn generate -m models/stories260K.gguf -p 'Once upon a time' -n 64 --temp 0"
./build/ffn generate -m models/stories260K.gguf -p "Once upon a time" -n 64 --temp 0
text=../shared/data/text/tinystories_valid_head.txt
if [ -f "$text" ]; then
  echo "== ffn perplexity -m models/stories260K.gguf -f $text --ctx 256"
  ./build/ffn perplexity -m models/stories260K.gguf -f "$text" --ctx 256
else
  echo "(no $text beside the repository: skipping the perplexity example)"
fi
