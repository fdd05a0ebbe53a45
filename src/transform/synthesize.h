// Random-weight models of real shapes, for speed work where no real large
// checkpoint can be downloaded. Weights are N(0, 1/fan_in), norms are 1, and
// the vocabulary is a valid 32000-token SentencePiece-style one (<unk>, <s>,
// </s>, 256 byte tokens, then distinct "▁"-pieces), so that llama.cpp loads
// the same file for side-by-side measurements.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/model_source.h"

namespace ffn {

struct SynthShape {
  std::string name;
  uint64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, context_length;
  // Mixture of experts (0: dense): every layer's FFN becomes n_experts
  // experts of hidden_dim each (llama.cpp's Mixtral-style llama layout: a
  // router ffn_gate_inp and stacked ffn_*_exps), top n_experts_used.
  uint64_t n_experts = 0, n_experts_used = 0;
  // GGUF architecture (io/architectures.h). qwen2/qwen2moe add random q/k/v
  // biases; qwen2moe routes softmax-then-top-k without renormalisation.
  std::string arch = "llama";
  // Width of one always-on shared expert with a sigmoid gate (0: none), as
  // Qwen-MoE has; llama.cpp reads shared experts only for qwen2moe.
  uint64_t shared_hidden = 0;
};

// Known presets: tinyllama-1.1b, llama-300m, llama-100m, tiny (for tests);
// MoE: olmoe-1b-7b (64 experts, top-8), qwen-moe-a2.7b (qwen2moe: 60
// experts top-4 plus a gated shared expert), mixtral-tiny and qwen-moe-tiny
// (for tests).
std::optional<SynthShape> synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

// Builds the model; weight matrices are encoded as `type` (Q8_0/Q4_0 rows
// that are not a multiple of 32 fall back to F16). Deterministic in `seed`,
// independent of the thread count.
ModelSource synthesize(const SynthShape& shape, DType type, uint64_t seed);

}  // namespace ffn
